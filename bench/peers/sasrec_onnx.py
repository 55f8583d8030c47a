"""Train RecBole 1.2.1 SASRec, report RecBole's own test metrics, and export the model to ONNX with its sidecar.

Runs inside `.venv-peers` (numpy<2; `pip install "onnx<1.18"` there for the exporter), never in the product's
venv. The dataset is written by `bench/external.py export` from an InterestLens database: item and user tokens are
the database's own ids and each event's timestamp is its position in the store's canonical order, so RecBole's
leave-one-out split is InterestLens's split. Writes into <out>:

    model.onnx        inputs item_seq [B,L] int64 (RecBole ids, right-padded, 0 = padding) and item_seq_len [B]
                      int64; output scores [B, n_items] (column j = RecBole item id j, column 0 = padding)
    model.json        the InterestLens sidecar naming those inputs, the output and the item map
    items.csv         index,item_id: RecBole item id -> database item id
    recbole.json      RecBole's own test metrics (full ranking; for a sequential model RecBole masks nothing but the
                      padding column: its FullSortEvalDataLoader builds no history index for them), the validation
                      curve, the best epoch and why training stopped

Training runs to RecBole's own early stopping on validation NDCG@10 (`--stopping-step` epochs without improvement,
RecBole's default 10), the best epoch's weights are restored for the test and the export. `--max-minutes` is a
guard for a shared machine: if it ends training first, recbole.json says `"stopped_by": "time_cap"` (not converged).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import time
from pathlib import Path

import torch
from recbole.config import Config
from recbole.data import create_dataset, data_preparation
from recbole.utils import get_model, get_trainer, init_logger, init_seed


class TimeCap(Exception):
    """Raised from RecBole's per-epoch callback when the wall-time guard is reached (the best weights are saved)."""


class Scores(torch.nn.Module):
    """SASRec's full-catalogue scores as one graph: (item_seq, item_seq_len) -> [B, n_items]."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
        out = self.model.forward(item_seq, item_seq_len)  # [B,D]
        return out @ self.model.item_embedding.weight.t()  # [B,n_items]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, help="folder holding <dataset>/<dataset>.inter")
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--max-len", type=int, default=50)
    ap.add_argument("--hidden", type=int, default=64, help="hidden_size (inner_size = 2 x hidden)")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=2020)
    ap.add_argument("--batch", type=int, default=2048, help="train_batch_size (RecBole's default 2048)")
    ap.add_argument("--lr", type=float, default=0.001, help="learning_rate (RecBole's default 0.001)")
    ap.add_argument("--stopping-step", type=int, default=10, help="epochs without a better validation NDCG@10")
    ap.add_argument("--max-minutes", type=float, default=0.0, help="wall-time guard for training (0 = none)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    data = Path(args.data).resolve()
    os.chdir(out)  # RecBole writes log/ and saved/ under the working directory
    cfg = {
        "data_path": str(data),
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
        "metric_decimal_place": 6,  # RecBole rounds to 4 places by default; 6 for a tighter reproduction
        "epochs": args.epochs,
        "train_batch_size": args.batch,
        "learning_rate": args.lr,
        "stopping_step": args.stopping_step,
        "eval_step": 1,
        "hidden_size": args.hidden,
        "inner_size": 2 * args.hidden,
        "n_layers": args.layers,
        "use_gpu": False,
        "seed": args.seed,
        "reproducibility": True,
        "show_progress": False,
        "checkpoint_dir": str(out / "saved"),
        "worker": 0,
    }
    config = Config(model="SASRec", dataset=args.dataset, config_dict=cfg)
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    logging.getLogger().setLevel(logging.WARNING)
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    model = get_model("SASRec")(config, train_data.dataset).to("cpu")
    trainer = get_trainer(config["MODEL_TYPE"], "SASRec")(config, model)
    t0, c0 = time.perf_counter(), time.process_time()
    curve: list[dict[str, float]] = []

    def on_epoch(epoch: int, valid_score: float) -> None:
        # one line per epoch, so a long run can be watched (and its curve kept if the guard ends it)
        curve.append({"epoch": epoch + 1, "valid_ndcg10": float(valid_score),
                      "wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0,
                      "load1": os.getloadavg()[0]})
        print(json.dumps(curve[-1]), flush=True)
        if args.max_minutes and time.perf_counter() - t0 > 60 * args.max_minutes:
            raise TimeCap

    stopped_by = "epochs"
    try:
        trainer.fit(train_data, valid_data, saved=True, show_progress=False, callback_fn=on_epoch)
        if len(curve) < args.epochs:
            stopped_by = "early_stopping"
    except TimeCap:
        stopped_by = "time_cap"
    train_cpu = time.process_time() - c0
    best = max(curve, key=lambda r: r["valid_ndcg10"])
    test = trainer.evaluate(test_data, load_best_model=True, show_progress=False)  # RecBole's own protocol
    model.eval()
    iid = dataset.iid_field
    tokens = [str(t) for t in dataset.field2id_token[iid].tolist()]  # index 0 = "[PAD]"
    seq = torch.tensor([[1, 2, 3] + [0] * (args.max_len - 3)], dtype=torch.long)
    lens = torch.tensor([3], dtype=torch.long)
    torch.onnx.export(
        Scores(model), (seq, lens), str(out / "model.onnx"), input_names=["item_seq", "item_seq_len"],
        output_names=["scores"], dynamic_axes={"item_seq": {0: "B"}, "item_seq_len": {0: "B"}, "scores": {0: "B"}},
        opset_version=17, dynamo=False,
    )
    with open(out / "items.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["index", "item_id"])
        w.writerows((j, t) for j, t in enumerate(tokens) if j > 0)
    sidecar = {
        "inputs": {"items": "item_seq", "lengths": "item_seq_len"},
        "output": "scores",
        "max_len": args.max_len,
        "padding": "right",
        "items_file": "items.csv",
    }
    (out / "model.json").write_text(json.dumps(sidecar, indent=2))
    facts = {
        "test": {k: float(v) for k, v in test.items()},
        "epochs": len(curve),
        "max_epochs": args.epochs,
        "best_epoch": best["epoch"],
        "best_valid_ndcg10": best["valid_ndcg10"],
        "stopped_by": stopped_by,
        "curve": curve,
        "hidden_size": args.hidden,
        "inner_size": 2 * args.hidden,
        "n_layers": args.layers,
        "train_cpu_seconds": train_cpu,
        "train_wall_seconds": time.perf_counter() - t0,
        "n_items": len(tokens) - 1,
        "config": {k: str(config[k]) for k in ("learning_rate", "train_batch_size", "hidden_size", "n_layers",
                                                "inner_size", "MAX_ITEM_LIST_LENGTH", "loss_type", "seed",
                                                "stopping_step", "hidden_dropout_prob", "attn_dropout_prob")},
    }
    (out / "recbole.json").write_text(json.dumps(facts, indent=2))
    print(json.dumps(facts))


if __name__ == "__main__":
    main()
