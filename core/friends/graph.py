"""The friend graph in model rows (the rows of `Sequences`), each user's friends capped at K by a fixed rule.

The cap rule (documented, deterministic, independent of time): a user's friends are ordered by edge weight
(strongest first), then by the friend's degree (better-connected first), then by user id; the first K are kept.
An undirected edge is a friend at both ends; a directed edge u -> v (u trusts / follows v) makes v a friend of u
only: u's interest may follow v's, not the reverse. Users without events have no interest state and are left out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from core.sequences import Sequences
from core.store.edges import EDGES_TABLE, edge_count

__all__ = ["FriendGraph", "load_graph", "graph_from_frame", "friend_degrees"]


@dataclass(frozen=True)
class FriendGraph:
    """CSR friend lists in `Sequences` rows: user r's friends are rows[offsets[r]:offsets[r+1]] (at most k)."""

    offsets: np.ndarray  # [U+1] int64
    rows: np.ndarray  # [E] int64 friend rows, in the cap rule's order
    weights: np.ndarray  # [E] float64 edge weights
    k: int  # the cap

    def friends(self, row: int) -> np.ndarray:
        return self.rows[self.offsets[row] : self.offsets[row + 1]]

    def padded(self, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """[R,K] friend rows (-1 = none) and [R,K] bool of the users `rows` (default: every user), for batched
        lookups; only those users' lists are read, so a lookup for one user costs O(K), not O(U·K)."""
        users = np.arange(len(self.offsets) - 1) if rows is None else np.asarray(rows, np.int64)
        lo = self.offsets[users]
        counts = self.offsets[users + 1] - lo
        out = np.full((len(users), max(self.k, 1)), -1, np.int64)
        col = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
        out[np.repeat(np.arange(len(users)), counts), col] = self.rows[np.repeat(lo, counts) + col]
        return out, out >= 0

    @property
    def n_edges(self) -> int:
        return len(self.rows)


def load_graph(con: duckdb.DuckDBPyConnection, seqs: Sequences, k: int = 20) -> FriendGraph:
    """The stored edges as a FriendGraph over `seqs`' users (empty when the database has no edges)."""
    if edge_count(con) == 0:
        frame = pd.DataFrame({"src_user": [], "dst_user": [], "weight": [], "directed": []})
    else:
        frame = con.execute(f"SELECT src_user, dst_user, weight, directed FROM {EDGES_TABLE}").fetchdf()
    return graph_from_frame(frame, seqs, k)


def graph_from_frame(
    frame: pd.DataFrame, seqs: Sequences, k: int = 20, degrees: Mapping[str, int] | None = None
) -> FriendGraph:
    """`frame` has src_user, dst_user and optionally weight (1.0) and directed (False). `degrees` (user id → number
    of friends, `friend_degrees`) replaces the degrees counted in `frame` for the cap rule: an ego graph read for
    one user then keeps exactly the friends the whole graph keeps."""
    U = seqs.n_users
    index = {str(u): r for r, u in enumerate(seqs.user_ids)}
    src = np.array([index.get(str(x), -1) for x in frame["src_user"]], np.int64)
    dst = np.array([index.get(str(x), -1) for x in frame["dst_user"]], np.int64)
    w = frame["weight"].to_numpy(float) if "weight" in frame else np.ones(len(src))
    directed = frame["directed"].to_numpy(bool) if "directed" in frame else np.zeros(len(src), bool)
    ok = (src >= 0) & (dst >= 0) & (src != dst)
    src, dst, w, directed = src[ok], dst[ok], w[ok], directed[ok]
    back = ~directed
    a = np.concatenate([src, dst[back]])  # owner
    b = np.concatenate([dst, src[back]])  # friend
    ww = np.concatenate([w, w[back]])
    # one entry per (owner, friend): the strongest tie (numpy sorts: pandas' groupby and sort cost ~10 ms even for
    # one user's ego graph, a user switch's)
    order = np.lexsort((-ww, b, a))
    a, b, ww = a[order], b[order], ww[order]
    first = np.r_[True, (a[1:] != a[:-1]) | (b[1:] != b[:-1])] if len(a) else np.zeros(0, bool)
    a, b, ww = a[first], b[first], ww[first]
    deg = np.bincount(a, minlength=U)[b]
    if degrees is not None and len(a):
        deg = np.array([degrees.get(str(f), d) for f, d in zip(seqs.user_ids[b], deg.tolist(), strict=True)], np.int64)
    # the cap rule: weight (strongest first), degree (largest first), id; then the first k of each owner
    order = np.lexsort((_id_ranks(seqs.user_ids)[b], -deg, -ww, a))
    a, b, ww = a[order], b[order], ww[order]
    counts = np.bincount(a, minlength=U)
    rank = np.arange(len(a)) - np.repeat(np.cumsum(counts) - counts, counts)
    keep = rank < k
    counts = np.bincount(a[keep], minlength=U)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return FriendGraph(offsets, b[keep].astype(np.int64), ww[keep].astype(float), int(k))


def _id_ranks(user_ids: np.ndarray) -> np.ndarray:
    """[U] each row's place in the order of the ids as text (rows are that order already when the sequences come
    from the store, which sorts them by id)."""
    ids = np.asarray(user_ids, dtype=object)
    if len(ids) < 2 or all(str(x) < str(y) for x, y in zip(ids[:-1], ids[1:], strict=True)):
        return np.arange(len(ids))
    ranks = np.empty(len(ids), np.int64)
    ranks[np.argsort(ids.astype(str), kind="stable")] = np.arange(len(ids))
    return ranks


def friend_degrees(con: duckdb.DuckDBPyConnection, users: Sequence[str]) -> dict[str, int]:
    """Each of `users`' number of distinct friends among users with events, counted as `load_graph` counts them
    (an undirected edge at both ends, a directed one at its source), without reading the whole graph."""
    if not users or edge_count(con) == 0:
        return {}
    rows = con.execute(
        f"""WITH e AS (
                SELECT src_user AS a, dst_user AS b FROM {EDGES_TABLE} WHERE list_contains(?, src_user)
                UNION ALL
                SELECT dst_user AS a, src_user AS b FROM {EDGES_TABLE} WHERE NOT directed AND list_contains(?, dst_user))
            SELECT a, count(DISTINCT b) FROM e
            WHERE a <> b AND b IN (SELECT DISTINCT user_id FROM events) GROUP BY a""",
        [list(users), list(users)],
    ).fetchall()
    return {str(a): int(n) for a, n in rows}
