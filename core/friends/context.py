"""What a trained social model needs at inference: the friend graph and the friends' state timelines, and the
hook that fills `Batch.social` for windows of the sequences (evaluation, trajectories, evidence)."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np

from core.evaluate.windows import window_positions
from core.friends.graph import FriendGraph, load_graph
from core.friends.states import StateTimelines, compute_timelines, social_inputs
from core.model import Batch, InterestModel
from core.sequences import Sequences

__all__ = ["SocialContext", "social_context", "DEFAULT_K"]

DEFAULT_K = 20  # friends per user the branch attends to (the cap rule is in core.friends.graph)


@dataclass
class SocialContext:
    """The graph and timelines of one model over one set of sequences."""

    seqs: Sequences
    graph: FriendGraph
    timelines: StateTimelines | None  # None until computed (training refreshes them from the live weights)
    # training: the optimiser step whose weights made `timelines` (None: other weights, e.g. the best epoch's), so an
    # epoch that starts from the weights its validation just read does not compute them again
    step: int | None = None

    def prepare(self, batch: Batch, lo: np.ndarray, hi: np.ndarray) -> Batch:
        """Fill `batch.social` for the left-padded windows lo[b] .. hi[b]-1 (absolute event indices)."""
        T = batch.items.shape[1]
        pos, real = window_positions(lo, hi, T)
        rows = np.searchsorted(self.seqs.offsets, np.asarray(lo, np.int64), side="right") - 1
        batch.social = social_inputs(self.timelines, self.graph, rows, self.seqs.ts[pos], real)
        return batch


def social_context(con: duckdb.DuckDBPyConnection, model: InterestModel, seqs: Sequences, k: int = DEFAULT_K,
                   device="cpu") -> SocialContext | None:  # fmt: skip
    """The context for a model with a social branch (None for a model without one)."""
    if model is None or model.social is None:  # no branch (or an external model: core.external)
        return None
    return SocialContext(seqs, load_graph(con, seqs, k), compute_timelines(model, seqs, device=device))
