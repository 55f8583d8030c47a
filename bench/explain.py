"""Faithfulness, additivity and latency of `core.explain` on a trained model (MovieLens-100k by default).

    .venv/bin/python bench/explain.py --db DB --model DIR [--pairs 200] [--size ml100k] [--threads 2]

Stages (each saved to bench/results/explain-<size>.json as it finishes; a rerun resumes):
1. `faithfulness`: `--pairs` random users (seeded), each with its current top-1 item, explained at default settings
   (events, periods and feature groups); deletion curves by SHAP, attention, recency and random orderings; mean,
   spread and quartiles of each normalised deletion area; the largest additivity error over all explanations;
2. `accuracy`: on `--accuracy-pairs` 50-event histories, how close the defaults come to longer runs: correlation and
   largest error of the per-event values against 60 permutations, and the largest window-value error against an
   exhaustive Partition run (`max_evals` 20,000);
3. `latency`: wall time of one default explanation (events + periods + groups) of a 50-event history (the latest
   50 events of users with at least 50), after one warm-up; p50 / p95 / mean, on the model's device. The machine's
   load average is recorded before and after: this machine is shared, so contention shows in the figures.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Results, percentiles  # noqa: E402
from core.checkpoint import load_checkpoint, pick_device  # noqa: E402
from core.explain import (  # noqa: E402
    ORDERINGS,
    HistoryExplainer,
    LabelledHistory,
    deletion_curves,
    load_labelled_history,
    summarise_faithfulness,
)
from core.store import connect_read  # noqa: E402

log = logging.getLogger("bench.explain")


def last_events(lh: LabelledHistory, n: int) -> LabelledHistory:
    m = len(lh)
    return LabelledHistory(lh.user_id, lh.history.slice(m - n, m), lh.labels[m - n :])


def sample_users(db: Path, n: int, seed: int, min_events: int = 1) -> list[str]:
    with connect_read(db) as con:
        users = [r[0] for r in con.execute(
            "SELECT user_id FROM events GROUP BY user_id HAVING count(*) >= ? ORDER BY user_id", [min_events]
        ).fetchall()]
    rng = np.random.default_rng(seed)
    return [users[i] for i in sorted(rng.choice(len(users), size=min(n, len(users)), replace=False))]


def histories(db: Path, loaded, users: list[str]) -> list[LabelledHistory]:
    with connect_read(db) as con:
        return [load_labelled_history(con, loaded, u) for u in users]


def faithfulness(args, loaded, explainer: HistoryExplainer, res: Results) -> dict:
    users = sample_users(args.db, args.pairs, args.seed)
    rows = res.data.setdefault("faithfulness_pairs", [])  # per pair, saved as it goes: a rerun resumes
    done = {r["user"] for r in rows}
    todo = [u for u in users if u not in done]
    t0 = time.perf_counter()
    for i, lh in enumerate(histories(args.db, loaded, todo)):
        expl = explainer.explain(lh)
        curves = deletion_curves(explainer, lh, expl, seed=args.seed)
        rows.append({"user": lh.user_id, "target": expl.target, "events": len(expl.labels), "fx": expl.fx,
                     "base": expl.base, "additivity_error": expl.additivity_error, "auc": curves.auc})
        if (i + 1) % 5 == 0 or i + 1 == len(todo):
            res.save()
            log.info("%d/%d pairs, %.0f s", len(rows), len(users), time.perf_counter() - t0)
    summary = summarise_faithfulness([r["auc"] for r in rows], [r["additivity_error"] for r in rows])
    card = summary.to_card()
    card["events_per_pair"] = percentiles([float(r["events"]) for r in rows])
    return card


def accuracy(args, loaded, explainer: HistoryExplainer, res: Results) -> dict:
    lhs = [last_events(lh, 50) for lh in histories(args.db, loaded, sample_users(args.db, args.accuracy_pairs, args.seed + 1, 50))]
    ref_events = HistoryExplainer(loaded, event_evals=60 * 101, seed=args.seed + 7)
    ref_windows = HistoryExplainer(loaded, window_evals=20_000)
    corr, err, win_err = [], [], []
    for lh in lhs:
        expl = explainer.explain(lh, groups=False)
        ref = ref_events.explain(lh, windows=False, groups=False).values
        corr.append(float(np.corrcoef(expl.values, ref)[0, 1]))
        err.append(float(np.abs(expl.values - ref).max() / max(1e-12, np.abs(ref).max())))
        full = ref_windows.explain(lh, groups=False).windows
        win_err.append(max(abs(a.value - b.value) for a, b in zip(expl.windows, full, strict=True)))
    return {
        "pairs": len(lhs),
        "event_corr_vs_60_permutations": {"mean": float(np.mean(corr)), "min": float(np.min(corr))},
        "event_max_error_rel_vs_60_permutations": {"mean": float(np.mean(err)), "max": float(np.max(err))},
        "window_max_abs_error_vs_exhaustive": float(np.max(win_err)),
    }


def latency(args, loaded, explainer: HistoryExplainer, res: Results) -> dict:
    lhs = [last_events(lh, 50) for lh in histories(args.db, loaded, sample_users(args.db, args.latency_n, args.seed + 2, 50))]
    explainer.explain(lhs[0])  # warm-up: shap's numba functions compile on first use
    load_before = os.getloadavg()
    wall, cpu, evals = [], [], []
    for lh in lhs:
        w0, c0 = time.perf_counter(), time.process_time()
        expl = explainer.explain(lh)
        if loaded.device.type == "cuda":
            torch.cuda.synchronize()
        wall.append((time.perf_counter() - w0) * 1000.0)
        cpu.append((time.process_time() - c0) * 1000.0)
        evals.append(len(expl.labels))
    return {
        "wall_ms": percentiles(wall),
        "process_cpu_ms": percentiles(cpu),
        "events": sorted(set(evals)),
        "device": str(loaded.device),
        "threads": torch.get_num_threads(),
        "event_evals": explainer.event_evals,
        "window_evals": explainer.window_evals,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--db", type=Path, required=True)
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--size", default="ml100k", help="label of the results file: bench/results/explain-<size>.json")
    p.add_argument("--pairs", type=int, default=200)
    p.add_argument("--accuracy-pairs", type=int, default=20)
    p.add_argument("--latency-n", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--stages", default="faithfulness,accuracy,latency")
    p.add_argument("--fresh", action="store_true", help="ignore saved stages")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    res = Results("explain", args.size, resume=not args.fresh)
    loaded = load_checkpoint(args.model, device=pick_device(args.device))
    explainer = HistoryExplainer(loaded)
    res.set("setup", {"db": str(args.db), "model": str(args.model), "model_config": loaded.config.to_dict(),
                      "model_card_test": loaded.card.get("test"), "orderings": list(ORDERINGS)})
    stages = {"faithfulness": faithfulness, "accuracy": accuracy, "latency": latency}
    for name in args.stages.split(","):
        if res.done(name):
            print(f"{name}: (saved) {res.get(name)}")
            continue
        print(f"{name}: {res.stage(name, stages[name](args, loaded, explainer, res))}", flush=True)
    print(f"written {res.path}")


if __name__ == "__main__":
    main()
