"""Ingest speed and history latency on a synthetic CSV (issue 2's figures).

    .venv/bin/python bench/ingest.py --size small|1m|10m   (or --rows N)

Stages, each in its own subprocess so every peak memory figure is that stage's alone:
- `bare`: DuckDB `CREATE TABLE t AS SELECT * FROM read_csv(…)` of the file (no checks) — the reference rate;
- `interestlens`: `core.ingest.ingest(…, "generic", …)` into an empty database (validation, rejects,
  dedupe, clustering by user, users/items upsert, one transaction), with the time of each pipeline step;
- `pandas`: `pandas.read_csv` then `CREATE TABLE … AS SELECT * FROM df` in DuckDB;
- `history`: p50 / p95 latency of `core.store.user_history` for random users of the ingested database.
Results go to `bench/results/ingest-<size>.json` (stages already there are skipped unless `--fresh`).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import Results, percentiles  # noqa: E402

SIZES = {"small": 100_000, "1m": 1_000_000, "10m": 10_000_000}
CACHE = ROOT / "data" / "cache" / "bench"
HISTORY_USERS = 300


def csv_path(rows: int) -> Path:
    return CACHE / f"synthetic-{rows}.csv"


def make_csv(rows: int) -> Path:
    """The synthetic log as CSV (user_id,item_id,timestamp,event_type,value,device), cached."""
    path = csv_path(rows)
    if path.exists():
        return path
    import duckdb

    from core.datasets import generate

    CACHE.mkdir(parents=True, exist_ok=True)
    ds = generate(users=max(100, rows // 100), items=min(50_000, max(100, rows // 200)), events=rows, seed=0)
    con = duckdb.connect()
    con.register("ev", ds.events)
    tmp = path.with_suffix(".tmp")
    con.execute(
        """COPY (SELECT CAST(user_id AS VARCHAR) AS user_id, CAST(item_id AS VARCHAR) AS item_id,
                        CAST(epoch(ts) AS BIGINT) AS timestamp, CAST(event_type AS VARCHAR) AS event_type, value,
                        CAST(device AS VARCHAR) AS device FROM ev) TO ? (HEADER, DELIMITER ',')""",
        [str(tmp)],
    )
    con.close()
    tmp.rename(path)
    return path


def peak_mb() -> float:
    """This process's peak resident memory (VmHWM). Unlike ru_maxrss it starts afresh at exec, so a child
    started by a parent that held the generated data does not inherit the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _fresh(db: Path) -> None:
    for p in (db, Path(str(db) + ".wal")):
        p.unlink(missing_ok=True)


def child(stage: str, csv: Path, db: Path) -> dict:
    """Run one stage in this process and return its figures (imports are done before the clock starts)."""
    import duckdb
    import pandas as pd

    from core.ingest import ColumnMapping, ingest
    from core.store import connect_read, user_history

    cpu0 = time.process_time()
    t0 = time.perf_counter()
    out: dict = {}
    if stage == "bare":
        _fresh(db)
        con = duckdb.connect(str(db))
        con.execute("SET enable_progress_bar = false")
        con.execute("CREATE TABLE t AS SELECT * FROM read_csv(?)", [str(csv)])
        out["rows"] = con.execute("SELECT count(*) FROM t").fetchall()[0][0]
        con.close()
    elif stage == "interestlens":
        _fresh(db)
        mapping = ColumnMapping(
            user="user_id", item="item_id", time="timestamp", event="event_type", value="value", context=("device",)
        )
        marks: list[tuple[str, float, float]] = [("open", time.perf_counter(), time.process_time())]
        r = ingest(db, "generic", csv, mapping=mapping,
                   progress=lambda step: marks.append((step, time.perf_counter(), time.process_time())))  # fmt: skip
        marks.append(("closed", time.perf_counter(), time.process_time()))
        out.update(rows=r.accepted + r.rejected + r.duplicates, accepted=r.accepted, rejected=r.rejected,
                   duplicates=r.duplicates)  # fmt: skip
        # where the time goes: each pipeline step from its start to the next (wall / CPU seconds)
        out["steps"] = {a[0]: {"seconds": round(b[1] - a[1], 3), "cpu_seconds": round(b[2] - a[2], 3)}
                        for a, b in zip(marks, marks[1:], strict=False)}  # fmt: skip
    elif stage == "pandas":
        _fresh(db)
        df = pd.read_csv(csv)
        con = duckdb.connect(str(db))
        con.execute("SET enable_progress_bar = false")
        con.register("df", df)
        con.execute("CREATE TABLE t AS SELECT * FROM df")
        out["rows"] = len(df)
        con.close()
    elif stage == "history":
        with connect_read(db) as con:
            users = [r[0] for r in con.execute("SELECT user_id FROM users ORDER BY user_id").fetchall()]
            pick = random.Random(0).sample(users, min(HISTORY_USERS, len(users)))
            lengths, samples, cpu = [], [], []
            user_history(con, pick[0])  # warm-up: first query loads the catalog
            for u in pick:
                s, c = time.perf_counter(), time.process_time()
                lengths.append(len(user_history(con, u)))
                samples.append((time.perf_counter() - s) * 1000.0)
                cpu.append((time.process_time() - c) * 1000.0)
        cpu_p = percentiles(cpu)
        out.update(percentiles(samples), cpu_p50=cpu_p["p50"], cpu_p95=cpu_p["p95"],
                   mean_events=sum(lengths) / len(lengths), unit="ms")  # fmt: skip
    else:
        raise SystemExit(f"unknown stage {stage}")
    out["seconds"] = time.perf_counter() - t0
    out["cpu_seconds"] = time.process_time() - cpu0  # all threads of this process
    out["load_avg_1m"] = os.getloadavg()[0]  # other work on the machine when the stage ended
    out["peak_rss_mb"] = peak_mb()
    if "rows" in out and out["seconds"] > 0:
        out["rows_per_s"] = out["rows"] / out["seconds"]
    return out


def run_child(stage: str, csv: Path, db: Path) -> dict:
    cmd = [sys.executable, __file__, "--child", stage, "--csv", str(csv), "--db", str(db)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"stage {stage} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=sorted(SIZES), default="small")
    ap.add_argument("--rows", type=int, help="rows of the synthetic CSV (overrides --size)")
    ap.add_argument("--stages", default="bare,interestlens,pandas,history")
    ap.add_argument("--fresh", action="store_true", help="re-run stages already in the results file")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--csv", help=argparse.SUPPRESS)
    ap.add_argument("--db", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, Path(args.csv), Path(args.db))))
        return
    rows = args.rows or SIZES[args.size]
    size = args.size if not args.rows else f"{rows}"
    results = Results("ingest", size, resume=not args.fresh)
    t0 = time.perf_counter()
    csv = make_csv(rows)
    results.set("csv", {"path": str(csv.relative_to(ROOT)), "rows": rows, "bytes": csv.stat().st_size,
                        "prepare_seconds": round(time.perf_counter() - t0, 1)})  # fmt: skip
    dbs = {"bare": CACHE / f"bare-{rows}.duckdb", "pandas": CACHE / f"pandas-{rows}.duckdb"}
    il_db = CACHE / f"interestlens-{rows}.duckdb"
    for stage in args.stages.split(","):
        if results.done(stage) and not args.fresh:
            print(f"{stage}: done before, skipped ({results.get(stage)})")
            continue
        figures = run_child(stage, csv, dbs.get(stage, il_db))
        results.stage(stage, figures)
        shown = ", ".join(f"{k} {v:,.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in figures.items())
        print(f"{stage}: {shown}", flush=True)
    stages = results.data["stages"]
    if "bare" in stages and "interestlens" in stages:
        ratio = stages["interestlens"]["rows_per_s"] / stages["bare"]["rows_per_s"]
        results.set("interestlens_vs_bare", round(ratio, 3))
        cpu_ratio = stages["bare"]["cpu_seconds"] / stages["interestlens"]["cpu_seconds"]
        results.set("interestlens_vs_bare_cpu", round(cpu_ratio, 3))
        print(f"interestlens / bare rate: {ratio:.2f}x wall, {cpu_ratio:.2f}x by CPU time (target >= 0.7)")
    for name in dbs.values():
        _fresh(name)
    print(f"results: {results.path.relative_to(ROOT)}")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    main()
