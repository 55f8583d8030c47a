"""Live appends into a large database (issue 11's figures): rows per second for batches of 1k and 100k rows, the
latency of a 1k-row batch, and the same 1k batches landing as files in a folder that a `Follower` watches.

    .venv/bin/python bench/live.py --size small|1m|10m   (or --rows N)

The base database is the synthetic log of `bench/ingest.py` (same CSV) ingested once and cached; every stage works
on a fresh copy. A batch is one `core.ingest.ingest(…, "generic", …)` of a CSV of new events (later than every
stored one; known and new users, known items), i.e. what `interestlens follow` does per batch: open the file,
validate, dedupe against stored events, insert, close (checkpoint included). Each stage runs in its own
subprocess; wall and CPU seconds are reported with the load average, since the machine is shared.
Results: `bench/results/live-<size>.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import Results, percentiles  # noqa: E402
from bench.ingest import CACHE, SIZES, make_csv  # noqa: E402

STAGES = {"append_1k": (1_000, 20), "append_100k": (100_000, 4), "follow_1k": (1_000, 10)}  # rows, batches
HEADER = "user_id,item_id,timestamp,event_type,value,device\n"


def base_db(rows: int) -> Path:
    """The synthetic log ingested once (cached beside the CSV)."""
    path = CACHE / f"live-base-{rows}.duckdb"
    if path.exists():
        return path
    made = CACHE / f"interestlens-{rows}.duckdb"  # bench/ingest.py's result: the same CSV, the same mapping
    if made.exists():
        shutil.copy(made, path)
        return path
    from core.ingest import ColumnMapping, ingest

    tmp = path.with_suffix(".tmp.duckdb")
    tmp.unlink(missing_ok=True)
    mapping = ColumnMapping(event="event_type", value="value", context=("device",))
    ingest(tmp, "generic", make_csv(rows), mapping=mapping)
    tmp.rename(path)
    return path


def write_batches(folder: Path, db: Path, rows: int, batches: int, seed: int) -> list[Path]:
    """CSV files of new events after the database's last event: 90% known users, 10% new ones, known items."""
    import duckdb
    import numpy as np

    con = duckdb.connect(str(db), read_only=True)
    last = int(con.execute("SELECT epoch(max(ts))::BIGINT FROM events").fetchall()[0][0])
    users = [r[0] for r in con.execute("SELECT user_id FROM users").fetchall()]
    items = [r[0] for r in con.execute("SELECT item_id FROM items").fetchall()]
    con.close()
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for b in range(batches):
        known = rng.random(rows) < 0.9
        u = np.where(known, np.array(users, dtype=object)[rng.integers(0, len(users), rows)],
                     np.char.add(f"new{seed}-{b}-", rng.integers(0, rows // 10 + 1, rows).astype(str)).astype(object))  # fmt: skip
        i = np.array(items, dtype=object)[rng.integers(0, len(items), rows)]
        ts = last + 1 + b * rows + np.arange(rows)
        et = np.array(["view", "click", "cart", "purchase"], dtype=object)[rng.integers(0, 4, rows)]
        dev = np.array(["mobile", "desktop", "tablet"], dtype=object)[rng.integers(0, 3, rows)]
        body = "".join(f"{a},{c},{t},{e},1.0,{d}\n" for a, c, t, e, d in zip(u, i, ts, et, dev, strict=True))
        path = folder / f"batch-{b:04d}.csv"
        path.write_text(HEADER + body)
        out.append(path)
    return out


def child(stage: str, base: Path, work: Path) -> dict:
    """Append the stage's batches to a fresh copy of the base database; per-batch wall and CPU times."""
    from core.ingest import ColumnMapping, ingest
    from core.live import Follower

    rows, batches = STAGES[stage]
    db = work / "live.duckdb"
    shutil.copy(base, db)
    files = write_batches(work / "batches", db, rows, batches, seed=len(stage))
    mapping = ColumnMapping(event="event_type", value="value", context=("device",))
    wall, cpu, accepted = [], [], 0
    if stage.startswith("append"):
        for f in files:
            t0, c0 = time.perf_counter(), time.process_time()
            r = ingest(db, "generic", f, mapping=mapping)
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            accepted += r.accepted
    else:  # files land one by one in a watched folder; time from the file being there to its batch committed
        inbox = work / "inbox"
        inbox.mkdir()
        follower = Follower(db, "generic", inbox, mapping=mapping, settle_s=0)
        for f in files:
            t0, c0 = time.perf_counter(), time.process_time()
            f.rename(inbox / f.name)  # an atomic drop, as a producer should do it
            done = follower.poll()
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            accepted += sum(b.result.accepted for b in done)
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    events = con.execute("SELECT count(*) FROM events").fetchall()[0][0]
    con.close()
    ms = percentiles([w * 1000 for w in wall])
    cpu_ms = percentiles([c * 1000 for c in cpu])
    return {
        "rows_per_batch": rows, "batches": batches, "accepted": accepted, "events_after": events,
        "rows_per_s": rows * batches / sum(wall), "rows_per_cpu_s": rows * batches / sum(cpu),
        "batch_ms_p50": ms["p50"], "batch_ms_p95": ms["p95"], "batch_ms_max": max(wall) * 1000,
        "batch_cpu_ms_p50": cpu_ms["p50"], "batch_cpu_ms_p95": cpu_ms["p95"],
        "load_avg_1m": os.getloadavg()[0],
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=sorted(SIZES), default="small")
    ap.add_argument("--rows", type=int, help="events in the base database (overrides --size)")
    ap.add_argument("--stages", default=",".join(STAGES))
    ap.add_argument("--fresh", action="store_true", help="re-run stages already in the results file")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--base", help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, Path(args.base), Path(args.work))))
        return
    rows = args.rows or SIZES[args.size]
    results = Results("live", args.size if not args.rows else str(rows), resume=not args.fresh)
    t0 = time.perf_counter()
    base = base_db(rows)
    results.set("base", {"path": str(base.relative_to(ROOT)), "events": rows, "bytes": base.stat().st_size,
                         "prepare_seconds": round(time.perf_counter() - t0, 1)})  # fmt: skip
    for stage in args.stages.split(","):
        if results.done(stage) and not args.fresh:
            print(f"{stage}: done before, skipped ({results.get(stage)})")
            continue
        work = CACHE / f"live-work-{stage}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        cmd = [sys.executable, __file__, "--child", stage, "--base", str(base), "--work", str(work)]
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        shutil.rmtree(work, ignore_errors=True)
        if done.returncode != 0:
            raise SystemExit(f"stage {stage} failed:\n{done.stderr[-3000:]}")
        figures = results.stage(stage, json.loads(done.stdout.strip().splitlines()[-1]))
        shown = ", ".join(f"{k} {v:,.1f}" if isinstance(v, float) else f"{k} {v}" for k, v in figures.items())
        print(f"{stage}: {shown}", flush=True)
    print(f"results: {results.path.relative_to(ROOT)}")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    main()
