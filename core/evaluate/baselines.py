"""Baselines ranked through the same protocol as the model: most popular, and a first-order Markov chain.

Both are fitted on training events only (the split's `train_end`), exactly what the model learns from.
"""

from __future__ import annotations

import numpy as np
import torch

from core.evaluate.ranking import Scorer
from core.evaluate.split import Split
from core.evaluate.windows import prefix_pairs
from core.model import Batch
from core.sequences import Sequences

__all__ = ["popularity", "most_popular_scorer", "markov_scorer"]


def popularity(seqs: Sequences, split: Split, n_items: int) -> np.ndarray:
    """Training interactions per item index [I+1] (index 0, unknown items, is 0)."""
    _, ev = prefix_pairs(seqs.offsets[:-1], split.train_end)
    counts = np.bincount(seqs.items[ev], minlength=n_items + 1).astype(np.float64)
    counts[0] = 0.0
    return counts


def most_popular_scorer(seqs: Sequences, split: Split, n_items: int) -> Scorer:
    """Scores every history with the items' training popularity."""
    pop = torch.from_numpy(popularity(seqs, split, n_items)).float()  # [I+1]

    def score(batch: Batch) -> torch.Tensor:
        return pop.expand(batch.size, -1)  # [B,I+1]

    return score


def markov_scorer(seqs: Sequences, split: Split, n_items: int) -> Scorer:
    """Scores items by how often they followed the history's last item in training; ties go to the more popular.

    Transition counts are whole numbers and the popularity tie-break is scaled below 1, so it never overrides a
    count. A history whose last item was never followed in training is ranked by popularity alone.
    """
    starts = seqs.offsets[:-1]
    _, ev = prefix_pairs(starts, np.maximum(split.train_end - 1, starts))  # every training event with a successor
    src, dst = seqs.items[ev], seqs.items[ev + 1]
    keep = (src > 0) & (dst > 0)
    size = n_items + 1
    flat = np.bincount(src[keep] * size + dst[keep], minlength=size * size) if size * size <= 50_000_000 else None
    pop = popularity(seqs, split, n_items)
    tie = torch.from_numpy(pop / (pop.max() + 1.0)).float()  # [I+1] in [0, 1)
    if flat is not None:
        table = torch.from_numpy(flat.reshape(size, size)).float()  # [I+1,I+1]

        def row_counts(last: torch.Tensor) -> torch.Tensor:
            return table[last]
    else:  # a large catalogue: per-source rows of a sorted (source, next) count list, densified per batch
        (p_src, p_dst), p_cnt = np.unique(np.stack([src[keep], dst[keep]]), axis=1, return_counts=True)
        ptr = np.searchsorted(p_src, np.arange(size + 1))

        def row_counts(last: torch.Tensor) -> torch.Tensor:
            out = torch.zeros(len(last), size)
            for b, i in enumerate(last.tolist()):
                out[b, torch.from_numpy(p_dst[ptr[i] : ptr[i + 1]])] = torch.from_numpy(
                    p_cnt[ptr[i] : ptr[i + 1]].astype(np.float32)
                )
            return out

    def score(batch: Batch) -> torch.Tensor:
        last = batch.items[:, -1]  # [B] latest item (0 = unknown: popularity only)
        return row_counts(last) + tie  # [B,I+1]

    return score
