"""Validate interest trajectories against planted truth, and time them.

    .venv/bin/python bench/trajectory.py --json [--scratch /tmp/interestlens-bench-trajectory]

Stages (each saved to bench/results/trajectory-<size>.json as it finishes; a rerun resumes):
1. build a synthetic database (default 2,000 users) and train a model with `core.train`, in a scratch folder;
2. `tv`: mean total-variation error of the model's p_t against the planted mixture of the event it predicts
   (row k = after k+1 events vs the mixture of event k+2), against the decayed-histogram baseline with its
   half-life tuned on the truth (its best case); also against the truth pushed through the same item→category
   split (what a perfect next-item model's p_t would be);
3. `change_points`: precision / recall / F1 (±5 events) against planted switches. Users are split in two by a
   hash of their id: the change-point signal and penalty are chosen on the "tune" half, F1 is reported on the
   "eval" half, and also for the product's default settings;
4. `latency`: p95 of one user's full trajectory (a ~200-event history; model loaded, CPU);
5. `drift_batch`: wall time of the drift job on this database, and on MovieLens-100k with --ml-db/--ml-model.

The interest forecast against the tuned histogram, per log (`--interest ml100k,synthetic-multi,synthetic-single,
planted`; each log to bench/results/trajectory-interest-<log>.json): `core.trajectory.interest.interest_report` on
the test targets (log-loss, Brier, ECE, entropy; forecast and histogram tuned on validation), and on planted logs
TV, entropy and the long/short share at planted switches (`core.trajectory.planted`). Each synthetic log is built
and a default model trained on it in the scratch folder (`--interest-budget` CPU seconds); ml100k needs
--ml-db/--ml-model. With `--category-loss W` the synthetic logs' models are trained with a category head of that
weight (W = 0: none; model folder `model-catW`) and the results go to bench/results/trajectory-interest-<log>-catW.json
(for ml100k, pass a model trained with `interestlens train --category-loss W`).
Oracles (bench/trajectory_oracles.py): on planted and synthetic-single, `bayes_oracle`, the generator's own Bayes
posterior predictive (bench/bayes_filter.py) and its TV-optimal point, beside the same tuned histogram.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Results, percentiles, time_calls  # noqa: E402
from core.checkpoint import load_checkpoint  # noqa: E402
from core.datasets import generate, load_truth  # noqa: E402
from core.sequences import load_sequences  # noqa: E402
from core.store import connect_read  # noqa: E402
from core.trajectory import (  # noqa: E402
    TrajectoryAnalyzer,
    TrajectoryConfig,
    build_drift,
    change_point_scores,
    decayed_histogram,
    detect_change_points,
    total_variation,
)

log = logging.getLogger("bench.trajectory")

HALF_LIVES = [1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 75, 100, 150, float("inf")]
SCALES = [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 1.25, 1.5, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128, 256, 512]
DIVERGENCES = [0.0, 0.1, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5]
SIGNALS = ["distribution", "long_term", "short_term", "baseline", "events"]


def build_and_train(args, res: Results) -> tuple[Path, Path]:
    from core.datasets.build import build_synthetic
    from core.model import ModelConfig
    from core.train import TrainConfig, train

    scratch = Path(args.scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    db, model_dir = scratch / "synthetic.duckdb", scratch / "model"
    if not db.exists():
        t0 = time.perf_counter()
        build_synthetic(db, users=args.users, items=args.items, events=args.events, seed=args.seed, categories=args.categories)
        res.stage("build", {"db": str(db), "seconds": time.perf_counter() - t0, "users": args.users, "events": args.events})
    have = (model_dir / "model.safetensors").exists()
    prior = res.get("train") or {}
    unfinished = prior.get("stopped") == "time_budget" and prior.get("seconds", 0) < args.train_budget - 60
    if not have or unfinished:  # a run cut by its time budget resumes where it stopped when given more time
        cfg = TrainConfig(device="cpu", epochs=args.epochs, time_budget=args.train_budget, num_threads=args.threads, seed=0)
        result = train(
            db, model_dir, ModelConfig(), cfg, resume=have,
            progress=lambda r: log.info("epoch %d loss %.3f NDCG@10 %.4f", r.epoch, r.loss, r.valid.get("NDCG@10", 0)),
        )
        res.stage("train", result.to_dict())
    return db, model_dir


def projection(truth, vocab) -> tuple[np.ndarray, np.ndarray]:
    """Column order of the truth in the vocabulary's categories, and M[c, c'] = Σ_{i primary c} pop(i|c) · w(i, c')."""
    cats = vocab.categories
    order = np.array([truth.categories.index(c) for c in cats])
    items = generate(**truth.meta["params"]).items  # deterministic: the same catalogue the database was built from
    w = np.zeros((len(items), len(cats)))
    index = {c: n for n, c in enumerate(cats)}
    for n, cs in enumerate(items["categories"]):
        for c in cs:
            w[n, index[c]] = 1.0 / len(cs)
    M = np.zeros((len(cats), len(cats)))
    prim = items["primary_category"].map(index).to_numpy()
    np.add.at(M, prim, w * items["popularity"].to_numpy()[:, None])
    return order, M


def evaluate_tv(trajs, items: dict, truth, vocab, half_life_default: float) -> dict:
    order, M = projection(truth, vocab)
    raw, proj = [], []
    for tr in trajs:
        q = truth.user_mixtures(tr.user_id)[:, order]  # [n, C] in vocab order
        assert len(q) == len(tr), f"truth and database disagree on user {tr.user_id}"
        raw.append(q[1:])
        proj.append(q[1:] @ M)
    raw_all, proj_all = np.concatenate(raw), np.concatenate(proj)

    def err(rows: list[np.ndarray], target: np.ndarray) -> float:
        return float(total_variation(np.concatenate(rows), target).mean())

    out = {"steps": int(len(raw_all)), "users": len(trajs)}
    for name in ("distribution", "long_term", "short_term"):
        rows = [getattr(tr, name)[:-1] for tr in trajs]
        out[f"{name}_tv"] = err(rows, raw_all)
        out[f"{name}_tv_projected"] = err(rows, proj_all)
    w = vocab.category_weights().numpy().astype(np.float64)
    hist = {}
    for h in HALF_LIVES:
        rows = [decayed_histogram(w[items[tr.user_id]], h)[:-1] for tr in trajs]
        hist[h] = (err(rows, raw_all), err(rows, proj_all))
    best = min(HALF_LIVES, key=lambda h: hist[h][0])
    best_p = min(HALF_LIVES, key=lambda h: hist[h][1])
    out |= {
        "baseline_half_life_tuned": best,
        "baseline_tv_by_half_life": {str(h): v[0] for h, v in hist.items()},
        "baseline_default_half_life": half_life_default,
        "baseline_default_tv": hist.get(half_life_default, (None,))[0],
        "model_tv_error": out["distribution_tv"],
        "baseline_tv_error": hist[best][0],
        "tv_error_ratio": out["distribution_tv"] / hist[best][0],
        "projected_baseline_half_life": best_p,
        "projected_model_tv_error": out["distribution_tv_projected"],
        "projected_baseline_tv_error": hist[best_p][1],
        "projected_tv_error_ratio": out["distribution_tv_projected"] / hist[best_p][1],
    }
    by_arch = {}
    for arch in ("switch", "gradual", "periodic", "stable"):
        sel = [k for k, tr in enumerate(trajs) if truth.archetype(tr.user_id) == arch]
        if sel:
            tgt = np.concatenate([raw[k] for k in sel])
            by_arch[arch] = {
                "users": len(sel),
                "model": err([trajs[k].distribution[:-1] for k in sel], tgt),
                "baseline": err([decayed_histogram(w[items[trajs[k].user_id]], best)[:-1] for k in sel], tgt),
            }
    out["by_archetype"] = by_arch
    return out


def evaluate_change_points(trajs, items: dict, truth, vocab, tolerance: int = 5) -> dict:
    w = vocab.category_weights().numpy().astype(np.float64)
    cfg = TrajectoryConfig()
    halves = {"tune": [], "eval": []}
    for tr in trajs:
        halves["tune" if zlib.crc32(tr.user_id.encode()) % 2 == 0 else "eval"].append(tr)
    planted = {k: [truth.change_points(tr.user_id) for tr in v] for k, v in halves.items()}

    def signal(tr, name: str) -> np.ndarray:
        return w[items[tr.user_id]] if name == "events" else getattr(tr, name)

    def score(half: str, name: str, s: float, delta: float) -> dict:
        det = [
            detect_change_points(signal(tr, name), min_size=cfg.min_segment, scale=s, min_divergence=delta)
            for tr in halves[half]
        ]
        out = change_point_scores(det, planted[half], tolerance).__dict__
        arch = [truth.archetype(tr.user_id) for tr in halves[half]]
        out["false_by_archetype"] = {
            a: sum(len(d) for d, aa in zip(det, arch, strict=True) if aa == a) for a in ("gradual", "periodic", "stable")
        }
        sw = [k for k, a in enumerate(arch) if a == "switch"]
        out["switch_users_f1"] = change_point_scores([det[k] for k in sw], [planted[half][k] for k in sw], tolerance).f1
        return out

    # the signal first (no minimum divergence), then the penalty scale and minimum divergence for it
    grid = {f"{sig}@{s}": score("tune", sig, s, 0.0)["f1"] for sig in SIGNALS for s in SCALES}
    sig = max(grid, key=grid.get).split("@")[0]
    grid2 = {(s, d): score("tune", sig, s, d)["f1"] for s in SCALES if s <= 4 for d in DIVERGENCES}
    scale, delta = max(grid2, key=grid2.get)
    chosen = score("eval", sig, scale, delta)
    default = score("eval", cfg.change_signal, cfg.penalty_scale, cfg.min_divergence)
    return {
        "tolerance": tolerance,
        "tune_users": len(halves["tune"]),
        "eval_users": len(halves["eval"]),
        "tune_f1_by_signal": grid,
        "tune_f1_scale_divergence": {f"{s}/{d}": f for (s, d), f in grid2.items()},
        "chosen_on_tune": {"signal": sig, "scale": scale, "min_divergence": delta, "tune_f1": grid2[scale, delta]},
        "eval_chosen": chosen,
        "eval_default": {
            "signal": cfg.change_signal, "scale": cfg.penalty_scale, "min_divergence": cfg.min_divergence,
            "min_segment": cfg.min_segment, **default,
        },
        "change_point_precision": default["precision"],
        "change_point_recall": default["recall"],
        "change_point_f1": default["f1"],
    }


def latency(db: Path, model_dir: Path, threads: int, n: int = 60) -> dict:
    """p50/p95 of `TrajectoryAnalyzer.user` (database read included) for the user whose history is closest to 200
    events, and of the computation alone on exactly 200 events."""
    import pandas as pd

    loaded = load_checkpoint(model_dir)
    analyzer = TrajectoryAnalyzer(loaded)
    torch.set_num_threads(threads)
    with connect_read(db) as con:
        lengths = con.execute("SELECT user_id, count(*) AS n FROM events GROUP BY 1").fetchall()
        uid, length = min(lengths, key=lambda r: (abs(r[1] - 200), r[0]))
        full = percentiles(time_calls(lambda: analyzer.user(con, uid), n, warmup=3))
        seqs = load_sequences(con, loaded.vocab, users=[uid])
    h = seqs.history(0).slice(0, 200)
    frame = pd.DataFrame({"index": np.arange(len(h)), "time": h.ts.astype("datetime64[s]"), "item": "", "title": None})
    compute = percentiles(time_calls(lambda: analyzer.build(uid, h, frame), n, warmup=3))
    return {"user": uid, "events": length, "threads": threads, "full_ms": full, "compute_ms": compute, "compute_events": len(h)}


def drift_batch(db: Path, model_dir: Path, threads: int) -> dict:
    torch.set_num_threads(threads)
    loaded = load_checkpoint(model_dir)
    t0 = time.perf_counter()
    result = build_drift(db, loaded)
    wall = time.perf_counter() - t0
    return {"users": result.users, "events": result.events, "wall_s": wall, "threads": threads, "path": str(result.path)}


INTEREST_LOGS = {  # name -> how to build it (small enough to train on a shared CPU)
    "synthetic-multi": dict(users=600, items=500, events=30_000, seed=1, categories=12),
    "synthetic-single": dict(users=600, items=500, events=30_000, seed=1, categories=12, single_category=True),
    "planted": dict(users=800, seed=2),
}


def interest_logs(args) -> dict:
    """The `interest` figures of every log asked for (see the module docstring)."""
    import os

    from core.datasets.build import build_synthetic, ingest_dataset
    from core.datasets.planted import generate_planted
    from core.evaluate import split_from_card
    from core.model import ModelConfig
    from core.train import TrainConfig, train
    from core.trajectory.interest import fit_interest, interest_report

    out = {}
    for name in args.interest.split(","):
        tag = "" if args.category_loss is None else f"-cat{args.category_loss:g}"
        res = Results("trajectory", f"interest-{name}{tag}", resume=not args.fresh)
        if name == "ml100k":
            db, model_dir = Path(args.ml_db), Path(args.ml_model)
        else:
            scratch = Path(args.scratch) / f"interest-{name}"
            scratch.mkdir(parents=True, exist_ok=True)
            db, model_dir = scratch / "log.duckdb", scratch / f"model{tag}"
            if not db.exists():
                spec = dict(INTEREST_LOGS[name])
                if name == "planted":
                    ingest_dataset(db, generate_planted(**spec))
                else:
                    build_synthetic(db, **spec)
                res.stage("build", {"db": str(db), **spec})
            if not (model_dir / "model.safetensors").exists():
                cfg = TrainConfig(device="cpu", time_budget=args.interest_budget, clock="process", num_threads=1, seed=0)
                mcfg = ModelConfig(category_loss=args.category_loss or 0.0)
                res.stage("train", {**train(db, model_dir, mcfg, cfg).to_dict(), "load_1min": os.getloadavg()[0]})
        loaded = load_checkpoint(model_dir)
        with connect_read(db) as con:
            seqs = load_sequences(con, loaded.vocab)
        truth = load_truth(db) if Path(str(db) + ".truth").exists() else None
        t0, c0 = time.perf_counter(), time.process_time()
        split = split_from_card(seqs, loaded.card.get("split"))
        forecast, _ = fit_interest(loaded, seqs, split)  # refitted here, so every log uses this code's forecast
        report = interest_report(loaded, seqs, split, forecast=forecast, truth=truth)
        report.pop("reliability")
        figures = {**report, "test_ndcg10": loaded.card.get("test", {}).get("NDCG@10"), "seconds": time.perf_counter() - t0,
                   "cpu_s": time.process_time() - c0,
                   "load_1min": os.getloadavg()[0], "db": str(db), "model": str(model_dir)}
        if truth is not None:
            from bench.trajectory_oracles import oracle_figures

            figures.update(oracle_figures(name, loaded, seqs, split, truth, report, INTEREST_LOGS[name]))
        out[name] = res.stage("interest", figures)
        log.info("%s: %s", name, json.dumps({k: figures[k] for k in ("log_loss_ratio", "forecast_kind", "forecast_source")}))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scratch", default="/tmp/interestlens-bench-trajectory")
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--items", type=int, default=1000)
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--categories", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--train-budget", type=float, default=1800.0, help="training seconds at most")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ml-db", help="a MovieLens-100k database (interestlens build --dataset movielens-100k)")
    ap.add_argument("--ml-model", help="a model trained on it")
    ap.add_argument("--fresh", action="store_true", help="ignore saved stages")
    ap.add_argument("--train-only", action="store_true", help="stop after building and training")
    ap.add_argument("--stages", default="tv,change_points,latency,drift_batch", help="comma-separated stages to run")
    ap.add_argument("--interest", help="comma-separated logs for the interest forecast section (see the docstring)")
    ap.add_argument("--interest-budget", type=float, default=150.0, help="CPU seconds to train each interest log's model")
    ap.add_argument("--category-loss", type=float, default=None,
                    help="train the interest logs' models with a category head of this weight (0 = none); given, "
                         "even as 0, results and models carry the tag -cat<weight>")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.interest:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
        torch.set_num_threads(args.threads)
        result = interest_logs(args)
        print(json.dumps(result, default=str) if args.json else json.dumps(result, indent=2, default=str))
        return
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(args.threads)
    res = Results("trajectory", f"synthetic-{args.users}", resume=not args.fresh)
    db, model_dir = build_and_train(args, res)
    if args.train_only:
        return
    stages = set(args.stages.split(","))
    if stages & {"tv", "change_points"}:
        loaded = load_checkpoint(model_dir)
        truth = load_truth(db)
        with connect_read(db) as con:
            seqs = load_sequences(con, loaded.vocab)
        t0 = time.perf_counter()
        trajs = list(TrajectoryAnalyzer(loaded).trajectories(seqs))
        log.info("trajectories of %d users in %.1f s", len(trajs), time.perf_counter() - t0)
        items = {u: seqs.history(r).items for r, u in enumerate(seqs.user_ids)}
        if "tv" in stages:
            res.stage("tv", evaluate_tv(trajs, items, truth, loaded.vocab, TrajectoryConfig().half_life))
        if "change_points" in stages:
            res.stage("change_points", evaluate_change_points(trajs, items, truth, loaded.vocab))
    if "latency" in stages:
        res.stage("latency", latency(db, model_dir, threads=1))
    if "drift_batch" in stages:
        res.stage("drift_batch_synthetic", drift_batch(db, model_dir, args.threads))
        if args.ml_db and args.ml_model:
            res.stage("drift_batch_ml100k", drift_batch(Path(args.ml_db), Path(args.ml_model), args.threads))
    s = {k: {} for k in ("tv", "change_points", "latency", "drift_batch_synthetic")} | res.data["stages"]
    summary = {
        "model_tv_error": s["tv"].get("model_tv_error"),
        "baseline_tv_error": s["tv"].get("baseline_tv_error"),
        "baseline_half_life": s["tv"].get("baseline_half_life_tuned"),
        "tv_error_ratio": s["tv"].get("tv_error_ratio"),
        "projected_model_tv_error": s["tv"].get("projected_model_tv_error"),
        "projected_baseline_tv_error": s["tv"].get("projected_baseline_tv_error"),
        "projected_tv_error_ratio": s["tv"].get("projected_tv_error_ratio"),
        "change_point_precision": s["change_points"].get("change_point_precision"),
        "change_point_recall": s["change_points"].get("change_point_recall"),
        "change_point_f1": s["change_points"].get("change_point_f1"),
        "latency_p95_ms": s["latency"].get("full_ms", {}).get("p95"),
        "drift_batch_synthetic_s": s["drift_batch_synthetic"].get("wall_s"),
        "drift_batch_ml100k_s": s.get("drift_batch_ml100k", {}).get("wall_s"),
        "results": str(res.path),
    }
    res.set("summary", summary)
    print(json.dumps(summary) if args.json else json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
