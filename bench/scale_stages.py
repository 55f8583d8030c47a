"""The stages of `bench/scale.py`, one per process: `python bench/scale_stages.py STAGE --size S --work DIR`.

Prints one JSON line of figures; `peak_rss_mb` is this process's VmHWM (a fresh process per stage, so it is the
stage's own), `seconds` / `cpu_seconds` the stage's work after imports.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scale import SIZES  # noqa: E402
from bench.scale_reads import app_stage, parquet_stage, switch_stage, vm_hwm_mb  # noqa: E402

log = logging.getLogger("bench.scale")


def paths(work: Path) -> dict[str, Path]:
    return {"db": work / "events.duckdb", "model": work / "model", "parquet": work / "parquet",
            "attached": work / "attached.duckdb"}


def build(args, p) -> dict:
    from core.datasets.build import build_synthetic

    for f in (p["db"], Path(str(p["db"]) + ".wal")):
        f.unlink(missing_ok=True)
    p["db"].parent.mkdir(parents=True, exist_ok=True)
    marks: list[tuple[str, float, float]] = [("generate", time.perf_counter(), time.process_time())]
    r = build_synthetic(p["db"], categories=12, seed=0, **SIZES[args.size],
                        progress=lambda step: marks.append((step, time.perf_counter(), time.process_time())))
    marks.append(("done", time.perf_counter(), time.process_time()))
    steps = {a[0]: {"seconds": round(b[1] - a[1], 2), "cpu_seconds": round(b[2] - a[2], 2)}
             for a, b in zip(marks, marks[1:], strict=False)}  # fmt: skip
    ingest_s = marks[-1][1] - marks[1][1]  # from the run's first step to the commit
    return {"accepted": r.accepted, "rejected": r.rejected, "duplicates": r.duplicates, "steps": steps,
            "generate_seconds": round(marks[1][1] - marks[0][1], 2), "ingest_seconds": round(ingest_s, 2),
            "ingest_rows_per_s": round(r.accepted / ingest_s), "db_bytes": p["db"].stat().st_size}


def train_stage(args, p) -> dict:
    import shutil

    from core.model import ModelConfig
    from core.train import TrainConfig, train

    cfg = TrainConfig(epochs=1, device="cpu", num_threads=args.threads, seed=0, max_steps=args.max_steps)
    if args.from_card:
        card_cfg = TrainConfig.from_dict(json.loads((p["model"] / "metrics.json").read_text())["train_config"])
        return {**card_figures(p, card_cfg), "from_card": True,
                "note": "the train run was stopped after its epoch and validation (during its final test evaluation); "
                        "figures from the checkpoint card it saved; no test metrics or step_ms"}
    shutil.rmtree(p["model"], ignore_errors=True)
    t0 = time.perf_counter()
    r = train(p["db"], p["model"], ModelConfig(), cfg)
    wall = time.perf_counter() - t0
    fig = card_figures(p, cfg)
    return {**fig, "stopped": r.stopped, "valid": r.valid, "test": r.test, "train_call_seconds": round(wall, 2),
            "load_and_test_seconds": round(wall - fig["measured_train_seconds"] - fig["epoch_valid_seconds"], 2),
            "step_ms": step_times(p["model"], cfg)}


def card_figures(p, cfg) -> dict:
    """The epoch's figures from the checkpoint card (metrics.json) that `train` saves after validating."""
    card = json.loads((p["model"] / "metrics.json").read_text())
    h = card["resume"]["history"][0]
    n_items = card["data"]["items"]
    whole = h["steps"] >= h["epoch_steps"]
    per_step = h["train_seconds"] / max(1, h["steps"])
    epoch = {"epoch_train_seconds": h["train_seconds"] if whole else None,  # measured: only when the epoch ran whole
             "whole_epoch": whole, "steps": h["steps"], "epoch_steps": h["epoch_steps"],
             "measured_train_seconds": h["train_seconds"], "train_seconds_per_step": round(per_step, 4),
             "measured_train_cpu_seconds": h.get("train_cpu_seconds"),  # this process, all threads: load-robust
             "train_cpu_seconds_per_step": round(h["train_cpu_seconds"] / max(1, h["steps"]), 4)
             if h.get("train_cpu_seconds") is not None else None,
             "targets_per_s": round(card["data"]["train_targets"] / h["train_seconds"]) if whole else None}
    if not whole:  # a projection from the measured steps (--max-steps), never a measured epoch
        epoch["train_epoch_seconds_projected"] = round(per_step * h["epoch_steps"], 1)
        if epoch["train_cpu_seconds_per_step"] is not None:
            epoch["train_epoch_cpu_seconds_projected"] = round(epoch["train_cpu_seconds_per_step"] * h["epoch_steps"], 1)
        epoch["projection"] = (f"{h['steps']} of {h['epoch_steps']} optimiser steps measured "
                               f"({h['train_seconds']} s wall, {h.get('train_cpu_seconds')} s CPU); "
                               "epoch = seconds per step x steps per epoch")
    return {**epoch, "epoch_valid_seconds": h["valid_seconds"],
            "batch_size": cfg.batch_size, "loss": h["loss"], "train_targets": card["data"]["train_targets"],
            "sampled_softmax": n_items > cfg.sampled_softmax_above, "n_negatives": cfg.n_negatives, "items": n_items,
            "valid": card["valid"], "card_stopped": card["stopped"], "train_config": card["train_config"]}


def step_times(model_dir: Path, cfg, n: int = 10) -> dict:
    """CPU and wall ms per optimiser step, full vs sampled softmax, on random batches of the training shape."""
    import torch

    from core.checkpoint import load_checkpoint
    from core.model import Batch

    loaded = load_checkpoint(model_dir, "cpu")
    model, L, n_items = loaded.model.train(), loaded.config.max_len, loaded.sizes.n_items
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(0)
    items = torch.randint(1, n_items + 1, (cfg.batch_size, L), generator=g)  # [B,T]
    K = len(loaded.vocab.context)
    batch = Batch(items=items, gaps=torch.randint(1, 20, items.shape, generator=g),
                  event_types=torch.ones_like(items), context=torch.ones(*items.shape, K, dtype=torch.long),
                  mask=items > 0)  # fmt: skip
    targets = torch.randint(1, n_items + 1, items.shape, generator=g)
    out = {}
    for name, neg in (("full", None), ("sampled", cfg.n_negatives)):
        def step(neg=neg):
            loss = model.loss(batch, targets, n_negatives=neg)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        step()  # warm-up
        c0, t0 = time.process_time(), time.perf_counter()
        for _ in range(n):
            step()
        out[name] = {"cpu_ms": round((time.process_time() - c0) / n * 1000, 1),
                     "wall_ms": round((time.perf_counter() - t0) / n * 1000, 1)}
    return out


def evaluate_stage(args, p) -> dict:
    from core.checkpoint import load_checkpoint
    from core.evaluate import evaluate_model
    from core.recommend import RECOMMENDATIONS_FILE, recommend_all, write_recommendations
    from core.store import connect_read

    t0 = time.perf_counter()
    result = evaluate_model(p["db"], p["model"], device="cpu")
    t1 = time.perf_counter()
    loaded = load_checkpoint(p["model"], "cpu")
    with connect_read(p["db"]) as con:
        recs = recommend_all(loaded, con, k=20)
    write_recommendations(recs, p["model"] / RECOMMENDATIONS_FILE)
    t2 = time.perf_counter()
    return {"evaluate_seconds": round(t1 - t0, 2), "recommend_all_seconds": round(t2 - t1, 2), "users": result.users,
            "test": result.metrics, "baselines": result.baselines}


def drift_stage(args, p) -> dict:
    from core.checkpoint import load_checkpoint
    from core.trajectory import build_drift

    loaded = load_checkpoint(p["model"], "cpu")
    r = build_drift(p["db"], loaded)
    return {"users": r.users, "events": r.events, "seconds": round(r.seconds, 2)}


def fairness_stage(args, p) -> dict:
    from bench.fairness import report_once
    from core.fairness import TREND_USERS

    opts = argparse.Namespace(k=10, by=None, n_boot=200, window="month", trend_users=TREND_USERS)
    times, report = report_once(p["db"], p["model"], opts)
    return {**{k: round(v, 2) if isinstance(v, float) else v for k, v in times.items()},
            "windows": len(report["over_time"]), "users": report["items"]["users"]}


STAGE_FNS = {"build": build, "train": train_stage, "evaluate": evaluate_stage, "drift": drift_stage,
             "fairness": fairness_stage, "switch": switch_stage, "app": app_stage, "parquet": parquet_stage}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("stage", choices=sorted(STAGE_FNS))
    ap.add_argument("--size", choices=sorted(SIZES), required=True)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--app-users", type=int, default=10, help="users the app stage opens in the user explorer")
    ap.add_argument("--buckets", type=int, default=64, help="user buckets of the Parquet export")
    ap.add_argument("--max-steps", type=int, default=None,
                    help="train stage: stop after this many optimiser steps and project the epoch from them")
    ap.add_argument("--from-card", action="store_true",
                    help="train stage: do not train; take the figures of the checkpoint a stopped train run saved")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    import torch

    torch.set_num_threads(args.threads)
    t0, c0 = time.perf_counter(), time.process_time()
    figures = STAGE_FNS[args.stage](args, paths(args.work))
    figures.setdefault("seconds", round(time.perf_counter() - t0, 2))
    figures.setdefault("cpu_seconds", round(time.process_time() - c0, 2))
    # a train stage taken from a checkpoint card did not train in this process: its peak is not the training's
    figures["peak_rss_mb"] = None if figures.get("from_card") else round(vm_hwm_mb(), 1)
    print(json.dumps(figures, default=str))


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
