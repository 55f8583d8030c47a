"""Train one per-sequence transformer peer from RecTools (SASRec or BERT4Rec) to its own early stopping.

Runs inside its own venv (/work/venv-rectools: `pip install torch==2.13.0 'rectools[torch]'`), never the product's.
Input: `<data>/seq.npz` from bench/peers.py (offsets [U+1], items [E] = InterestLens model indices 1..I in the
store's canonical order, n_items). Leave-one-out as everywhere: the last event is the test target, the second-last
the validation target; the peer trains on the rest.

Every epoch (`fit_partial`, one epoch at a time) the validation targets are ranked over the full catalogue under
both protocols (exclude_seen: the user's earlier items removed, the target kept; all_items: nothing removed), ties
counted pessimistically, exactly InterestLens's rule (core.evaluate.ranking). Each protocol keeps the weights of its
own best validation epoch; training stops when neither protocol improved for `--patience` epochs. For a deadline, a
file `<out>/STOP` (this run) or `<out>/../STOP` (every run of the dataset) ends the run after the current epoch: it
tests the best epochs so far and records `stopped: "stop_file"` instead of `"early_stopping"`, so a cut run is never
taken for a converged one. Then each protocol's selected weights rank the test targets under that protocol. Output
`<out>/result.json`: per-epoch validation, CPU seconds, and per protocol the test ranks and top-10 lists
(bench/peers.py computes the metrics with core.evaluate.metrics). A finished config is never re-run. A run cut by a
STOP file or killed resumes from its last finished epoch (`<out>/resume.npz`, bench/peers/seq_resume.py: weights,
Adam state, RNG state, best weights, history and seconds so far), so hours of CPU are never thrown away; the result
records the epochs at which it was resumed.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch


def rank(scores: np.ndarray, seen: list[np.ndarray], targets: np.ndarray, exclude: bool,
         top10: bool = True, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray | None]:
    """Pessimistic 1-based ranks [B] and top-10 [B,10] (None unless `top10`) from scores [B, I+1] (column 0 =
    padding, never ranked). Ranked `chunk` users at a time, so a float64 copy never holds the whole [B, I+1] matrix
    (Sports: 36k users x 18k items would be 5 GB)."""
    if not np.isfinite(scores[:, 1:]).all():
        raise ValueError("non-finite scores")
    ranks = np.empty(len(scores), np.int64)
    tops = np.empty((len(scores), min(10, scores.shape[1])), np.int64) if top10 else None
    for a in range(0, len(scores), chunk):
        b = min(a + chunk, len(scores))
        s = scores[a:b].astype(np.float64, copy=True)
        idx = np.arange(b - a)
        s[:, 0] = -np.inf
        t = s[idx, targets[a:b]].copy()
        if exclude:
            for j, items in enumerate(seen[a:b]):
                s[j, items] = -np.inf
        s[idx, targets[a:b]] = -np.inf
        ranks[a:b] = 1 + (s >= t[:, None]).sum(1)
        if top10:
            s[idx, targets[a:b]] = t
            tops[a:b] = np.argsort(-s, axis=1, kind="stable")[:, : tops.shape[1]]
    return ranks, tops


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--model", required=True, choices=["sasrec", "bert4rec"])
    ap.add_argument("--dropout", type=float, default=0.2)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-len", type=int, default=50, help="session_max_len: the window the peer trains and reads")
    ap.add_argument("--factors", type=int, default=64)
    ap.add_argument("--patience", type=int, default=10)
    ap.add_argument("--max-epochs", type=int, default=300)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--loss", default="softmax", choices=["softmax", "BCE", "gBCE", "sampled_softmax"],
                    help="softmax = full softmax over the catalogue (RecTools' default; ~480 CPU s an epoch on Toys); "
                    "the others score the target against --n-negatives sampled items")
    ap.add_argument("--n-negatives", type=int, default=1, help="sampled negatives per position (sampled losses only)")
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    if (args.out / "result.json").exists():
        return
    import seq_resume
    from pytorch_lightning import seed_everything
    from rectools import Columns
    from rectools.dataset import Dataset
    from rectools.models import BERT4RecModel, SASRecModel

    seed_everything(args.seed, workers=True)
    z = np.load(args.data / "seq.npz")
    offsets, items = z["offsets"], z["items"]
    n_items = int(z["n_items"])
    lens = np.diff(offsets)
    users = np.repeat(np.arange(len(lens)), lens)
    pos = np.arange(len(items)) - np.repeat(offsets[:-1], lens)
    keep = lens >= 3  # users with a validation and a test target (as core.evaluate.leave_one_out)
    rows = np.flatnonzero(keep)
    train_mask = pos < np.repeat(lens - 2, lens)
    valid_mask = pos < np.repeat(lens - 1, lens)

    def frame(mask: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame({Columns.User: users[mask], Columns.Item: items[mask], Columns.Weight: 1.0,
                             Columns.Datetime: pd.to_datetime(pos[mask], unit="D")})

    ds_train = Dataset.construct(frame(train_mask))
    ds_valid_in = ds_train  # validation input = the training events
    ds_test_in = Dataset.construct(frame(valid_mask))  # test input = training events + the validation target
    cls = SASRecModel if args.model == "sasrec" else BERT4RecModel
    model_kwargs = dict(n_factors=args.factors, n_blocks=2, n_heads=2, dropout_rate=args.dropout,
                        session_max_len=args.max_len, lr=args.lr, batch_size=args.batch_size, epochs=1, loss=args.loss,
                        n_negatives=args.n_negatives, deterministic=True, recommend_torch_device="cpu",
                        get_trainer_func=_trainer)
    model = cls(**model_kwargs)
    vt = items[offsets[rows] + lens[rows] - 2]  # validation target items
    tt = items[offsets[rows] + lens[rows] - 1]  # test target items
    seen_valid = [items[offsets[r] : offsets[r] + lens[r] - 2] for r in rows]
    seen_test = [items[offsets[r] : offsets[r] + lens[r] - 1] for r in rows]
    protocols = ("exclude_seen", "all_items")
    best = {p: -1.0 for p in protocols}
    best_epoch = {p: 0 for p in protocols}
    best_state: dict = {}
    history = []
    settings = {k: getattr(args, k) for k in ("model", "dropout", "lr", "seed", "max_len", "factors", "batch_size",
                                              "loss", "n_negatives")}
    epoch, cpu_before, wall_before, resumed_at = 0, 0.0, 0.0, []
    if (args.out / seq_resume.FILE).exists():
        # build the (untrained) model and its optimizer, then overwrite both from the file
        model._build_model_from_dataset(ds_train)
        model.fit_trainer = copy.deepcopy(model._trainer)
        model.is_fitted = True
        lm = model.lightning_model
        lm.is_fitted = True  # else its on_train_start draws fresh Xavier weights over the restored ones
        lm.optimizer = torch.optim.Adam(lm.torch_model.parameters(), lr=lm.lr, betas=lm.adam_betas)
        restored = seq_resume.load(args.out, settings, lm.torch_model, lm.optimizer)
        if restored is None:  # saved under other settings: start afresh, from the same seed
            seed_everything(args.seed, workers=True)
            model = cls(**model_kwargs)
        else:
            loop, best_state = restored
            epoch, history, resumed_at = loop["epoch"], loop["history"], loop["resumed_at"] + [loop["epoch"]]
            best, best_epoch = loop["best"], loop["best_epoch"]
            cpu_before, wall_before = loop["seconds"], loop["wall_seconds"]
    c0, w0 = time.process_time() - cpu_before, time.perf_counter() - wall_before
    stopped = "max_epochs"
    while epoch < args.max_epochs:
        epoch += 1
        f0 = time.process_time()
        if model.is_fitted:  # a fresh trainer each epoch, as a resumed run gets (Lightning draws from the RNG itself)
            model.fit_trainer = copy.deepcopy(model._trainer)
        model.fit_partial(ds_train, min_epochs=1, max_epochs=1)
        fit_s = time.process_time() - f0
        scores = full_scores(model, ds_valid_in, rows, n_items)
        v = {}
        for p in protocols:
            r, _ = rank(scores, seen_valid, vt, p == "exclude_seen", top10=False)
            v[p] = float(np.where(r <= 10, 1 / np.log2(r + 1), 0).mean())
            if v[p] > best[p] + 1e-4:
                best[p], best_epoch[p] = v[p], epoch
                best_state[p] = copy.deepcopy(model.lightning_model.torch_model.state_dict())
        # seconds: cumulative CPU s (training + validation); fit_seconds: this epoch's training step alone
        history.append({"epoch": epoch, "seconds": time.process_time() - c0, "fit_seconds": fit_s, **{f"valid_ndcg10_{p}": v[p] for p in v}})
        (args.out / "progress.json").write_text(json.dumps(history))
        lm = model.lightning_model
        seq_resume.save(args.out, settings, lm.torch_model, lm.optimizer, best_state,
                        {"epoch": epoch, "best": best, "best_epoch": best_epoch, "history": history,
                         "seconds": time.process_time() - c0, "wall_seconds": time.perf_counter() - w0,
                         "resumed_at": resumed_at})
        if all(epoch - best_epoch[p] >= args.patience for p in protocols):
            stopped = "early_stopping"
            break
        if (args.out / "STOP").exists() or (args.out.parent / "STOP").exists():
            stopped = "stop_file"
            break
    train_seconds = time.process_time() - c0
    result = {"model": args.model, "dropout": args.dropout, "lr": args.lr, "seed": args.seed, "max_len": args.max_len,
              "factors": args.factors, "stopped": stopped, "loss": args.loss, "n_negatives": args.n_negatives,
              "epochs": epoch, "train_seconds": train_seconds, "resumed_at": resumed_at,
              "wall_seconds": time.perf_counter() - w0, "history": history, "users": rows.tolist(), "test": {}}
    for p in protocols:
        model.lightning_model.torch_model.load_state_dict(best_state[p])
        scores = full_scores(model, ds_test_in, rows, n_items)
        r, top = rank(scores, seen_test, tt, p == "exclude_seen")
        result["test"][p] = {"best_epoch": best_epoch[p], "valid_ndcg10": best[p],
                             "seconds_at_best_epoch": history[best_epoch[p] - 1]["seconds"],
                             "ranks": r.tolist(), "top": top.tolist()}
    tmp = args.out / "result.json.tmp"
    tmp.write_text(json.dumps(result))
    os.replace(tmp, args.out / "result.json")
    if stopped == "early_stopping":  # converged: nothing left to resume (a cut or capped run may go on later)
        (args.out / seq_resume.FILE).unlink(missing_ok=True)


def _trainer():
    from pytorch_lightning import Trainer

    return Trainer(max_epochs=1, min_epochs=1, deterministic=True, enable_progress_bar=False,
                   enable_model_summary=False, logger=False, enable_checkpointing=False, accelerator="cpu", devices=1)


def full_scores(model, ds, rows: np.ndarray, n_items: int) -> np.ndarray:
    """Scores [len(rows), n_items + 1] of every item (our indices; column 0 padding) after each user's input."""
    lm = model.lightning_model
    u_ds = model.data_preparator.transform_dataset_u2i(ds, rows)
    loader = model.data_preparator.get_dataloader_recommend(u_ds, 512)
    user_embs, item_embs = lm._get_user_item_embeddings(loader, "cpu")  # [U', d], [I', d]
    sim = (user_embs @ item_embs.T).float().numpy()  # [U', I'] dot product, RecTools' default similarity
    ext_items = model.data_preparator.item_id_map.external_ids  # model-internal id -> our index (or a PAD token)
    ext_users = u_ds.user_id_map.external_ids  # recommend-dataset row -> our user row
    out = np.full((len(rows), n_items + 1), np.float32(-3e38))  # items the peer never saw rank last, finitely
    col = np.array([int(x) if isinstance(x, (int, np.integer)) else 0 for x in ext_items])
    ok = col > 0
    where = {int(u): i for i, u in enumerate(ext_users)}
    # a user with no item the peer knows is dropped by RecTools: that row keeps all-equal scores (worst rank)
    have = np.array([int(r) in where for r in rows], bool)
    order = np.array([where[int(r)] for r in rows[have]], np.int64)
    out[np.ix_(np.flatnonzero(have), col[ok])] = sim[order][:, ok]
    return out


if __name__ == "__main__":
    main()
