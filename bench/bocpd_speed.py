"""Speed of the change-point forecast (`core.trajectory.bocpd`) on one long history, per event and per session.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bocpd_speed.py [--events 2700] [--categories 18] [--max-run 100]

Times `bocpd_steps` (the forecast after every event of one user, what a trajectory draws) on a random history of
`--events` events over `--categories` categories, sessions of ~6 events; wall and CPU seconds, median of 5, with the
1-minute load average. Writes bench/results/bocpd-speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Results  # noqa: E402
from core.trajectory.bocpd import BocpdParams, bocpd_steps, new_moments  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=2700)
    ap.add_argument("--categories", type=int, default=18)
    ap.add_argument("--max-run", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    n, C = args.events, args.categories
    ev = np.eye(C)[rng.integers(0, C, n)]
    ts = np.cumsum(np.where(rng.random(n) < 1 / 6, 86_400, 60))
    prior = np.full(C, 1.0 / C)
    res = Results("bocpd", "speed", resume=False)
    for per_session in (False, True):
        params = BocpdParams(max_run=args.max_run, per_session=per_session)
        wall, cpu = [], []
        for _ in range(args.repeats):
            w0, c0 = time.perf_counter(), time.process_time()
            bocpd_steps(ev, new_moments(ts, n, params), prior, params)
            wall.append(time.perf_counter() - w0)
            cpu.append(time.process_time() - c0)
        res.stage("per_session" if per_session else "per_event", {
            "events": n, "categories": C, "max_run": args.max_run, "wall_s_median": float(np.median(wall)),
            "cpu_s_median": float(np.median(cpu)), "load_1min": os.getloadavg()[0],
        })
    print(json.dumps(res.data["stages"], indent=2))


if __name__ == "__main__":
    main()
