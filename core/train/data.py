"""Training windows and batches, cut from the CSR arrays with numpy (no per-event Python loops).

A user's training events a .. e-1 give inputs a .. e-2 and next-item targets a+1 .. e-1. Histories longer than the
model's window are cut from the end into non-overlapping windows of `max_len` inputs, so every training event is a
target exactly once per epoch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from core.evaluate.split import Split
from core.evaluate.windows import window_batch, window_positions
from core.model import Batch
from core.sequences import Sequences

__all__ = ["TrainWindows", "training_windows", "train_batch", "epoch_batches"]


@dataclass(frozen=True)
class TrainWindows:
    """Window w reads events lo[w] .. hi[w]-1 and predicts events lo[w]+1 .. hi[w]."""

    lo: np.ndarray  # [W] absolute index of the first input event
    hi: np.ndarray  # [W] absolute index one past the last input event

    def __len__(self) -> int:
        return len(self.lo)

    @property
    def n_targets(self) -> int:
        return int((self.hi - self.lo).sum())


def training_windows(seqs: Sequences, split: Split, max_len: int) -> TrainWindows:
    """Every training window of every user (see the module docstring)."""
    a = seqs.offsets[:-1]
    last_input = split.train_end - 1  # inputs end (exclusive) one before the last training event
    m = np.maximum(last_input - a, 0)  # [U] inputs per user
    n_win = -(-m // max_len)  # ceil
    owner = np.repeat(np.arange(len(a)), n_win)
    w = np.arange(int(n_win.sum())) - np.repeat(np.cumsum(n_win) - n_win, n_win)  # window number from the end
    hi = last_input[owner] - w * max_len
    lo = np.maximum(a[owner], hi - max_len)
    return TrainWindows(lo.astype(np.int64), hi.astype(np.int64))


def train_batch(seqs: Sequences, lo: np.ndarray, hi: np.ndarray, T: int | None = None) -> tuple[Batch, torch.Tensor]:
    """Inputs of the windows as a left-padded Batch and the next-item target of every slot [B,T] (0 = none)."""
    if T is None:
        T = max(1, int((hi - lo).max()))
    batch = window_batch(seqs, lo, hi, T)
    pos, real = window_positions(lo, hi, T)
    targets = np.where(real, seqs.items[np.minimum(pos + 1, len(seqs.items) - 1)], 0)  # [B,T]
    return batch, torch.from_numpy(np.ascontiguousarray(targets))


def epoch_batches(
    windows: TrainWindows, batch_size: int, rng: np.random.Generator, rank: int = 0, world: int = 1
) -> list[np.ndarray]:
    """This process's batches of window numbers for one epoch.

    Windows are shuffled, then sorted by length within pools of 50 batches so a batch pads little, and the batches
    are shuffled again. Under torchrun every process draws the same permutation (same seed) and takes every
    world-th batch; all processes get the same number of batches so their steps stay in lock-step.
    """
    perm = rng.permutation(len(windows))
    lengths = (windows.hi - windows.lo)[perm]
    pool = 50 * batch_size
    order = np.concatenate(
        [perm[s : s + pool][np.argsort(-lengths[s : s + pool], kind="stable")] for s in range(0, len(perm), pool)]
    ) if len(perm) else perm
    batches = [order[s : s + batch_size] for s in range(0, len(order), batch_size)]
    batches = [batches[i] for i in rng.permutation(len(batches))]
    if world > 1:
        per = len(batches) // world
        batches = batches[rank::world][:per] if per else batches[:1]
    return batches
