"""`interestlens train --social`: the interest model with the social branch, trained on a database with edges.

The same windows, batches, seeds, validation protocol (full-ranking NDCG@10 on the split's validation targets picks
the epoch, with patience) and checkpoint format as `core.train`; friends' state timelines are recomputed from the
model at the start of every epoch and for each validation. The card records `"social": true` and the graph used.
Single process (no torchrun) and no text vectors: those stay with `core.train`.
"""

from __future__ import annotations

import copy
import os
import time
from pathlib import Path

import numpy as np
import torch

from core.checkpoint import WEIGHT_DERIVED, save_checkpoint
from core.errors import SettingError, UserInputError
from core.evaluate.evaluate import evaluate_split
from core.evaluate.ranking import model_scorer
from core.evaluate.split import make_split
from core.model import InterestModel, ModelConfig, ModelSizes
from core.model.social import attach_branch
from core.sequences import build_vocab, data_fingerprint, load_sequences
from core.social.context import DEFAULT_K, SocialContext
from core.social.fit import run_epoch
from core.social.graph import load_graph
from core.social.states import compute_timelines
from core.store import connect_read
from core.train.config import TrainConfig, TrainResult
from core.train.data import training_windows

__all__ = ["train_social"]


def train_social(
    db: str | os.PathLike | None, out: str | os.PathLike, model_config: ModelConfig | None = None,
    config: TrainConfig | None = None, k: int = DEFAULT_K,
) -> TrainResult:  # fmt: skip
    """Train with the social branch and save the best epoch's checkpoint to `out` (see the module docstring)."""
    config = config or TrainConfig()
    mcfg = model_config or ModelConfig()
    if config.text or config.device not in ("auto", "cpu"):
        raise SettingError("The social branch trains on the CPU and without {text}; leave that out, or turn the {social} branch off.", ("text", "social"))
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    with connect_read(db) as con:
        fingerprint = data_fingerprint(con)
        vocab = build_vocab(con)
        seqs = load_sequences(con, vocab)
        graph = load_graph(con, seqs, k)
    if graph.n_edges == 0:
        raise SettingError("This database has no social edges between users with events; train with the {social} branch off.", "social")
    split = make_split(seqs, config.split, config.valid_share, config.test_share)
    windows = training_windows(seqs, split, mcfg.max_len)
    if len(windows) == 0 or len(split.targets("valid")[0]) == 0:
        raise UserInputError("There are too few events to train: users need at least 3 events each (2 held out).")
    sizes = ModelSizes(vocab.n_items, len(vocab.categories), len(vocab.event_types),
                       tuple(len(v) for v in vocab.context.values()))  # fmt: skip
    torch.manual_seed(config.seed)
    model = attach_branch(InterestModel(mcfg, sizes, vocab.category_weights() if sizes.n_categories else None))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.lr,
                            weight_decay=config.weight_decay)  # fmt: skip
    best, best_epoch, best_score, best_valid, bad, history = None, 0, -1.0, {}, 0, []
    t0, stopped = time.perf_counter(), "max_epochs"
    for epoch in range(1, config.epochs + 1):
        tl = compute_timelines(model, seqs)
        losses, _ = run_epoch(model, opt, seqs, windows, graph, tl, config.batch_size, config.seed, epoch,
                              config.grad_clip or 1e9)  # fmt: skip
        ctx = SocialContext(seqs, graph, compute_timelines(model, seqs))
        valid, _ = evaluate_split(model_scorer(model), seqs, split, "valid", mcfg.max_len, sizes.n_items,
                                  prepare=ctx.prepare)  # fmt: skip
        history.append({"epoch": epoch, "loss": float(np.mean(losses)), "valid_ndcg10": valid["NDCG@10"]})
        if valid["NDCG@10"] > best_score + config.min_delta or best is None:
            best, best_epoch, best_score, best_valid, bad = copy.deepcopy(model), epoch, valid["NDCG@10"], valid, 0
        else:
            bad += 1
        if bad >= config.patience:
            stopped = "early_stopping"
            break
        if config.time_budget is not None and time.perf_counter() - t0 >= config.time_budget:
            stopped = "time_budget"
            break
    ctx = SocialContext(seqs, graph, compute_timelines(best, seqs))
    test, _ = evaluate_split(model_scorer(best.eval()), seqs, split, "test", mcfg.max_len, sizes.n_items,
                             prepare=ctx.prepare)  # fmt: skip
    seconds = round(time.perf_counter() - t0, 3)
    card = {
        "device": "cpu", "epochs": len(history), "best_epoch": best_epoch, "seconds": seconds, "valid": best_valid,
        "test": test, "split": split.describe(), "trained_until": split.describe().get("trained_until"),
        "stopped": stopped, "train_config": config.to_dict(), "processes": 1,
        "data": {"users": int(seqs.n_users), "items": int(sizes.n_items), "events": int(len(seqs.items)),
                 "train_windows": len(windows), "train_targets": windows.n_targets},
        "parameters": int(sum(p.numel() for p in best.parameters())), "history": history,
        "social": True, "social_graph": {"friend_links": graph.n_edges, "cap_k": graph.k},
    }  # fmt: skip
    save_checkpoint(Path(out), best.eval(), vocab, fingerprint, card, drop=WEIGHT_DERIVED)
    return TrainResult(len(history), seconds, best_epoch, best_valid, "cpu", test, str(out), stopped)
