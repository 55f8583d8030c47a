"""Social edges in the store: the `social_edges` table, the edge stage a loader hands over, and the insert step
of an ingest run (same transaction as the events).

Stage columns of an edges SELECT (`EdgeStage.sql`)::

    seq BIGINT            position of the row in its file (0-based)
    src, dst VARCHAR      the two user ids as read
    kind VARCHAR          friend, trust, follow, ...
    weight_text VARCHAR   the weight as read (NULL = 1.0)
    since TIMESTAMP       when the tie started (NULL = unknown)
    since_problem VARCHAR why a given `since` could not be read (NULL when fine or absent)
    raw VARCHAR           the source row, kept for rejected rows

Rules (each rejected row keeps its reason in `rejects`): a missing or malformed id (control characters, leading or
trailing blanks, over 256 characters), a self-loop, a weight that is not a finite positive number, an unreadable
`since`. An undirected pair is stored once, as (least id, greatest id): the reverse listing of a pair already seen
(in this file or stored) counts as `mirrored`, not as an edge. An exact repeat (same pair, kind, direction) is
counted as a duplicate and skipped. Edges naming a user with no events are kept and counted (`no_events`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import duckdb

__all__ = [
    "EDGES_TABLE", "EDGES_SCHEMA", "EdgeStage", "EdgeCounts", "insert_edges", "has_edges", "edge_count",
    "count_user_edges", "delete_user_edges", "edge_summary",
]

EDGES_TABLE = "social_edges"
EDGES_SCHEMA = f"""CREATE TABLE IF NOT EXISTS {EDGES_TABLE} (src_user VARCHAR NOT NULL, dst_user VARCHAR NOT NULL,
    kind VARCHAR NOT NULL, weight DOUBLE NOT NULL, since TIMESTAMP, directed BOOLEAN NOT NULL,
    run_id BIGINT NOT NULL, seq BIGINT NOT NULL)"""
_STAGED = "_il_edges"
_MAX_ID = 256


@dataclass(frozen=True)
class EdgeStage:
    """An edges SELECT (see the module docstring) and how to read it."""

    sql: str
    params: list = field(default_factory=list)
    directed: bool = False  # True: (a, b) and (b, a) are two edges; False: one edge stored as (least, greatest)
    label: str = "edges"  # the file name used in reject reasons


@dataclass(frozen=True)
class EdgeCounts:
    """What one run did with its edges file."""

    accepted: int  # edges added to social_edges
    rejected: int  # rows kept in rejects with their reason
    duplicates: int  # exact repeats (in the file or already stored), skipped
    mirrored: int  # undirected: the reverse listing of a pair already kept, skipped (stored once)
    no_events: int  # accepted edges naming at least one user who has no events (kept)
    directed: bool  # how the file was read

    def as_dict(self) -> dict:
        return asdict(self)

    def sentence(self) -> str:
        how = "directed" if self.directed else "undirected"
        return (
            f"{self.accepted:,} {how} edges accepted, {self.rejected:,} rejected, {self.duplicates:,} duplicates and "
            f"{self.mirrored:,} mirrored pairs skipped, {self.no_events:,} edges name a user with no events."
        )


def _malformed(col: str) -> str:
    return f"(regexp_matches({col}, '[\\x00-\\x1f\\x7f]') OR {col} <> trim({col}) OR length({col}) > {_MAX_ID})"


def _missing(col: str) -> str:
    return f"({col} IS NULL OR trim({col}) = '' OR {col} = 'NULL' OR {col} = 'null')"


_REASON = f"""CASE
    WHEN {_missing("src")} THEN 'missing source user id'
    WHEN {_missing("dst")} THEN 'missing target user id'
    WHEN {_malformed("src")} THEN 'malformed source user id'
    WHEN {_malformed("dst")} THEN 'malformed target user id'
    WHEN src = dst THEN 'self-loop'
    WHEN weight_text IS NOT NULL AND trim(weight_text) <> '' AND TRY_CAST(weight_text AS DOUBLE) IS NULL
        THEN 'edge weight is not a number'
    WHEN TRY_CAST(weight_text AS DOUBLE) IS NOT NULL AND NOT isfinite(TRY_CAST(weight_text AS DOUBLE))
        THEN 'edge weight is not a finite number'
    WHEN TRY_CAST(weight_text AS DOUBLE) <= 0 THEN 'edge weight is not positive'
    WHEN since_problem IS NOT NULL THEN since_problem
    WHEN since > ?::TIMESTAMP THEN 'edge time in the future'
END"""


def insert_edges(con: duckdb.DuckDBPyConnection, run_id: int, edges: EdgeStage, now) -> EdgeCounts:
    """Validate, dedupe and insert one edges stage inside the caller's open transaction.

    Must run after the run's events are inserted (so `no_events` counts this run's users as having events).
    """
    con.execute(EDGES_SCHEMA)
    a, b = ("src", "dst") if edges.directed else ("least(src, dst)", "greatest(src, dst)")
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {_STAGED} AS
            SELECT seq, src, dst, coalesce(nullif(trim(kind), ''), 'friend') AS kind, since, raw,
                   {_REASON} AS reason,
                   coalesce(TRY_CAST(nullif(trim(weight_text), '') AS DOUBLE), 1.0) AS weight,
                   {a} AS a, {b} AS b, src <> ({a}) AS reversed
            FROM ({edges.sql})""",
        [now, *edges.params],
    )
    rejected = con.execute(
        f"""INSERT INTO rejects SELECT ?, seq + 1, ? || ' row ' || (seq + 1) || ': ' || reason, left(raw, 2000)
            FROM {_STAGED} WHERE reason IS NOT NULL ORDER BY seq""",
        [run_id, edges.label],
    ).fetchall()[0][0]
    valid = con.execute(f"SELECT count(*) FROM {_STAGED} WHERE reason IS NULL").fetchone()[0]
    # one row per (pair, kind, direction): the first in the file; a stored one wins over the file's
    keep = f"""SELECT a, b, kind, arg_min(weight, seq) AS weight, arg_min(since, seq) AS since, min(seq) AS seq,
                      count(*) AS n, count(*) FILTER (reversed) AS n_rev, bool_or(NOT reversed) AS has_fwd
               FROM {_STAGED} WHERE reason IS NULL GROUP BY a, b, kind"""
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {_STAGED}_keep AS SELECT k.* FROM ({keep}) k
            ANTI JOIN {EDGES_TABLE} s ON s.src_user = k.a AND s.dst_user = k.b AND s.kind = k.kind
                AND s.directed = ?""",
        [edges.directed],
    )
    accepted = con.execute(
        f"""INSERT INTO {EDGES_TABLE} SELECT a, b, kind, weight, since, ?, ?, seq FROM {_STAGED}_keep ORDER BY a""",
        [edges.directed, run_id],
    ).fetchall()[0][0]
    # Undirected: of each group, the rows listed the other way round than the kept orientation are mirrors
    # (one per group at most counts as the mirror; more are plain repeats).
    mirrored = 0
    if not edges.directed:
        mirrored = con.execute(
            f"""SELECT coalesce(sum(CASE WHEN n_rev > 0 AND has_fwd THEN 1 ELSE 0 END), 0) FROM ({keep})"""
        ).fetchone()[0]
        stored_mirrors = con.execute(
            f"""SELECT count(*) FROM ({keep}) k WHERE NOT has_fwd AND EXISTS (SELECT 1 FROM {EDGES_TABLE} s
                WHERE s.src_user = k.a AND s.dst_user = k.b AND s.kind = k.kind AND NOT s.directed AND s.run_id < ?)""",
            [run_id],
        ).fetchone()[0]
        mirrored += stored_mirrors
    duplicates = int(valid) - int(accepted) - int(mirrored)
    no_events = con.execute(
        f"""SELECT count(*) FROM {EDGES_TABLE} s WHERE s.run_id = ? AND (
                NOT EXISTS (SELECT 1 FROM events e WHERE e.user_id = s.src_user)
                OR NOT EXISTS (SELECT 1 FROM events e WHERE e.user_id = s.dst_user))""",
        [run_id],
    ).fetchone()[0]
    con.execute(f"DROP TABLE IF EXISTS {_STAGED}")
    con.execute(f"DROP TABLE IF EXISTS {_STAGED}_keep")
    return EdgeCounts(int(accepted), int(rejected), duplicates, int(mirrored), int(no_events), edges.directed)


def has_edges(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the database has a social_edges table with at least one edge (read-only safe)."""
    return edge_count(con) > 0


def edge_count(con: duckdb.DuckDBPyConnection) -> int:
    """Edges stored (0 when the table does not exist: a database from before social edges)."""
    try:
        return int(con.execute(f"SELECT count(*) FROM {EDGES_TABLE}").fetchone()[0])
    except duckdb.CatalogException:
        return 0


def count_user_edges(con: duckdb.DuckDBPyConnection, user_id: str) -> int:
    """Edges with `user_id` at either end (0 when the table does not exist)."""
    try:
        q = f"SELECT count(*) FROM {EDGES_TABLE} WHERE src_user = ? OR dst_user = ?"
        return int(con.execute(q, [user_id, user_id]).fetchone()[0])
    except duckdb.CatalogException:
        return 0


def delete_user_edges(con: duckdb.DuckDBPyConnection, user_id: str) -> None:
    """Delete every edge naming `user_id` (inside the caller's transaction)."""
    con.execute(f"DELETE FROM {EDGES_TABLE} WHERE src_user = ? OR dst_user = ?", [user_id, user_id])


def edge_summary(con: duckdb.DuckDBPyConnection) -> dict:
    """What `summary --json` reports as `edges`: counts by kind and direction, users named, users without events.

    All zeros for a database without edges (or from before social edges).
    """
    empty = {"edges": 0, "directed": 0, "undirected": 0, "kinds": {}, "users": 0, "users_without_events": 0,
             "mean_degree": 0.0}  # fmt: skip
    if edge_count(con) == 0:
        return empty
    n, directed = con.execute(f"SELECT count(*), count(*) FILTER (directed) FROM {EDGES_TABLE}").fetchone()
    kinds = dict(con.execute(f"SELECT kind, count(*) FROM {EDGES_TABLE} GROUP BY 1 ORDER BY 2 DESC, 1").fetchall())
    users, without = con.execute(
        f"""SELECT count(*), count(*) FILTER (NOT EXISTS (SELECT 1 FROM events e WHERE e.user_id = u.uid))
            FROM (SELECT src_user AS uid FROM {EDGES_TABLE} UNION SELECT dst_user FROM {EDGES_TABLE}) u"""
    ).fetchone()
    # degree counts an undirected edge at both ends and a directed one at its source (out-degree)
    ends = 2 * (int(n) - int(directed)) + int(directed)
    return {
        "edges": int(n),
        "directed": int(directed),
        "undirected": int(n) - int(directed),
        "kinds": {str(k): int(v) for k, v in kinds.items()},
        "users": int(users),
        "users_without_events": int(without),
        "mean_degree": round(ends / max(int(users), 1), 3),
    }
