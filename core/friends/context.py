"""What a trained social model needs at inference: the friend graph and the friends' state timelines, and the
hook that fills `Batch.social` for windows of the sequences (evaluation, trajectories, evidence)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from core.evaluate.windows import window_positions
from core.friends.graph import FriendGraph, friend_degrees, graph_from_frame, load_graph
from core.friends.group import DOMINANT_LAST, read_group
from core.friends.index import EdgeIndex
from core.friends.states import StateTimelines, compute_timelines, social_inputs
from core.model import Batch, InterestModel
from core.sequences import Sequences, Vocab
from core.store.edges import EDGES_TABLE

__all__ = ["SocialContext", "social_context", "user_context", "users_context", "DEFAULT_K"]

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
    # user id -> dominant category now (`core.social.communities.dominant_categories`), read with the events by
    # `user_context` for the Friends panel; None when not read
    dominant: dict[str, str | None] | None = None

    def prepare(self, batch: Batch, lo: np.ndarray, hi: np.ndarray) -> Batch:
        """Fill `batch.social` for the left-padded windows lo[b] .. hi[b]-1 (absolute event indices)."""
        T = batch.items.shape[1]
        pos, real = window_positions(lo, hi, T)
        rows = np.searchsorted(self.seqs.offsets, np.asarray(lo, np.int64), side="right") - 1
        batch.social = social_inputs(self.timelines, self.graph, rows, self.seqs.ts[pos], real)
        return batch

    def history_hook(self, rows: Sequence[int]) -> Callable[[Batch, np.ndarray], Batch]:
        """For `core.trajectory.engine.encode_steps`: a hook filling `batch.social` of windows cut from histories
        whose users are `rows` (rows in `seqs`); it gets the batch and each window's history number [B]. Slots are
        read by their own times, so a window of known events only gets exactly what the model scored with."""
        rows = np.asarray(rows, np.int64)

        def fill(batch: Batch, history: np.ndarray) -> Batch:
            ts, real = batch.ts.cpu().numpy(), (batch.items > 0).cpu().numpy()
            batch.social = social_inputs(self.timelines, self.graph, rows[np.asarray(history)], ts, real)
            return batch

        return fill


def social_context(con: duckdb.DuckDBPyConnection, model: InterestModel, seqs: Sequences, k: int = DEFAULT_K,
                   device="cpu") -> SocialContext | None:  # fmt: skip
    """The context for a model with a social branch (None for a model without one)."""
    if model is None or model.social is None:  # no branch (or an external model: core.external)
        return None
    return SocialContext(seqs, load_graph(con, seqs, k), compute_timelines(model, seqs, device=device))


def user_context(con: duckdb.DuckDBPyConnection, model: InterestModel, vocab: Vocab, user_id: str,
                 k: int = DEFAULT_K, edges: EdgeIndex | None = None) -> tuple[SocialContext, int]:  # fmt: skip
    """One user's friend context without reading the whole graph: the user's and their friends' sequences, the ego
    graph capped as training capped it (friends' degrees from the store), the friends' timelines; and the user's row.
    `edges`: the store's edges held for this database version (`users_context`). NotFoundError when the user has no
    events."""
    ctx, rows = users_context(con, model, vocab, [str(user_id)], k, edges, dominant=True)
    return ctx, rows[0]


def users_context(con: duckdb.DuckDBPyConnection, model: InterestModel, vocab: Vocab, user_ids: Sequence[str],
                  k: int = DEFAULT_K, edges: EdgeIndex | None = None,
                  dominant: bool = False) -> tuple[SocialContext, list[int]]:  # fmt: skip
    """`user_context` for a group of users (a cohort, a list to recommend to): their own edges only (one query), their
    and their friends' sequences, each member's friends capped as training capped them, the timelines; and the
    members' rows in the context's sequences. Only the members' friend lists are complete (a friend's own friends
    are not read). NotFoundError when a member has no events.

    `edges`: the store's edges held in memory for the database `con` reads (`core.friends.index.edge_index`, built
    for this very version): the members' edges and the friends' degrees are then looked up instead of read with a
    scan of every edge and event (`friend_degrees`); the context is the same. The members' and friends' events are
    one query (`core.friends.group.read_group`), which with `dominant` also gives everyone's dominant category now
    (`SocialContext.dominant`, what the Friends panel colours friends by)."""
    ids = [str(u) for u in user_ids]
    frame = _member_edges(con, ids) if edges is None else edges.edges_of(ids)
    members = set(ids)
    others = sorted({str(x) for x in pd.concat([frame.src_user, frame.dst_user])} - members)
    group = read_group(con, vocab, [*dict.fromkeys(ids), *others], DOMINANT_LAST if dominant else None)
    seqs = group.seqs
    rows = [seqs.row(u) for u in ids]
    # degrees of every user named (the cap's tie-break reads the friends' degrees in the whole store)
    named = sorted(members | set(others))
    degrees = friend_degrees(con, named) if edges is None else edges.degrees(named)
    graph = graph_from_frame(frame, seqs, k, degrees=degrees)
    return SocialContext(seqs, graph, compute_timelines(model, seqs), dominant=group.dominant if dominant else None), rows


def _member_edges(con: duckdb.DuckDBPyConnection, ids: list[str]) -> pd.DataFrame:
    """The edges that make someone a friend of one of `ids`, read from the store (a scan of the edges table)."""
    return con.execute(
        f"""SELECT src_user, dst_user, weight, directed FROM {EDGES_TABLE}
            WHERE src_user IN (SELECT unnest(?::VARCHAR[]))
               OR (dst_user IN (SELECT unnest(?::VARCHAR[])) AND NOT directed)""",
        [ids, ids],
    ).fetchdf()
