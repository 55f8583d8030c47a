"""History windows cut straight from the CSR arrays of `Sequences`, as model batches (vectorised, no per-event
Python loops). Training and evaluation both build their batches here."""

from __future__ import annotations

import numpy as np
import torch

from core.model import Batch
from core.sequences import Sequences

__all__ = ["window_positions", "window_batch", "prefix_pairs"]


def window_positions(lo: np.ndarray, hi: np.ndarray, T: int) -> tuple[np.ndarray, np.ndarray]:
    """Absolute event indices of left-padded windows [B,T] ending at hi-1, and which slots are real [B,T].

    Window b holds events max(lo[b], hi[b]-T) .. hi[b]-1 with the latest at slot T-1.
    """
    pos = np.asarray(hi, np.int64)[:, None] - T + np.arange(T, dtype=np.int64)[None, :]  # [B,T]
    real = pos >= np.asarray(lo, np.int64)[:, None]  # [B,T]
    return np.where(real, pos, 0), real


def window_batch(seqs: Sequences, lo: np.ndarray, hi: np.ndarray, T: int | None = None) -> Batch:
    """The events lo[b] .. hi[b]-1 of each window as a left-padded Batch (T defaults to the longest window).

    Items the vocabulary does not know (index 0) are absent slots (mask False), which the model skips.
    """
    lo = np.asarray(lo, np.int64)
    hi = np.asarray(hi, np.int64)
    if T is None:
        T = max(1, int((hi - lo).max()) if len(hi) else 1)
    pos, real = window_positions(lo, hi, T)
    items = np.where(real, seqs.items[pos] if len(seqs.items) else 0, 0)  # [B,T]
    gaps = np.where(real, seqs.gaps[pos] if len(seqs.gaps) else 0, 0)  # [B,T]
    types = np.where(real, seqs.event_types[pos] if len(seqs.event_types) else 0, 0)  # [B,T]
    times = np.where(real, seqs.ts[pos] if len(seqs.ts) else 0, 0)  # [B,T]
    K = seqs.context.shape[1]
    if K and len(seqs.context):
        ctx = np.where(real[:, :, None], seqs.context[pos], 0)  # [B,T,K]
    else:
        ctx = np.zeros((len(lo), T, K), np.int64)
    items_t = torch.from_numpy(np.ascontiguousarray(items))
    return Batch(
        items=items_t,
        gaps=torch.from_numpy(np.ascontiguousarray(gaps)),
        event_types=torch.from_numpy(np.ascontiguousarray(types)),
        context=torch.from_numpy(np.ascontiguousarray(ctx)),
        mask=items_t > 0,
        ts=torch.from_numpy(np.ascontiguousarray(times)),
    )


def prefix_pairs(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(window number, absolute event index) of every event in the ranges starts[b] .. ends[b]-1, concatenated."""
    n = np.maximum(np.asarray(ends, np.int64) - np.asarray(starts, np.int64), 0)
    owner = np.repeat(np.arange(len(n)), n)
    first = np.repeat(np.cumsum(n) - n, n)
    return owner, np.repeat(np.asarray(starts, np.int64), n) + np.arange(int(n.sum())) - first
