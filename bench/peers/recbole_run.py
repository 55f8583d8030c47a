"""Train one RecBole 1.2.1 model (SASRec or GRU4Rec) on an exported atomic dataset and dump its test scores.

Runs inside the isolated `.venv-peers` (numpy<2), never in the product's venv. Imports `recbole.config`,
`recbole.data` and `recbole.utils` directly (`recbole.quick_start` pulls in ray). The ranking metrics are computed
afterwards by `bench/peers.py` with InterestLens's own protocol, from the raw scores written here:

    <out>/scores.npy   [U, n_items] float32 full-catalogue scores of each user's test prefix (RecBole item ids)
    <out>/meta.json    user tokens (row order), item tokens (column order), timings, per-epoch validation
"""

from __future__ import annotations

import argparse
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


class BudgetExceeded(Exception):
    """Raised between epochs when the wall-clock budget is spent."""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, help="folder holding <dataset>/<dataset>.inter")
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--model", required=True, choices=["SASRec", "GRU4Rec"])
    ap.add_argument("--max-len", type=int, default=50)
    ap.add_argument("--budget", type=float, default=1200.0, help="training CPU seconds before stopping")
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
        "stopping_step": 10,
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
    t0, c0 = time.perf_counter(), time.process_time()

    def on_valid(epoch_idx: int, valid_score: float) -> None:
        cpu = time.process_time() - c0  # CPU seconds: fair when other work shares the machine
        epochs.append({"epoch": epoch_idx + 1, "valid_ndcg10": float(valid_score), "seconds": cpu,
                       "wall_seconds": time.perf_counter() - t0})
        with open(out / "progress.json", "w") as f:
            json.dump(epochs, f)
        if cpu >= args.budget:
            raise BudgetExceeded

    stopped = "early_stopping"
    try:
        trainer.fit(train_data, valid_data, saved=True, show_progress=False, callback_fn=on_valid)
    except BudgetExceeded:
        stopped = "time_budget"
    train_seconds = time.process_time() - c0
    wall_seconds = time.perf_counter() - t0
    state = torch.load(trainer.saved_model_file, map_location="cpu")  # RecBole's own checkpoint format
    model.load_state_dict(state["state_dict"])
    model.eval()
    uid, iid = dataset.uid_field, dataset.iid_field
    users, rows = [], []
    with torch.no_grad():
        for interaction, _hist, _pos_u, _pos_i in test_data:
            scores = model.full_sort_predict(interaction.to(config["device"])).view(len(interaction), -1)
            rows.append(scores.float().cpu().numpy())
            users.extend(dataset.id2token(uid, interaction[uid].cpu().numpy()).tolist())
    np.save(out / "scores.npy", np.concatenate(rows).astype(np.float32))
    best = max(epochs, key=lambda e: e["valid_ndcg10"]) if epochs else None
    meta = {
        "model": args.model,
        "users": [str(u) for u in users],
        "items": [str(t) for t in dataset.field2id_token[iid].tolist()],
        "train_seconds": train_seconds,
        "wall_seconds": wall_seconds,
        "best_epoch": best["epoch"] if best else None,
        "seconds_at_best_epoch": best["seconds"] if best else None,
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
