"""Size of the HTML report of one user, built as the app's "Build an HTML report of this user" button builds it.

    .venv/bin/python bench/report_size.py --db data/ml100k.duckdb --model data/models/ml100k [--user ID] [--out F]

The user defaults to the one with the most events. The report gets the app's cached trajectory, top 10 and the
explanation of the first (`dashboard.cache`, outside a Streamlit session), exactly as `panels.report_download`
passes them to `dashboard.components.report.user_report`. Prints the events, the size in bytes and MB and the
seconds taken, with the 1-minute load average beside them; writes bench/results/report_size-<db name>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import RESULTS, machine_info  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--user", default=None, help="default: the user with the most events")
    ap.add_argument("--out", default=None, help="also write the report here")
    args = ap.parse_args()
    db_file = Path(args.db).resolve()
    os.environ["INTERESTLENS_DB"] = str(db_file)

    from core.store import connect_read
    from dashboard import cache
    from dashboard.cache import handles
    from dashboard.components.report import user_report
    from dashboard.reader import file_stamp

    user = args.user
    if user is None:
        with connect_read(db_file) as con:
            user = con.execute("SELECT user_id FROM events GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1").fetchone()[0]
    db = handles.DbRef(str(db_file), file_stamp(db_file))
    model = handles.model_ref(Path(args.model).resolve())
    t = time.perf_counter()
    history = cache.user_history(db, user)
    traj = cache.trajectory(db, model, user)
    recs = cache.recommend(db, model, user, 10)
    explanation = cache.explain(db, model, user, str(recs["item_id"].iloc[0])) if len(recs) else None
    html = user_report(user, history, traj, recs, explanation, model_name=model.name)
    seconds = time.perf_counter() - t
    size = len(html.encode("utf-8"))
    if args.out:
        Path(args.out).write_text(html, encoding="utf-8")
    row = {"db": db_file.name, "model": model.name, "user": str(user), "events": len(history), "bytes": size,
           "mb": round(size / 1e6, 3), "seconds": round(seconds, 2), "load_1min": round(os.getloadavg()[0], 2)}
    print(f"user {user}: {len(history):,} events, report {size:,} bytes ({size / 1e6:.2f} MB) in {seconds:.1f} s "
          f"(load {row['load_1min']})")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"report_size-{db_file.stem}.json"
    out.write_text(json.dumps({"machine": machine_info(), "report": row}, indent=2) + "\n")


if __name__ == "__main__":
    main()
