"""The store's social edges held in memory for one database version: a user's own edges and the cap rule's
friend degrees are then looked up, not scanned for.

Without it, every ego graph (`core.friends.context.users_context`, the explorer's user switch, the Friends panel)
reads the user's edges with a filter the edges table has no index for and counts their friends' degrees with
`core.friends.graph.friend_degrees`, which scans every edge and the user column of every event: ~390 ms a call
at 10M events / 1M edges (docs/social_scale.md). An `EdgeIndex` is built with one read of the edges and one of
the users with events; it is valid until the edges change, or which of their users have events. A caller that
sees the database change (the dashboard sees a new file stamp after every commit, `dashboard.cache.social`) hands
its index to `refresh_index`, which rebuilds it only when the edges changed (`edges_version`) and otherwise at
most counts the degrees again. Memory: ~30 bytes per edge plus the ids (~40 MiB at 1M edges and 150k users).

Guarantees: `edges_of(users)` holds exactly the rows of `SELECT src_user, dst_user, weight, directed FROM
social_edges WHERE src_user IN users OR (dst_user IN users AND NOT directed)` (row order aside, which
`graph_from_frame` does not depend on), and `degrees(users)` equals `friend_degrees(con, users)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import duckdb
import numpy as np
import pandas as pd

from core.store.edges import EDGES_TABLE, edge_count
from core.store.source import events_source

__all__ = ["EdgeIndex", "edge_index", "refresh_index", "edges_version", "events_version"]


@dataclass(frozen=True)
class EdgeIndex:
    """Edges as integer codes over the ids they name, with CSR lists by source and by (undirected) target."""

    ids: pd.Index  # [U] every user id named by an edge (code = position)
    src: np.ndarray  # [E] int32 source code of each edge
    dst: np.ndarray  # [E] int32 target code
    weight: np.ndarray  # [E] float64 edge weight
    directed: np.ndarray  # [E] bool
    by_src: np.ndarray  # [U+1] int64 offsets into `src_order`: edges whose source is code u
    src_order: np.ndarray  # [E] int32 edge numbers sorted by source
    by_dst: np.ndarray  # [U+1] int64 offsets into `dst_order`: undirected edges whose target is code u
    dst_order: np.ndarray  # [E'] int32 undirected edge numbers sorted by target
    degree: np.ndarray  # [U] int64 distinct friends with events, counted as `friend_degrees` counts them
    has_events: np.ndarray  # [U] bool whether the user has events (what `degree` counts)
    edges_version: tuple[int, int] = (0, 0)  # `edges_version` of the store it was read from
    events_version: tuple[int, int] = (0, 0)  # `events_version` of the store it was read from

    @property
    def n_edges(self) -> int:
        return len(self.src)

    def _codes(self, users: Sequence[str]) -> np.ndarray:
        codes = self.ids.get_indexer(pd.Index([str(u) for u in users], dtype=object))
        return np.unique(codes[codes >= 0])

    def edges_of(self, users: Sequence[str]) -> pd.DataFrame:
        """src_user, dst_user, weight, directed of the edges that make someone a friend of one of `users` (their
        outgoing edges and the undirected edges that end at them); O(their edges), nothing scanned."""
        codes = self._codes(users)
        parts = [self.src_order[self.by_src[c] : self.by_src[c + 1]] for c in codes]
        parts += [self.dst_order[self.by_dst[c] : self.by_dst[c + 1]] for c in codes]
        # an undirected edge between two of `users` is listed at both ends: once is what the SQL filter returns
        rows = np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.int32)
        return pd.DataFrame({
            "src_user": self.ids.to_numpy()[self.src[rows]], "dst_user": self.ids.to_numpy()[self.dst[rows]],
            "weight": self.weight[rows], "directed": self.directed[rows],
        })  # fmt: skip

    def degrees(self, users: Sequence[str]) -> dict[str, int]:
        """`friend_degrees(con, users)` from memory: only users with at least one friend with events appear."""
        codes = self._codes(users)
        return {str(self.ids[c]): int(self.degree[c]) for c in codes if self.degree[c] > 0}


def _csr(keys: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(keys, kind="stable").astype(np.int32)
    return np.r_[0, np.cumsum(np.bincount(keys, minlength=n))].astype(np.int64), order


def edge_index(con: duckdb.DuckDBPyConnection) -> EdgeIndex:
    """Read the edges (and which of their users have events) once; an empty index for a database without edges."""
    versions = {"edges_version": edges_version(con), "events_version": events_version(con)}
    if versions["edges_version"][0] == 0:
        empty = np.zeros(0, np.int32)
        return EdgeIndex(pd.Index([], dtype=object), empty, empty, np.zeros(0), np.zeros(0, bool),
                         np.zeros(1, np.int64), empty, np.zeros(1, np.int64), empty, np.zeros(0, np.int64),
                         np.zeros(0, bool), **versions)  # fmt: skip
    # ids and their codes are made in SQL (sorted ids, code = rank), so no Python string per edge is ever made:
    # at 1M edges the edges come back as four numeric columns
    ids_sql = f"""SELECT u, (row_number() OVER (ORDER BY u) - 1)::INTEGER AS code
                   FROM (SELECT src_user AS u FROM {EDGES_TABLE} UNION SELECT dst_user FROM {EDGES_TABLE})"""
    named = con.execute(f"""WITH ids AS ({ids_sql})
                            SELECT u, u IN (SELECT user_id FROM events) AS active FROM ids ORDER BY code""").fetchnumpy()
    e = con.execute(f"""WITH ids AS ({ids_sql})
                        SELECT s.code AS src, d.code AS dst, e.weight, e.directed FROM {EDGES_TABLE} e
                        JOIN ids s ON e.src_user = s.u JOIN ids d ON e.dst_user = d.u""").fetchnumpy()
    ids = pd.Index(np.asarray(named["u"], dtype=object), dtype=object)
    # which named users have events: the events' user column is read once here, never per lookup
    has_events = np.asarray(named["active"], bool)
    n = len(ids)
    src, dst = np.asarray(e["src"], np.int32), np.asarray(e["dst"], np.int32)
    weight, directed = np.asarray(e["weight"], np.float64), np.asarray(e["directed"], bool)
    degree = _degrees(src, dst, directed, has_events)
    by_src, src_order = _csr(src, n)
    und = np.flatnonzero(~directed).astype(np.int32)
    by_dst, order = _csr(dst[und], n)
    return EdgeIndex(ids, src, dst, weight, directed, by_src, src_order, by_dst, und[order], degree, has_events,
                     **versions)  # fmt: skip


def _degrees(src: np.ndarray, dst: np.ndarray, directed: np.ndarray, has_events: np.ndarray) -> np.ndarray:
    """friend_degrees for every code: owner a, friend b over every edge a -> b and every undirected edge's reverse;
    distinct b per a, b != a, b with events."""
    n = len(has_events)
    back = ~directed
    a = np.concatenate([src, dst[back]]).astype(np.int64)
    b = np.concatenate([dst, src[back]]).astype(np.int64)
    keep = (a != b) & has_events[b]
    pairs = np.sort(a[keep] * n + b[keep])  # distinct pairs by one sort (np.unique's hashing took ~4 s at 2M)
    pairs = pairs[np.r_[True, pairs[1:] != pairs[:-1]]] if len(pairs) else pairs
    return np.bincount(pairs // n, minlength=n).astype(np.int64)


def edges_version(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """(edges stored, the latest run that stored one): it changes whenever the edges do. Edges are only added by an
    ingest run, whose id is above every earlier run's, and only removed (`forget`): so two versions with the same
    latest run hold subsets of the same runs' edges, and the same count means the same edges."""
    if edge_count(con) == 0:
        return (0, 0)
    n, run = con.execute(f"SELECT count(*), coalesce(max(run_id), 0) FROM {EDGES_TABLE}").fetchone()
    return (int(n), int(run))


def events_version(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """(events stored, the latest run that stored one), read as `edges_version` is."""
    n, run = con.execute("SELECT count(*), coalesce(max(run_id), 0) FROM events").fetchone()
    return (int(n), int(run))


def refresh_index(con: duckdb.DuckDBPyConnection, index: EdgeIndex) -> EdgeIndex:
    """The index of the database `con` reads now, from `index` (read from an earlier version of it): the same
    object when neither the edges nor which of their users have events changed; the same edges with the degrees
    counted again when only the latter did (a named user's first events, or a user's last ones deleted); a new
    `edge_index` only when the edges themselves changed. Live mode commits events every few seconds, and the edges
    rarely: the 1M-edge build (~1 s of CPU, 2 s wall, bench/social_index.py) is then paid once, not by the first
    switch after each commit.

    Which named users have events is checked only against the runs added since `index` when events were only
    added to the events table (the count grew by exactly the new runs' rows), and against every event otherwise."""
    if edges_version(con) != index.edges_version:
        return edge_index(con)
    seen = events_version(con)
    if seen == index.events_version or index.n_edges == 0:
        return index if seen == index.events_version else replace(index, events_version=seen)
    count, run = index.events_version
    added = con.execute("SELECT count(*) FROM events WHERE run_id > ?", [run]).fetchone()[0]
    # only appended (into the events table, whose runs are numbered in order; a Parquet store's run numbers are not):
    # new users can only come from the new runs
    if seen[0] == count + int(added) and events_source(con) is None:
        new = con.execute("SELECT DISTINCT user_id FROM events WHERE run_id > ?", [run]).fetchnumpy()["user_id"]
        codes = index.ids.get_indexer(pd.Index(np.asarray(new, dtype=object), dtype=object))
        has_events = index.has_events.copy()
        has_events[codes[codes >= 0]] = True
    else:
        active = con.execute("SELECT DISTINCT user_id FROM events WHERE user_id IN (SELECT unnest(?::VARCHAR[]))",
                             [index.ids.tolist()]).fetchnumpy()["user_id"]  # fmt: skip
        has_events = index.ids.isin(np.asarray(active, dtype=object))
    if np.array_equal(has_events, index.has_events):
        return replace(index, events_version=seen)
    degree = _degrees(index.src, index.dst, index.directed, has_events)
    return replace(index, has_events=has_events, degree=degree, events_version=seen)
