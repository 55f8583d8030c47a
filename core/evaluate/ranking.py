"""Full-catalogue ranking of held-out targets: the protocol of ../shared/METRICS.md §1.

Every item of the catalogue is scored. Two protocols (`PROTOCOLS`):

- `exclude_seen`: items the user already has in the input (all earlier events, not only the model's window) are
  removed from the ranking, never the target itself (the S3Rec / ICLRec protocol);
- `all_items`: nothing is removed (RecBole's sequential full-sort protocol; the honest one for logs with repeats).

Ties count **pessimistically**: the target's rank is 1 + the number of other ranked items whose score is greater
than *or equal to* the target's, so a model that scores everything alike gets the worst rank, never the best.
(Top-K lists, which are shown rather than scored, still order tied items by lower index.) Non-finite scores (NaN,
±inf) are refused with a `ValueError`: they are a broken model, never a rank.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from core.evaluate.windows import prefix_pairs, window_batch
from core.model import Batch
from core.sequences import Sequences

__all__ = ["Scorer", "Ranked", "rank_targets", "rank_targets_protocols", "top_k", "exclude_seen", "model_scorer",
           "rank_batch", "check_finite", "PROTOCOLS", "Protocol"]

Protocol = Literal["exclude_seen", "all_items"]
PROTOCOLS: tuple[Protocol, ...] = ("exclude_seen", "all_items")

Scorer = Callable[[Batch], torch.Tensor]  # a batch of input windows -> scores [B, I+1] (index 0 ignored)


@dataclass
class Ranked:
    """Targets ranked in the full catalogue, one row per evaluated user."""

    rows: np.ndarray  # [U] user rows in the Sequences
    targets: np.ndarray  # [U] absolute index of the target event
    items: np.ndarray  # [U] model index of the target item
    ranks: np.ndarray  # [U] 1-based rank of the target (ties pessimistic; seen items excluded under exclude_seen)
    top: np.ndarray  # [U,K] model indices of the top-K items in order
    protocol: Protocol = "exclude_seen"  # which items were removed from the ranking (see the module docstring)


def check_finite(scores: torch.Tensor) -> None:
    """Raise ValueError when any item score (columns 1.., index 0 is padding) of scores [B, I+1] is NaN or ±inf."""
    bad = ~torch.isfinite(scores[:, 1:])
    if bool(bad.any()):
        n = int(bad.sum())
        raise ValueError(f"The model produced {n:,} non-finite scores (NaN or infinite), so its ranking is undefined; "
                         "retrain it or check its inputs.")


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
    protocol: Protocol = "exclude_seen",
    prepare: Callable[[Batch, np.ndarray, np.ndarray], Batch] | None = None,
) -> Ranked:
    """Rank each target (absolute event index) among all items, the input being every earlier event of its user.

    The scorer reads the latest `max_len` events; seen-item exclusion (under `exclude_seen`) uses the whole input.
    `prepare(batch, lo, hi)` may add inputs that depend on where each window sits (a social model's friends' states).
    """
    return rank_targets_protocols(scorer, seqs, rows, targets, max_len, k, batch_size, (protocol,), prepare)[protocol]


def rank_targets_protocols(
    scorer: Scorer,
    seqs: Sequences,
    rows: np.ndarray,
    targets: np.ndarray,
    max_len: int,
    k: int = 10,
    batch_size: int = 256,
    protocols: tuple[Protocol, ...] = PROTOCOLS,
    prepare: Callable[[Batch, np.ndarray, np.ndarray], Batch] | None = None,
) -> dict[Protocol, Ranked]:
    """`rank_targets` under several protocols from one scoring pass: {protocol: Ranked}."""
    rows = np.asarray(rows, np.int64)
    targets = np.asarray(targets, np.int64)
    target_items = seqs.items[targets] if len(targets) else np.zeros(0, np.int64)
    known = target_items > 0  # a target the model has never seen cannot be ranked; it is left out
    rows, targets, target_items = rows[known], targets[known], target_items[known]
    ranks = {p: np.zeros(len(rows), np.int64) for p in protocols}
    tops = {p: np.zeros((len(rows), k), np.int64) for p in protocols}
    starts = seqs.offsets[rows]
    for b0 in range(0, len(rows), batch_size):
        sl = slice(b0, b0 + batch_size)
        lo, hi = starts[sl], targets[sl]
        w_lo = np.maximum(lo, hi - max_len)
        batch = window_batch(seqs, w_lo, hi)
        if prepare is not None:
            batch = prepare(batch, w_lo, hi)
        with torch.no_grad():
            raw = scorer(batch).float().cpu()  # [B,I+1]
        for p in protocols:
            ranks[p][sl], top = rank_batch(raw.clone(), seqs, lo, hi, target_items[sl], k, p == "exclude_seen")
            tops[p][sl, : top.shape[1]] = top  # a catalogue smaller than k leaves empty (0) slots
    return {p: Ranked(rows, targets, target_items, ranks[p], tops[p], p) for p in protocols}


def rank_batch(
    scores: torch.Tensor, seqs: Sequences, lo: np.ndarray, hi: np.ndarray, target_items: np.ndarray, k: int = 10,
    exclude: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Ranks [B] of the target items and top-k lists [B,k] from full scores [B, I+1] (modified in place).

    Row b's input is events lo[b] .. hi[b]-1; with `exclude` those items are removed, except the target itself.
    Ties count pessimistically (every other item scored >= the target ranks above it). Raises ValueError on
    non-finite scores.
    """
    check_finite(scores)
    tgt = torch.from_numpy(np.asarray(target_items, np.int64))[:, None]  # [B,1]
    t_score = scores.gather(1, tgt)  # [B,1] before exclusion: a repeated target is never excluded
    if exclude:
        owner, ev = prefix_pairs(lo, hi)
        exclude_seen(scores, owner, seqs.items[ev])
    else:
        scores[:, 0] = float("-inf")
    scores.scatter_(1, tgt, float("-inf"))  # the target does not tie with itself
    at_least = (scores >= t_score).sum(1)  # [B] other ranked items scored >= the target
    scores.scatter_(1, tgt, t_score)
    return (1 + at_least).numpy(), top_k(scores, k)[1].numpy()


def model_scorer(model: torch.nn.Module, device: torch.device | str = "cpu") -> Scorer:
    """Scores of an `InterestModel` (eval mode) after each window's last present event."""

    def score(batch: Batch) -> torch.Tensor:
        return model(batch.to(device))

    return score
