"""Training and scoring with the social branch: one loop for the model with friends and without, so a comparison
differs only in the branch (same seeds, same windows, same batches).

Friends' state timelines are recomputed from the model at the start of every epoch (without gradient: the branch
learns to read friends' states, the encoder learns from each user's own history); evaluation uses timelines from
the final model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from core.evaluate.metrics import summarize
from core.evaluate.ranking import rank_batch
from core.evaluate.split import Split
from core.evaluate.windows import window_batch, window_positions
from core.friends.graph import FriendGraph
from core.friends.states import StateTimelines, compute_timelines, social_inputs
from core.model import InterestModel, ModelConfig, ModelSizes
from core.model.social import CATEGORY_COPY, attach_branch
from core.sequences import Sequences, Vocab
from core.train.data import epoch_batches, train_batch, training_windows

__all__ = ["SocialFit", "fit", "run_epoch", "social_batch", "rank_social"]


@dataclass
class SocialFit:
    """A trained model and what the comparison reports."""

    model: InterestModel
    social: bool  # whether the social branch was trained
    timelines: StateTimelines | None  # friends' states from the final model (social only)
    seconds_per_step: float  # mean wall seconds of one optimiser step (timelines included, amortised)
    timeline_seconds: float  # wall seconds spent computing timelines in all
    losses: list[float]


def _owner(seqs: Sequences, lo: np.ndarray) -> np.ndarray:
    return np.searchsorted(seqs.offsets, lo, side="right") - 1


def social_batch(seqs: Sequences, lo: np.ndarray, hi: np.ndarray, T: int, tl: StateTimelines, graph: FriendGraph):
    """`window_batch` with `Batch.social` filled: each slot's friends' states strictly before the slot's time."""
    batch = window_batch(seqs, lo, hi, T)
    pos, real = window_positions(lo, hi, T)
    batch.social = social_inputs(tl, graph, _owner(seqs, lo), seqs.ts[pos], real)
    return batch


def fit(
    seqs: Sequences, vocab: Vocab, split: Split, graph: FriendGraph | None, config: ModelConfig,
    epochs: int = 10, batch_size: int = 64, lr: float = 3e-3, seed: int = 0, copy: bool = True,
    by_category: bool = CATEGORY_COPY,
) -> SocialFit:  # fmt: skip
    """Train on the split's training events; with `graph` the model gets the social branch (`copy`: with its copy
    path, `by_category`: its mixture within categories, `core.model.social`)."""
    torch.manual_seed(seed)
    sizes = ModelSizes(vocab.n_items, len(vocab.categories), len(vocab.event_types),
                       tuple(len(v) for v in vocab.context.values()))  # fmt: skip
    model = InterestModel(config, sizes, vocab.category_weights() if sizes.n_categories else None)
    if graph is not None:
        attach_branch(model, copy=copy, by_category=by_category)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    windows = training_windows(seqs, split, config.max_len)
    steps, step_s, tl_s, losses, tl = 0, 0.0, 0.0, [], None
    for epoch in range(1, epochs + 1):
        if graph is not None:
            t0 = time.perf_counter()
            tl = compute_timelines(model, seqs)
            tl_s += time.perf_counter() - t0
        ep_losses, seconds = run_epoch(model, opt, seqs, windows, graph, tl, batch_size, seed, epoch)
        losses += ep_losses
        step_s += seconds
        steps += len(ep_losses)
    model.eval()
    if graph is not None:
        t0 = time.perf_counter()
        tl = compute_timelines(model, seqs)
        tl_s += time.perf_counter() - t0
    return SocialFit(model, graph is not None, tl, (step_s + tl_s) / max(steps, 1), tl_s, losses)


def run_epoch(
    model: InterestModel, opt: torch.optim.Optimizer, seqs: Sequences, windows, graph: FriendGraph | None,
    tl: StateTimelines | None, batch_size: int, seed: int, epoch: int, grad_clip: float = 1.0,
) -> tuple[list[float], float]:  # fmt: skip
    """One epoch of optimiser steps (friends' states from `tl` when `graph` is given): losses and wall seconds."""
    torch.manual_seed(seed * 100_003 + epoch)
    model.train()
    losses, seconds = [], 0.0
    for idx in epoch_batches(windows, batch_size, np.random.default_rng([seed, epoch])):
        t0 = time.perf_counter()
        lo, hi = windows.lo[idx], windows.hi[idx]
        batch, targets = train_batch(seqs, lo, hi)
        if graph is not None:
            pos, real = window_positions(lo, hi, batch.items.shape[1])
            batch.social = social_inputs(tl, graph, _owner(seqs, lo), seqs.ts[pos], real)
        loss = model.loss(batch, targets)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        opt.step()
        seconds += time.perf_counter() - t0
        losses.append(float(loss.detach()))
    model.eval()
    return losses, seconds


@torch.no_grad()
def rank_social(
    fitted: SocialFit, seqs: Sequences, graph: FriendGraph | None, rows: np.ndarray, targets: np.ndarray,
    batch_size: int = 256,
) -> tuple[dict[str, float], np.ndarray, list[np.ndarray]]:  # fmt: skip
    """Metrics of the targets (absolute event indices; input = every earlier event of the user), their ranks, and
    per target the social attention [K] of the last input step over the user's padded friend slots (empty without
    the branch)."""
    model, L = fitted.model, fitted.model.config.max_len
    rows, targets = np.asarray(rows, np.int64), np.asarray(targets, np.int64)
    keep = seqs.items[targets] > 0
    rows, targets = rows[keep], targets[keep]
    ranks, tops, att = np.zeros(len(rows), np.int64), np.zeros((len(rows), 10), np.int64), []
    for s in range(0, len(rows), batch_size):
        lo_all, hi = seqs.offsets[rows[s : s + batch_size]], targets[s : s + batch_size]
        lo = np.maximum(lo_all, hi - L)
        T = max(1, int((hi - lo).max()))
        if fitted.social and graph is not None:
            batch = social_batch(seqs, lo, hi, T, fitted.timelines, graph)
        else:
            batch = window_batch(seqs, lo, hi, T)
        enc = model.encode(batch)
        scores = model.scores(enc, batch).float().clone()
        r, top = rank_batch(scores, seqs, lo_all, hi, seqs.items[hi])
        ranks[s : s + len(r)], tops[s : s + len(r), : top.shape[1]] = r, top
        if enc.social_attention is not None:
            att.extend(enc.social_attention[:, -1].numpy())
    return summarize(ranks, tops, model.sizes.n_items), ranks, att
