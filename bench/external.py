"""Proof on a model nobody here wrote: RecBole's SASRec, exported to ONNX and registered, through every analysis.

    # once, in .venv-peers (see bench/peers/sasrec_onnx.py):
    python bench/external_export.py --db data/ml100k.duckdb --out data/peers-atomic --name ml100k
    .venv-peers/bin/python bench/peers/sasrec_onnx.py --data data/peers-atomic --dataset ml100k --epochs 200 \
        --hidden 32 --layers 1 --batch 256 --stopping-step 5 --max-minutes 55 --out data/sasrec   # early stopping
    interestlens models add --db data/ml100k.duckdb --name sasrec --onnx data/sasrec/model.onnx
    # then, 1 CPU thread:
    OMP_NUM_THREADS=1 python bench/external.py --db data/ml100k.duckdb --model sasrec --ours data/models/ours

Figures (each with the 1-minute load average beside it), written to `bench/results/external-ml100k.json`:

- reproduction: InterestLens's ranking of the ONNX model's scores under RecBole's protocol for sequential models
  (`core.evaluate.recbole`, what `interestlens evaluate --recbole` reports: RecBole's leave-one-out users, every
  item ranked, the user's history *not* excluded — RecBole's FullSortEvalDataLoader passes no history index for
  them — MRR cut at 10), against RecBole's own test NDCG@10, HR@10 and MRR@10 from `recbole.json`; and under
  InterestLens's default protocol (seen items excluded) for reference;
- explain: p95 latency of `HistoryExplainer.explain` on users with at least 50 events (the ONNX model reads the
  latest 50), and the largest additivity error;
- compare: p95 of `compare_models(ours, sasrec)` end to end on ML-100k (exclude_seen and all_items, each with its
  paired bootstrap; with --compare-recbole RecBole's protocol too, as stage `compare_recbole`);
- user switch: p95 of `core.trajectory.user_view` (what the app's cached user view calls; no attention for an
  external model) + the history table for users seen for the first time;
- served log: a served log written from the ONNX model's top-10 per monthly window (served_at = window end − 1 s),
  loaded with `ingest_served`, and its fairness trend against the model-based trend on the same lists.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import Results, percentiles  # noqa: E402
from core.checkpoint import load_checkpoint, model_for  # noqa: E402
from core.evaluate import evaluate_split, leave_one_out  # noqa: E402
from core.sequences import load_sequences  # noqa: E402
from core.store import connect_read  # noqa: E402


def load1() -> float:
    return os.getloadavg()[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", default="data/ml100k.duckdb")
    ap.add_argument("--model", default="sasrec")
    ap.add_argument("--ours", default="data/models/ours")
    ap.add_argument("--recbole", default="data/sasrec/recbole.json")
    ap.add_argument("--explain-users", type=int, default=20)
    ap.add_argument("--switch-users", type=int, default=30)
    ap.add_argument("--compare-runs", type=int, default=5)
    ap.add_argument("--compare-recbole", action="store_true",
                    help="compare under RecBole's protocol too (stage compare_recbole instead of compare)")
    ap.add_argument("--stages", default="repro,explain,compare,switch,served")
    args = ap.parse_args()
    torch.set_num_threads(1)
    stages = set(args.stages.split(","))
    res = Results("external", "ml100k", resume=True)
    path = model_for(args.db, args.model)
    loaded = load_checkpoint(path)
    with connect_read(args.db) as con:
        seqs = load_sequences(con, loaded.vocab)

    if "repro" in stages:
        import json

        from core.evaluate.recbole import evaluate_recbole

        recbole = json.loads(Path(args.recbole).read_text())
        la = load1()
        # the same function as `interestlens evaluate --recbole` (core.evaluate.recbole: RecBole's split and users,
        # nothing masked, MRR cut at K)
        rb = evaluate_recbole(loaded.scorer.score, seqs, loaded.config.max_len)
        excl, _ = evaluate_split(loaded.scorer.score, seqs, leave_one_out(seqs), "test", loaded.config.max_len,
                                 loaded.vocab.n_items)
        fig = {**{f"recbole_test_{k.replace('@', '')}": recbole["test"][k] for k in ("ndcg@10", "hit@10", "mrr@10")},
               **{f"interestlens_recbole_{k.replace('@', '')}": rb.metrics[k] for k in ("ndcg@10", "hit@10", "mrr@10")},
               "users": rb.users, "difference": rb.metrics["ndcg@10"] - recbole["test"]["ndcg@10"],
               "interestlens_exclude_seen_ndcg10": excl["NDCG@10"],
               **{f"recbole_{k}": recbole.get(k) for k in ("epochs", "best_epoch", "best_valid_ndcg10", "stopped_by",
                                                           "train_cpu_seconds", "train_wall_seconds", "config")},
               "load1": la}
        print("repro", fig)
        res.stage("reproduction", fig)

    if "explain" in stages:
        from core.explain import HistoryExplainer, load_labelled_history

        explainer = HistoryExplainer(loaded)
        long_users = [str(u) for u, n in zip(seqs.user_ids, seqs.lengths, strict=True) if n >= 50]
        rng = np.random.default_rng(0)
        users = list(rng.choice(long_users, size=min(args.explain_users, len(long_users)), replace=False))
        ms, errs, la = [], [], load1()
        with connect_read(args.db) as con:
            lhs = [load_labelled_history(con, loaded, u) for u in users]
        explainer.explain(lhs[0], windows=True)  # warm-up
        cpu = []
        for lh in lhs:
            t0, c0 = time.perf_counter(), time.process_time()
            expl = explainer.explain(lh, windows=True)
            ms.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
            errs.append(expl.additivity_error)
        fig = {"explain_ms": percentiles(ms), "explain_cpu_ms": percentiles(cpu), "max_additivity_error": float(max(errs)), "users": len(users),
               "events_explained": 50, "load1_before": la, "load1_after": load1()}
        print("explain", fig)
        res.stage("explain", fig)

    if "compare" in stages:
        from core.compare import compare_models

        ms, cpu, la = [], [], load1()
        cmp = None
        for _ in range(args.compare_runs):
            t0, c0 = time.perf_counter(), time.process_time()
            cmp = compare_models(args.db, args.ours, path, recbole=args.compare_recbole)
            ms.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
        d = cmp.to_dict()
        fig = {"compare_ms": percentiles(ms), "compare_cpu_ms": percentiles(cpu), "ndcg10_diff": d["NDCG@10_diff"], "interval": [d["NDCG@10_diff_low"],
               d["NDCG@10_diff_high"]], "jaccard": d["overlap"]["jaccard"], "rbo": d["overlap"]["rbo"],
               "a": cmp.a.metrics["NDCG@10"], "b": cmp.b.metrics["NDCG@10"],
               "protocols": {name: {"users": pc.users, "a": pc.ndcg_a, "b": pc.ndcg_b, "diff": pc.ndcg_diff,
                                    "interval": [pc.ndcg_diff_low, pc.ndcg_diff_high]}
                             for name, pc in cmp.protocols.items()},
               "load1_before": la, "load1_after": load1()}
        name = "compare_recbole" if args.compare_recbole else "compare"
        print(name, fig)
        res.stage(name, fig)

    if "switch" in stages:
        from core.store import user_history
        from core.trajectory import TrajectoryAnalyzer
        from core.trajectory import user_view as core_user_view

        analyser = TrajectoryAnalyzer(loaded)  # built once, as the app's cache_resource does

        rng = np.random.default_rng(1)
        users = [str(u) for u in rng.choice(seqs.user_ids, size=args.switch_users, replace=False)]
        ms, cpu, la = [], [], load1()
        with connect_read(args.db) as con:
            core_user_view(analyser, con, users[0], 10, None)  # warm-up
            for u in users[1:]:
                t0, c0 = time.perf_counter(), time.process_time()
                user_history(con, u)
                core_user_view(analyser, con, u, 10, None)
                ms.append((time.perf_counter() - t0) * 1000)
                cpu.append((time.process_time() - c0) * 1000)
        fig = {"switch_ms": percentiles(ms), "switch_cpu_ms": percentiles(cpu), "users": len(users) - 1, "load1_before": la, "load1_after": load1()}
        print("switch", fig)
        res.stage("user_switch", fig)

    if "served" in stages:
        served_stage(args, loaded, seqs, res)


def served_stage(args, loaded, seqs, res: Results) -> None:
    """Write the ONNX model's monthly top-10 lists as a served log into a copy of the database, load it, and
    compare the served-log fairness trend with the model-based trend on the same lists."""
    from core.fairness import calendar_windows, over_time, window_split
    from core.fairness.inputs import _items, _user_attributes, model_recommender
    from core.served import ingest_served
    from core.served.fairness import served_trend
    from core.store.queries import EVENT_ORDER

    copy = Path("data") / "ml100k-served.duckdb"
    shutil.copyfile(args.db, copy)
    with connect_read(copy) as con:
        events = con.execute(f"SELECT user_id, item_id, ts FROM events ORDER BY {EVENT_ORDER}").df()
        cats, _ = _items(con)
        users = _user_attributes(con)
    rec = model_recommender(loaded, seqs)
    rows = []
    windows = calendar_windows(events["ts"], "month")
    for (start, end), (_, nxt) in zip(windows[:-1], windows[1:], strict=True):
        histories, _ = window_split(events, start, end, nxt)
        if len(histories):
            lists = rec(histories, 10)
            rows.append(lists.assign(served_at=(end - pd.Timedelta(seconds=1)).isoformat(), variant="sasrec"))
    log_path = Path("data") / "sasrec-served.csv"
    pd.concat(rows)[["user_id", "item_id", "rank", "score", "served_at", "variant"]].to_csv(log_path, index=False)
    ingest = ingest_served(copy, log_path)
    la = load1()
    from_log = served_trend(copy, "sasrec", k=10, freq="month")
    from_model = over_time(events, rec, 10, cats, users, None, "month")
    worst = 0.0
    for a, b in zip(from_log, from_model, strict=True):
        for key, v in b.metrics.items():
            if v == v:
                worst = max(worst, abs(a.metrics[key] - v))
        for key, v in b.gaps.items():
            if v == v:
                worst = max(worst, abs(a.gaps[key] - v))
    fig = {"served_rows": ingest.accepted, "rejected": ingest.rejected, "windows": len(from_log),
           "windows_model": len(from_model), "max_abs_difference": worst,
           "ndcg10_by_window": [round(w.metrics["NDCG@10"], 6) for w in from_log], "load1": la}
    print("served", fig)
    res.stage("served_log", fig)


if __name__ == "__main__":
    main()
