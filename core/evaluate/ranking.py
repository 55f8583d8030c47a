"""Full-catalogue ranking of held-out targets: the protocol of ../shared/METRICS.md §1.

Every item of the catalogue is scored; items the user already has in the input (all earlier events, not only
the model's window) are excluded, never the target itself. Ties are broken by item index (lower first), the same
rule the top-K lists use, so a rank and a list never disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from core.evaluate.windows import prefix_pairs, window_batch
from core.model import Batch
from core.sequences import Sequences

__all__ = ["Scorer", "Ranked", "rank_targets", "top_k", "exclude_seen", "model_scorer", "rank_batch"]

Scorer = Callable[[Batch], torch.Tensor]  # a batch of input windows -> scores [B, I+1] (index 0 ignored)


@dataclass
class Ranked:
    """Targets ranked in the full catalogue, one row per evaluated user."""

    rows: np.ndarray  # [U] user rows in the Sequences
    targets: np.ndarray  # [U] absolute index of the target event
    items: np.ndarray  # [U] model index of the target item
    ranks: np.ndarray  # [U] 1-based rank of the target (seen items excluded)
    top: np.ndarray  # [U,K] model indices of the top-K items in order


def top_k(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k (values, indices) per row, ties broken by lower item index. scores [B, I+1] -> [B,k], [B,k].

    Exactly what a stable descending sort would keep, without sorting the catalogue: `torch.topk` finds the k-th
    score, every item above it is in, and the items equal to it fill the remaining places lowest index first.
    """
    k = min(k, scores.shape[-1])
    if k <= 0:
        return scores[:, :0], torch.zeros(scores.shape[0], 0, dtype=torch.long, device=scores.device)
    kth = torch.topk(scores, k, dim=-1).values[:, -1:]  # [B,1] the k-th largest score
    rows, cols = (scores >= kth).nonzero(as_tuple=True)  # [M] candidates, row-major: index order within a row
    counts = torch.bincount(rows, minlength=scores.shape[0])  # [B] candidates per row
    if len(counts) and int(counts.min()) < k:  # only NaN scores leave a row short: fall back to the full sort
        values, idx = torch.sort(scores, dim=-1, descending=True, stable=True)  # [B,I+1]
        return values[:, :k], idx[:, :k]
    tied = (scores[rows, cols] == kth[rows, 0]).long()  # [M] 1 where equal to the k-th score
    running = tied.cumsum(0)  # [M] tied candidates up to and including this one
    tied_rank = running - (running - tied)[(counts.cumsum(0) - counts)[rows]]  # [M] 1-based within its row
    need = k - counts + torch.bincount(rows, weights=tied.double(), minlength=len(counts)).long()  # [B] tied places
    keep = (tied == 0) | (tied_rank <= need[rows])  # [M] exactly k per row
    idx = cols[keep].view(-1, k)  # [B,k] in index order
    values = scores.gather(1, idx)  # [B,k]
    order = torch.sort(values, dim=-1, descending=True, stable=True).indices  # [B,k]; ties keep index order
    return values.gather(1, order), idx.gather(1, order)


def exclude_seen(scores: torch.Tensor, owner: np.ndarray, seen_items: np.ndarray) -> torch.Tensor:
    """Set scores [B, I+1] of seen items (owner[n] = row, seen_items[n] = item) and of padding to -inf, in place."""
    if len(owner):
        scores[torch.from_numpy(owner), torch.from_numpy(seen_items)] = float("-inf")
    scores[:, 0] = float("-inf")
    return scores


def rank_targets(
    scorer: Scorer,
    seqs: Sequences,
    rows: np.ndarray,
    targets: np.ndarray,
    max_len: int,
    k: int = 10,
    batch_size: int = 256,
    prepare: Callable[[Batch, np.ndarray, np.ndarray], Batch] | None = None,
) -> Ranked:
    """Rank each target (absolute event index) among all items, the input being every earlier event of its user.

    The scorer reads the latest `max_len` events; seen-item exclusion uses the whole input. `prepare(batch, lo,
    hi)` may add inputs that depend on where each window sits (a social model's friends' states).
    """
    rows = np.asarray(rows, np.int64)
    targets = np.asarray(targets, np.int64)
    target_items = seqs.items[targets] if len(targets) else np.zeros(0, np.int64)
    known = target_items > 0  # a target the model has never seen cannot be ranked; it is left out
    rows, targets, target_items = rows[known], targets[known], target_items[known]
    ranks = np.zeros(len(rows), np.int64)
    tops = np.zeros((len(rows), k), np.int64)
    starts = seqs.offsets[rows]
    for b0 in range(0, len(rows), batch_size):
        sl = slice(b0, b0 + batch_size)
        lo, hi = starts[sl], targets[sl]
        w_lo = np.maximum(lo, hi - max_len)
        batch = window_batch(seqs, w_lo, hi)
        if prepare is not None:
            batch = prepare(batch, w_lo, hi)
        with torch.no_grad():
            scores = scorer(batch).float().cpu().clone()  # [B,I+1]
        ranks[sl], top = rank_batch(scores, seqs, lo, hi, target_items[sl], k)
        tops[sl, : top.shape[1]] = top  # a catalogue smaller than k leaves empty (0) slots
    return Ranked(rows, targets, target_items, ranks, tops)


def rank_batch(
    scores: torch.Tensor, seqs: Sequences, lo: np.ndarray, hi: np.ndarray, target_items: np.ndarray, k: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """Ranks [B] of the target items and top-k lists [B,k] from full scores [B, I+1] (modified in place).

    Row b's input is events lo[b] .. hi[b]-1; those items are excluded, except the target itself.
    """
    tgt = torch.from_numpy(np.asarray(target_items, np.int64))[:, None]  # [B,1]
    t_score = scores.gather(1, tgt)  # [B,1] before exclusion: a repeated target is never excluded
    owner, ev = prefix_pairs(lo, hi)
    exclude_seen(scores, owner, seqs.items[ev])
    scores.scatter_(1, tgt, t_score)
    ar = torch.arange(scores.shape[1])
    better = (scores > t_score).sum(1)
    ties_before = ((scores == t_score) & (ar[None, :] < tgt)).sum(1)
    return (1 + better + ties_before).numpy(), top_k(scores, k)[1].numpy()


def model_scorer(model: torch.nn.Module, device: torch.device | str = "cpu") -> Scorer:
    """Scores of an `InterestModel` (eval mode) after each window's last present event."""

    def score(batch: Batch) -> torch.Tensor:
        return model(batch.to(device))

    return score
