"""Cost of the per-window bootstrap of the fairness trend (`core.fairness.window_intervals`).

    .venv/bin/python bench/window_intervals.py

One window of synthetic per-user values (NDCG uniform in [0, 1), HR 20 % hits) with four groupings of 2, 4, 4 and 7
groups, 200 resamples (the default): the figure is the wall time of one call, median of 5, at 1,000, 5,000 (the
trend's default panel, `TREND_USERS`) and 20,000 users, with the 1-minute load average beside it. A trend costs this
once per window. Results: bench/results/window_intervals.json.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.fairness import window_intervals  # noqa: E402


def main() -> None:
    rng = np.random.default_rng(1)
    rows = []
    for n in (1_000, 5_000, 20_000):
        values = {"NDCG@10": rng.random(n), "HR@10": (rng.random(n) < 0.2).astype(float)}
        groups = {name: rng.integers(0, g, n) for name, g in (("a", 2), ("b", 4), ("c", 4), ("d", 7))}
        window_intervals(values, groups, "NDCG@10", 10)  # warm-up
        times = []
        for _ in range(5):
            t = time.perf_counter()
            window_intervals(values, groups, "NDCG@10", 200)
            times.append(time.perf_counter() - t)
        row = {"users": n, "n_boot": 200, "median_ms": round(statistics.median(times) * 1000, 1),
               "max_ms": round(max(times) * 1000, 1), "load_1min": round(os.getloadavg()[0], 2)}
        print(json.dumps(row))
        rows.append(row)
    out = ROOT / "bench" / "results" / "window_intervals.json"
    out.write_text(json.dumps({"rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
