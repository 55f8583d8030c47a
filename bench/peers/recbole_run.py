"""Train one RecBole 1.2.1 model (SASRec or GRU4Rec) on an exported atomic dataset and dump its test scores.

Runs inside the isolated `.venv-peers` (numpy<2), never in the product's venv. Imports `recbole.config`,
`recbole.data` and `recbole.utils` directly (`recbole.quick_start` pulls in ray). The ranking metrics are computed
afterwards by `bench/peers.py` with InterestLens's own protocol, from the raw scores written here:

    <out>/scores-<protocol>.npy  [U, n_items] float32 full-catalogue test scores (RecBole item ids) of the weights
                                 that protocol's validation picked (exclude_seen, all_items)
    <out>/meta.json    user tokens (row order), item tokens (column order), timings, per-epoch validation

Every epoch the validation targets are ranked under both protocols here (ties pessimistic, the user's training
items removed under exclude_seen, as core.evaluate.ranking); each protocol keeps its best epoch's weights, and
training stops when neither improved for `--patience` epochs (RecBole's own stopping is switched off). No CPU cap.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import time
from pathlib import Path

import numpy as np
import torch
from recbole.config import Config
from recbole.data import create_dataset, data_preparation
from recbole.utils import get_model, get_trainer, init_logger, init_seed


class Converged(Exception):
    """Raised between epochs when neither protocol's validation NDCG@10 improved for `--patience` epochs."""


PROTOCOLS = ("exclude_seen", "all_items")


def valid_ndcg(model, data, exclude: bool, device) -> float:
    """NDCG@10 of the validation targets, full ranking, pessimistic ties (exclude: training items removed)."""
    total, n = 0.0, 0
    with torch.no_grad():
        for interaction, hist, _pos_u, pos_i in data:
            s = model.full_sort_predict(interaction.to(device)).view(len(interaction), -1).float().cpu()
            s[:, 0] = float("-inf")
            rows = torch.arange(len(s))
            t = s[rows, pos_i].clone()  # one target per user (leave-one-out)
            if exclude and hist is not None:
                s[hist[0], hist[1]] = float("-inf")
            s[rows, pos_i] = float("-inf")
            r = 1 + (s >= t[:, None]).sum(1).double()
            total += float(torch.where(r <= 10, 1 / torch.log2(r + 1), torch.zeros_like(r)).sum())
            n += len(s)
    return total / max(1, n)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, help="folder holding <dataset>/<dataset>.inter")
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--model", required=True, choices=["SASRec", "GRU4Rec"])
    ap.add_argument("--max-len", type=int, default=50)
    ap.add_argument("--dropout", type=float, default=0.2, help="hidden and attention dropout (GRU4Rec: dropout_prob)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--patience", type=int, default=10)
    ap.add_argument("--seed", type=int, default=2020)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    os.chdir(out)  # RecBole writes log/ and saved/ under the working directory
    cfg = {
        "data_path": str(Path(args.data).resolve()),
        "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        "USER_ID_FIELD": "user_id",
        "ITEM_ID_FIELD": "item_id",
        "TIME_FIELD": "timestamp",
        "MAX_ITEM_LIST_LENGTH": args.max_len,
        "loss_type": "CE",
        "train_neg_sample_args": None,
        "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full", "group_by": "user"},
        "metrics": ["Hit", "NDCG", "MRR"],
        "topk": [10],
        "valid_metric": "NDCG@10",
        "epochs": 1000,
        "stopping_step": 10_000,  # our own two-protocol patience below stops training
        "learning_rate": args.lr,
        "hidden_dropout_prob": args.dropout,
        "attn_dropout_prob": args.dropout,
        "dropout_prob": args.dropout,
        "use_gpu": False,
        "seed": args.seed,
        "reproducibility": True,
        "show_progress": False,
        "checkpoint_dir": str(out / "saved"),
        "worker": 0,
    }
    config = Config(model=args.model, dataset=args.dataset, config_dict=cfg)
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    logging.getLogger().setLevel(logging.WARNING)
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    model = get_model(config["model"])(config, train_data.dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    epochs: list[dict] = []
    best = {p: -1.0 for p in PROTOCOLS}
    best_epoch = {p: 0 for p in PROTOCOLS}
    best_state: dict = {}
    t0, c0 = time.perf_counter(), time.process_time()

    def on_valid(epoch_idx: int, valid_score: float) -> None:
        cpu = time.process_time() - c0  # CPU seconds: fair when other work shares the machine
        e = epoch_idx + 1
        model.eval()
        v = {p: valid_ndcg(model, valid_data, p == "exclude_seen", config["device"]) for p in PROTOCOLS}
        model.train()
        for p in PROTOCOLS:
            if v[p] > best[p] + 1e-4:
                best[p], best_epoch[p] = v[p], e
                best_state[p] = copy.deepcopy(model.state_dict())
        epochs.append({"epoch": e, "valid_ndcg10_recbole": float(valid_score), "seconds": cpu,
                       "wall_seconds": time.perf_counter() - t0, **{f"valid_ndcg10_{p}": v[p] for p in PROTOCOLS}})
        with open(out / "progress.json", "w") as f:
            json.dump(epochs, f)
        if all(e - best_epoch[p] >= args.patience for p in PROTOCOLS):
            raise Converged

    stopped = "max_epochs"
    try:
        trainer.fit(train_data, valid_data, saved=False, show_progress=False, callback_fn=on_valid)
    except Converged:
        stopped = "early_stopping"
    train_seconds = time.process_time() - c0
    wall_seconds = time.perf_counter() - t0
    uid, iid = dataset.uid_field, dataset.iid_field
    for p in PROTOCOLS:
        model.load_state_dict(best_state[p])
        model.eval()
        users, rows = [], []
        with torch.no_grad():
            for interaction, _hist, _pos_u, _pos_i in test_data:
                scores = model.full_sort_predict(interaction.to(config["device"])).view(len(interaction), -1)
                rows.append(scores.float().cpu().numpy())
                users.extend(dataset.id2token(uid, interaction[uid].cpu().numpy()).tolist())
        np.save(out / f"scores-{p}.npy", np.concatenate(rows).astype(np.float32))
    meta = {
        "model": args.model,
        "users": [str(u) for u in users],
        "items": [str(t) for t in dataset.field2id_token[iid].tolist()],
        "train_seconds": train_seconds,
        "wall_seconds": wall_seconds,
        "best_epoch": best_epoch,
        "valid_ndcg10": best,
        "seconds_at_best_epoch": {p: epochs[best_epoch[p] - 1]["seconds"] for p in PROTOCOLS},
        "epochs": epochs,
        "stopped": stopped,
        "max_len": args.max_len,
        "threads": args.threads,
        "config": {k: str(config[k]) for k in ("learning_rate", "train_batch_size", "hidden_size", "n_layers",
                                                "hidden_dropout_prob", "attn_dropout_prob", "embedding_size",
                                                "dropout_prob", "loss_type") if k in config},
    }
    (out / "meta.json").write_text(json.dumps(meta))


if __name__ == "__main__":
    main()
