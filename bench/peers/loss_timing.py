"""CPU seconds of one RecTools SASRec training epoch per loss, estimated from a slice of the users.

Runs in the RecTools venv (/work/venv-rectools), one thread:
    python bench/peers/loss_timing.py --data data/cache/peers/toys/seq --users 1280
Trains one epoch on the first `--users` users' training events (the leave-one-out split of seq_run.py) for each
loss and prints CPU seconds, scaled to all users (linear in the number of batches), and the 1-minute load.
Writes bench/results/peers_loss_timing-<data folder's parent name>.json (e.g. -toys).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

CONFIGS = [("BCE", 1), ("gBCE", 32), ("sampled_softmax", 32), ("gBCE", 256), ("sampled_softmax", 256), ("softmax", 0)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--users", type=int, default=2560)
    ap.add_argument("--max-len", type=int, default=50)
    args = ap.parse_args()
    torch.set_num_threads(1)
    from rectools import Columns
    from rectools.dataset import Dataset
    from rectools.models import SASRecModel

    z = np.load(args.data / "seq.npz")
    offsets, items = z["offsets"], z["items"]
    lens = np.diff(offsets)
    users = np.repeat(np.arange(len(lens)), lens)
    pos = np.arange(len(items)) - np.repeat(offsets[:-1], lens)
    mask = (pos < np.repeat(lens - 2, lens)) & (users < args.users)
    ds = Dataset.construct(pd.DataFrame({Columns.User: users[mask], Columns.Item: items[mask], Columns.Weight: 1.0,
                                         Columns.Datetime: pd.to_datetime(pos[mask], unit="D")}))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from seq_run import _trainer

    out = []
    for loss, neg in CONFIGS:
        model = SASRecModel(n_factors=64, n_blocks=2, n_heads=2, dropout_rate=0.2, session_max_len=args.max_len,
                            lr=1e-3, batch_size=128, epochs=1, loss=loss, n_negatives=max(neg, 1),
                            deterministic=True, recommend_torch_device="cpu", get_trainer_func=_trainer)
        c0 = time.process_time()
        model.fit(ds)
        cpu = time.process_time() - c0
        row = {"loss": loss, "n_negatives": neg, "slice_users": args.users, "cpu_s": cpu,
               "cpu_s_per_epoch_all_users": cpu * len(lens) / args.users, "load1": os.getloadavg()[0]}
        print(json.dumps(row), flush=True)
        out.append(row)
    results = Path(__file__).resolve().parents[1] / "results"
    name = args.data.resolve().parent.name
    (results / f"peers_loss_timing-{name}.json").write_text(json.dumps(
        {"name": "peers_loss_timing", "size": name, "torch_threads": 1, "window": args.max_len, "model":
         "RecTools SASRecModel n_factors 64, n_blocks 2, n_heads 2, batch 128", "runs": out}, indent=1))


if __name__ == "__main__":
    main()
