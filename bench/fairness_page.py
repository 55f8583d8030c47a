"""How long the Fairness page takes to open, with and without the inputs saved after training.

    .venv/bin/python bench/fairness_page.py --db data/ml100k.duckdb --model data/models/ml100k

Each open is the app's Fairness page run through Streamlit's AppTest in a fresh Python process (so no Streamlit
cache and no loaded model carry over: a first open after `interestlens serve`), with the page's default settings
(K = 10, its default groupings, quarterly trend windows, 200 bootstrap resamples, smallest group 30). The figure is the
wall time of the page's script run (the app's first run on the Overview page is not counted), with the 1-minute
load average beside it. Stages (saved to bench/results/fairness_page-<size>.json as they finish):

1. `cold`: the model's `fairness_inputs/` folder removed first: every user's list, the test ranks and the trend
   windows' lists are computed during the open (as before training saved them);
2. `save`: `core.fairness.save_inputs`, which `interestlens train` runs after training (its time is training's
   extra cost);
3. `saved`: the page opened with the inputs saved by stage 2, `--repeat` times (its first tab, User groups: only
   the open tab is drawn);
4. `saved_over_time_tab`: the same with the "Over time" tab open (`?fairness_tab=Over time`), whose trend is
   computed only when that tab opens.

The model folder's `fairness_inputs/` is left as stage 2 wrote it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import Results  # noqa: E402


def child(args) -> None:
    """One open of the Fairness page in this (fresh) process; prints one JSON line."""
    from streamlit.testing.v1 import AppTest

    os.environ["INTERESTLENS_DB"] = str(Path(args.db).resolve())
    os.environ["INTERESTLENS_MODEL"] = str(Path(args.model).resolve())
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=600)
    at.run()  # the Overview page; st.navigation registers the pages
    at.switch_page("pages/fairness.py")
    if args.tab:
        at.query_params["fairness_tab"] = args.tab
    load = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), time.process_time()
    at.run()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    errors = [e.value for e in at.exception] + [e.value for e in at.error]
    captions = [c.value for c in at.caption if "computed now" in c.value]
    print(json.dumps({"seconds": wall, "cpu_seconds": cpu, "load_average_1min": load, "errors": errors,
                      "computed_note": bool(captions), "metrics": len(at.metric)}))


def open_page(args, tab: str = "") -> dict:
    cmd = [sys.executable, __file__, "--child", "--db", str(args.db), "--model", str(args.model), "--tab", tab]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        raise SystemExit(f"the page open failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _repeated(args, tab: str) -> dict:
    """`args.repeat` opens of the page on `tab`: each run, their median and largest wall time, and the load."""
    runs = [open_page(args, tab) for _ in range(args.repeat)]
    wall = [r["seconds"] for r in runs]
    cpu = [r["cpu_seconds"] for r in runs]
    return {"runs": runs, "seconds_median": statistics.median(wall), "seconds_p95": _p95(wall),
            "seconds_max": max(wall), "cpu_seconds_median": statistics.median(cpu), "cpu_seconds_p95": _p95(cpu),
            "load_average_1min": [r["load_average_1min"] for r in runs]}


def _p95(values: list[float]) -> float:
    """The 95th percentile by linear interpolation (numpy's default), so 20 opens give a figure between the two largest."""
    import numpy as np

    return float(np.percentile(values, 95))


def _load_range(figures: dict) -> str:
    load = figures["load_average_1min"]
    return f"{min(load):.1f}-{max(load):.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", type=Path, required=True)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--size", default="ml100k", help="label of the results file")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--tab", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return

    from core.fairness import save_inputs
    from core.fairness.saved import SAVED_DIR

    res = Results("fairness_page", args.size, resume=False)
    res.set("settings", {"db": str(args.db), "model": str(args.model), "repeat": args.repeat,
                         "page": "defaults: K 10, default groupings, quarterly trend windows, 200 resamples, smallest group 30"})
    shutil.rmtree(args.model / SAVED_DIR, ignore_errors=True)
    cold = open_page(args)
    res.stage("cold", cold)
    print(f"cold open (nothing saved): {cold['seconds']:.2f} s wall, {cold['cpu_seconds']:.2f} s CPU, "
          f"load {cold['load_average_1min']:.1f}")

    shutil.rmtree(args.model / SAVED_DIR, ignore_errors=True)  # the cold open saved what it computed
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    save_inputs(args.db, args.model)
    saved_s = time.perf_counter() - t0
    res.stage("save", {"seconds": saved_s, "load_average_1min": load})
    print(f"save_inputs (after training): {saved_s:.2f} s, load {load:.1f}")

    figures = _repeated(args, "")
    res.stage("saved", figures)
    print(f"open with saved inputs: median {figures['seconds_median']:.2f} s, p95 {figures['seconds_p95']:.2f} s, "
          f"max {figures['seconds_max']:.2f} s (CPU median {figures['cpu_seconds_median']:.2f} s, p95 "
          f"{figures['cpu_seconds_p95']:.2f} s) over {args.repeat} opens, load {_load_range(figures)}"
          f"; computed-now note shown: {[r['computed_note'] for r in figures['runs']]}")

    figures = _repeated(args, "Over time")
    res.stage("saved_over_time_tab", figures)
    print(f"the Over time tab opened directly, saved inputs: median {figures['seconds_median']:.2f} s, p95 "
          f"{figures['seconds_p95']:.2f} s, max {figures['seconds_max']:.2f} s (CPU p95 {figures['cpu_seconds_p95']:.2f} s), load {_load_range(figures)}")
    print(f"results: {res.path}")


if __name__ == "__main__":
    main()
