"""How many permutations an explanation needs: the per-event SHAP values (`core.explain.HistoryExplainer`, the
Permutation explainer) at the app's `event_evals` and at fewer, against a reference with many more, on ML-100k.

For each budget: CPU ms per explanation (process time, one torch thread), the largest |φ − φ_ref| per user (mean
and max over the users, in logit units and relative to the user's largest |φ_ref|), and how many of the reference's
five largest |φ| the budget also ranks in its top five. The reference has its own sampling error (about
sqrt(budget / reference) of a budget's), so the errors are slightly overstated.

Usage::

    python bench/explain_samples.py                       # 8 users, budgets 1010 (the default), 510, 260; reference 8080
    python bench/explain_samples.py --users 20 --budgets 2020,1010

Writes `bench/results/explain_samples-<tag>.json`.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import Results  # noqa: E402

WORK = ROOT / "data" / "cache" / "loadws"  # bench/load_ws.py's database and model
__all__ = ["main"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", type=Path, default=WORK, help="folder with ml100k.duckdb and models/default")
    ap.add_argument("--users", type=int, default=8)
    ap.add_argument("--budgets", default="1010,510,260", help="event_evals to compare (1010 is the app's)")
    ap.add_argument("--reference", type=int, default=8080, help="event_evals of the reference")
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--tag", default="ml100k")
    args = ap.parse_args()
    import torch

    from core.checkpoint import load_checkpoint
    from core.explain import HistoryExplainer, load_labelled_history
    from core.explain.explainer import DEFAULT_EVENT_EVALS
    from core.store import connect_read

    torch.set_num_threads(1)
    loaded = load_checkpoint(args.work / "models" / "default", "cpu")
    load_before = os.getloadavg()
    with connect_read(args.work / "ml100k.duckdb") as con:
        ids = [str(u) for u, in con.execute("SELECT DISTINCT user_id FROM events ORDER BY 1").fetchall()]
        users = random.Random(args.seed).sample(ids, args.users)
        lhs = [load_labelled_history(con, loaded, u) for u in users]
    ref = HistoryExplainer(loaded, event_evals=args.reference, seed=123)  # another seed than the budgets' (0)
    refs = [ref.explain(lh, windows=False, groups=False).values for lh in lhs]
    rows = []
    for budget in [int(b) for b in args.budgets.split(",")]:
        ex = HistoryExplainer(loaded, event_evals=budget)
        ms, err, rel, top = [], [], [], []
        for lh, r in zip(lhs, refs, strict=True):
            c0 = time.process_time()
            v = ex.explain(lh, windows=False, groups=False).values
            ms.append((time.process_time() - c0) * 1000.0)
            err.append(float(np.abs(v - r).max()))
            rel.append(err[-1] / float(np.abs(r).max()))
            top.append(len(set(np.argsort(-np.abs(v))[:5]) & set(np.argsort(-np.abs(r))[:5])))
        row = {"event_evals": budget, "app_default": budget == DEFAULT_EVENT_EVALS,
               "cpu_ms_mean": round(float(np.mean(ms)), 1), "max_abs_error_mean": round(float(np.mean(err)), 4),
               "max_abs_error_max": round(float(np.max(err)), 4), "relative_error_mean": round(float(np.mean(rel)), 3),
               "relative_error_max": round(float(np.max(rel)), 3), "top5_overlap": top,
               "top5_overlap_mean": round(float(np.mean(top)), 2)}
        rows.append(row)
        print(f"event_evals {budget}: {row['cpu_ms_mean']:.0f} ms CPU; max |phi - ref| mean {row['max_abs_error_mean']} "
              f"(max {row['max_abs_error_max']}), relative to max |ref| mean {row['relative_error_mean']} (max "
              f"{row['relative_error_max']}); top-5 overlap {row['top5_overlap_mean']} of 5", flush=True)
    results = Results("explain_samples", args.tag, resume=False)
    results.set("setup", {"users": users, "reference_evals": args.reference, "command": " ".join(sys.argv),
                          "load_average_1min": {"before": load_before[0], "after": os.getloadavg()[0]}})
    results.set("budgets", rows)
    print(f"wrote {results.path}")


if __name__ == "__main__":
    main()
