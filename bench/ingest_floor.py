"""What the parts of an ingest cost on their own, to show how far the pipeline is from what DuckDB can do at all.

    .venv/bin/python bench/ingest_floor.py --size 1m     (the synthetic CSV of bench/ingest.py)

Each variant is a single DuckDB statement on the same file, timed three times (the minimum CPU seconds of this
process, all threads, is reported beside the last wall time, since the machine is shared):
- `bare`: `CREATE TABLE … AS SELECT * FROM read_csv(…)` (types detected, no checks);
- `bare_sorted`: the same statement with `ORDER BY user_id` and nothing else — what storing the file so that a
  user's history is a few row groups costs on its own, against `bare`;
- `stage_temp`: the file parsed as text, times converted, a reason column and a hash, into a temporary table;
- `persist_sorted_from_temp` / `persist_unsorted_from_temp`: those rows into a stored table with the context MAP,
  sorted by user or not (the two halves of the pipeline's insert);
- `one_pass_sorted` / `one_pass_unsorted`: read, convert, (sort,) attach the MAP and store in one statement —
  the floor for any pipeline that keeps the events sorted by user, before a single check, dedupe or reject;
- `art_index`: `CREATE INDEX` on `user_id` of the unsorted table (the alternative to sorting);
- `repeats`: the exact-duplicate aggregate the pipeline runs (rows whose 64-bit hash repeats), over the staged rows.
Then `history_bare` / `history_bare_sorted`: p50 / p95 of one user's events (`WHERE user_id = ? ORDER BY
timestamp`, 300 random users) on the `bare` table (the file's order, i.e. time) and on `bare_sorted` — whether
a store that is not sorted by user could meet the 20 ms p95 target.
Results: `bench/results/ingest_floor-<size>.json`.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import Results, percentiles  # noqa: E402
from bench.ingest import CACHE, HISTORY_USERS, SIZES, make_csv  # noqa: E402

_MAP = ("CASE WHEN ctx_0 = 'mobile' THEN MAP {'device': 'mobile'} WHEN ctx_0 = 'desktop' THEN MAP {'device': 'desktop'} "
        "WHEN ctx_0 = 'tablet' THEN MAP {'device': 'tablet'} END")  # fmt: skip
_SRC = ("read_csv(?, columns = ?, delim = ',', quote = '\"', escape = '\"', header = true, auto_detect = false, "
        "ignore_errors = true)")  # fmt: skip
_STAGE = f"""SELECT c0 AS user_id, c1 AS item_id, make_timestamp(CAST(round(TRY_CAST(c2 AS DOUBLE) * 1000000) AS BIGINT)) AS ts,
    c3 AS event_type, TRY_CAST(c4 AS DOUBLE) AS value, c5 AS ctx_0,
    CASE WHEN c0 IS NULL THEN 'missing user id' END AS reason, hash(c0, c1, c2) AS h FROM {_SRC}"""
_OUT = f"user_id, item_id, ts, event_type, value, {_MAP} AS context, 1 AS run_id, 0 AS seq"

VARIANTS = {
    "bare": ("CREATE OR REPLACE TABLE bare AS SELECT * FROM read_csv(?)", "plain"),
    "bare_sorted": ("CREATE OR REPLACE TABLE bare_sorted AS SELECT * FROM read_csv(?) ORDER BY user_id", "plain"),
    "stage_temp": (f"CREATE OR REPLACE TEMP TABLE st AS {_STAGE}", "cols"),
    "persist_sorted_from_temp": (f"CREATE OR REPLACE TABLE e1 AS SELECT {_OUT} FROM (SELECT * FROM st WHERE reason IS NULL ORDER BY user_id)", None),
    "persist_unsorted_from_temp": (f"CREATE OR REPLACE TABLE e1 AS SELECT {_OUT} FROM (SELECT * FROM st WHERE reason IS NULL)", None),
    "one_pass_sorted": (f"CREATE OR REPLACE TABLE e2 AS SELECT {_OUT} FROM ({_STAGE} WHERE reason IS NULL ORDER BY user_id)", "cols"),
    "one_pass_unsorted": (f"CREATE OR REPLACE TABLE e3 AS SELECT {_OUT} FROM ({_STAGE} WHERE reason IS NULL)", "cols"),
    "art_index": ("CREATE INDEX IF NOT EXISTS e3_user ON e3 (user_id)", None),
    "repeats": ("SELECT count(*) FROM (SELECT h FROM st WHERE reason IS NULL GROUP BY h HAVING count(*) > 1)", None),
}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=sorted(SIZES), default="1m")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    import duckdb

    rows = SIZES[args.size]
    csv = make_csv(rows)
    db = CACHE / f"floor-{rows}.duckdb"
    db.unlink(missing_ok=True)
    results = Results("ingest_floor", args.size, resume=False)
    con = duckdb.connect(str(db))
    con.execute("SET enable_progress_bar = false")
    params = {"plain": [str(csv)], "cols": [str(csv), {f"c{i}": "VARCHAR" for i in range(6)}], None: []}
    for name, (sql, kind) in VARIANTS.items():
        cpu = []
        for _ in range(1 if name == "art_index" else args.repeat):
            if name == "art_index":
                con.execute("DROP INDEX IF EXISTS e3_user")
            t0, c0 = time.perf_counter(), time.process_time()
            con.execute(sql, params[kind]).fetchall()
            con.execute("CHECKPOINT")
            cpu.append(time.process_time() - c0)
            wall = time.perf_counter() - t0
        figures = {"cpu_seconds_min": round(min(cpu), 3), "wall_seconds_last": round(wall, 3),
                   "load_avg_1m": os.getloadavg()[0]}  # fmt: skip
        results.stage(name, figures)
        print(f"{name:28s} CPU {figures['cpu_seconds_min']:7.3f} s (min of {len(cpu)}), wall {wall:7.3f} s, "
              f"load {figures['load_avg_1m']:.1f}", flush=True)  # fmt: skip
    con.execute("DROP INDEX IF EXISTS e3_user")
    users = [r[0] for r in con.execute("SELECT DISTINCT user_id FROM bare ORDER BY user_id").fetchall()]
    picked = random.Random(0).sample(users, min(HISTORY_USERS, len(users)))
    for table in ("bare", "bare_sorted"):
        con.execute(
            f"SELECT * FROM {table} WHERE user_id = ? ORDER BY timestamp", [picked[0]]
        ).fetchall()  # warm
        samples = []
        for user in picked:
            t0 = time.perf_counter()
            con.execute(f"SELECT * FROM {table} WHERE user_id = ? ORDER BY timestamp", [user]).fetchall()
            samples.append((time.perf_counter() - t0) * 1000)
        lat = percentiles(samples)
        results.stage(f"history_{table}", {"p50_ms": round(lat["p50"], 2), "p95_ms": round(lat["p95"], 2),
                                           "users": lat["n"], "load_avg_1m": os.getloadavg()[0]})  # fmt: skip
        print(f"history on {table:12s} p50 {lat['p50']:6.1f} ms  p95 {lat['p95']:6.1f} ms", flush=True)
    con.close()
    db.unlink(missing_ok=True)
    print(f"results: {results.path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
