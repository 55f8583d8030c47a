"""RecBole 1.2.1 peers (SASRec, GRU4Rec) for bench/peers.py: export, the grid, and ranking their test scores with
InterestLens's protocol (core.evaluate.ranking.rank_batch, both protocols)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from core.evaluate import PROTOCOLS, summarize
from core.evaluate.ranking import rank_batch

__all__ = ["run_recbole_part", "export_atomic"]

ROOT = Path(__file__).resolve().parent.parent
NAMES = {"sasrec": "SASRec", "gru4rec": "GRU4Rec"}


def export_atomic(seqs, folder: Path, name: str) -> Path:
    """Write <folder>/<name>/<name>.inter: user, item, timestamp = the event's position in the user's sequence."""
    d = folder / name
    d.mkdir(parents=True, exist_ok=True)
    n = np.diff(seqs.offsets)
    pos = np.arange(len(seqs.items)) - np.repeat(seqs.offsets[:-1], n)
    users = np.repeat(seqs.user_ids.astype(str), n)
    with open(d / f"{name}.inter", "w", encoding="utf-8") as f:
        f.write("user_id:token\titem_id:token\ttimestamp:float\n")
        for u, i, t in zip(users, seqs.items, pos, strict=True):
            f.write(f"{u}\t{i}\t{t}\n")  # item token = our model index, so no mapping is needed back
    return folder


def peer_metrics(meta: dict, out: Path, protocol: str, seqs, split, n_items: int) -> dict:
    """Rank the peer's raw test scores (that protocol's validation-picked weights) with our protocol."""
    scores = np.load(out / f"scores-{protocol}.npy")  # [U, n_recbole_items]
    cols = np.array([int(t) if t != "[PAD]" else 0 for t in meta["items"]])  # RecBole id -> our model index
    full = np.full((len(scores), n_items + 1), np.float32(-3e38))  # an item RecBole lacks ranks last, finitely
    full[:, cols[cols > 0]] = scores[:, cols > 0]
    rows = np.array([seqs.row(u) for u in meta["users"]])
    tgt = split.test[rows]
    ranks, top = rank_batch(torch.from_numpy(full), seqs, seqs.offsets[rows], tgt, seqs.items[tgt], 10,
                            protocol == "exclude_seen")
    return summarize(ranks, top, n_items)


def run_recbole_part(results, args, seqs, split, n: int, work: Path, grid, python: str) -> None:
    size = results.data["size"]
    data = work / "atomic"
    if not (data / size / f"{size}.inter").exists():
        export_atomic(seqs, data, size)
    points = [grid[int(i)] for i in args.grid_points.split(",") if i] if args.grid_points else grid
    for model in [m for m in args.recbole_models.split(",") if m]:
        for d, lr in points:
            key = f"recbole_{model}_d{d}_lr{lr:g}_s0"
            if results.done(key):
                continue
            out = work / key
            cmd = [python, str(ROOT / "bench/peers/recbole_run.py"), "--data", str(data), "--dataset", size,
                   "--model", NAMES[model], "--max-len", "50", "--dropout", str(d), "--lr", str(lr),
                   "--threads", "1", "--out", str(out)]
            env = {**os.environ, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1", "OMP_NUM_THREADS": "1"}
            subprocess.run(cmd, check=True, env=env)
            meta = json.loads((out / "meta.json").read_text())
            test = {p: {**peer_metrics(meta, out, p, seqs, split, n), "best_epoch": meta["best_epoch"][p],
                        "valid_ndcg10": meta["valid_ndcg10"][p],
                        "seconds_at_best_epoch": meta["seconds_at_best_epoch"][p]} for p in PROTOCOLS}
            results.stage(key, {"model": f"recbole_{model}", "dropout": d, "lr": lr, "seed": 0, "max_len": 50,
                                "test": test, "train_seconds": meta["train_seconds"],
                                "wall_seconds": meta["wall_seconds"], "epochs": len(meta["epochs"])})
            print(f"{key} done", file=sys.stderr)
