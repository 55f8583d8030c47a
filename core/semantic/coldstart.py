"""Cold-start evaluation: items held out of training entirely, then ranked among the whole catalogue.

Protocol (../shared/METRICS.md §1 otherwise): a seeded share of the catalogue is held out; the model trains on a
copy of the database without any event on those items (`without_items`); its catalogue is then extended with them
(`extend_catalogue`: zero own embedding, text alone when the model reads text). A user counts when their last event
(the leave-one-out test target) is on a held-out item; the input is every earlier event, items already in the input
are excluded from the ranking, and the target is ranked among all items, old and new.

A model without text scores every new item the same, so ranks are reported with ties broken at random: a target
with g items scored above it and e others scored equal hits the top K with probability clip((K − g)/(e + 1), 0, 1),
and HR@K is the mean of that probability (exact, not sampled). Without ties this is the ordinary HR@K.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.checkpoint import LoadedModel
from core.evaluate.ranking import exclude_seen
from core.evaluate.windows import prefix_pairs, window_batch
from core.sequences import Sequences
from core.store import connect_write

__all__ = ["ColdStartRanks", "held_out_items", "without_items", "cold_start_targets", "cold_start_ranks"]


@dataclass
class ColdStartRanks:
    """Where each held-out target lands: items scored above it and items scored equal to it (seen excluded)."""

    rows: np.ndarray  # [U] user rows in the Sequences
    greater: np.ndarray  # [U] items scored strictly above the target
    equal: np.ndarray  # [U] other items scored exactly as the target

    def hit_rate(self, k: int) -> float:
        """Expected HR@k with ties broken uniformly at random (see the module docstring); 0.0 for no users."""
        if not len(self.rows):
            return 0.0
        p = np.clip((k - self.greater) / (self.equal + 1.0), 0.0, 1.0)
        return float(p.mean())

    def ndcg(self, k: int) -> float:
        """Expected NDCG@k over a uniformly random order of the tied items."""
        if not len(self.rows):
            return 0.0
        total = 0.0
        for g, e in zip(self.greater, self.equal, strict=True):
            ranks = np.arange(g + 1, g + e + 2)  # equally likely positions
            total += float(np.where(ranks <= k, 1.0 / np.log2(ranks + 1.0), 0.0).mean())
        return total / len(self.rows)


def held_out_items(item_ids: Sequence[str], share: float, seed: int = 0) -> list[str]:
    """A seeded random `share` of the items, sorted."""
    rng = np.random.default_rng(seed)
    n = int(round(share * len(item_ids)))
    return sorted(str(i) for i in rng.choice(np.asarray(item_ids, dtype=object), n, replace=False))


def without_items(db: str | os.PathLike, out: str | os.PathLike, item_ids: Sequence[str]) -> Path:
    """A copy of the database at `out` without any event on `item_ids` (the items themselves stay). Returns out."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(db, out)
    with connect_write(out) as con:
        con.execute("DELETE FROM events WHERE list_contains(?, item_id)", [[str(i) for i in item_ids]])
    return out


def cold_start_targets(seqs: Sequences, first_new: int) -> tuple[np.ndarray, np.ndarray]:
    """Users whose last event is on a new item (model index >= first_new) and who have an earlier event.

    Returns (user rows, absolute target indices).
    """
    starts, ends = seqs.offsets[:-1], seqs.offsets[1:]
    ok = ends - starts >= 2
    last = np.where(ok, ends - 1, 0)
    keep = ok & (seqs.items[last] >= first_new)
    rows = np.flatnonzero(keep)
    return rows, last[rows]


def cold_start_ranks(
    loaded: LoadedModel, seqs: Sequences, rows: np.ndarray, targets: np.ndarray, batch_size: int = 256
) -> ColdStartRanks:
    """Rank each target (absolute event index) among the model's whole catalogue, the input being every earlier
    event of its user (the model reads the latest `max_len`); items in the input are excluded, never the target."""
    model, max_len = loaded.model, loaded.config.max_len
    rows, targets = np.asarray(rows, np.int64), np.asarray(targets, np.int64)
    greater = np.zeros(len(rows), np.int64)
    equal = np.zeros(len(rows), np.int64)
    starts = seqs.offsets[rows]
    for b0 in range(0, len(rows), batch_size):
        sl = slice(b0, b0 + batch_size)
        lo, hi = starts[sl], targets[sl]
        batch = window_batch(seqs, np.maximum(lo, hi - max_len), hi).to(loaded.device)
        with torch.no_grad():
            scores = model(batch).float().cpu()  # [B, I+1]
        tgt = torch.from_numpy(seqs.items[hi])[:, None]  # [B,1]
        t_score = scores.gather(1, tgt)  # [B,1]
        owner, ev = prefix_pairs(lo, hi)
        exclude_seen(scores, owner, seqs.items[ev])
        scores.scatter_(1, tgt, t_score)  # a target already in the input stays rankable
        greater[sl] = (scores > t_score).sum(1).numpy()
        equal[sl] = ((scores == t_score).sum(1) - 1).numpy()
    return ColdStartRanks(rows, greater, equal)
