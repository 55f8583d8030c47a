"""Where a database's events live, as its readers see it: a DuckDB table, or a VIEW over a Parquet dataset that
`core.store.parquet.attach_parquet` recorded in `meta`. Readers ask here, per connection, and nothing is kept
between calls: the answer is one row of the tiny `meta` table.
"""

from __future__ import annotations

import hashlib
import json

import duckdb
import numpy as np

__all__ = ["events_source", "user_bucket", "user_predicate", "BUCKET_COLUMN", "EVENTS_SOURCE_KEY"]

BUCKET_COLUMN = "user_bucket"  # export-parquet's partition column
EVENTS_SOURCE_KEY = "events_source"  # the `meta` key attach_parquet writes (JSON: kind, source, mapping, bucket)


def events_source(con: duckdb.DuckDBPyConnection) -> dict | None:
    """What `attach_parquet` recorded (kind, source, mapping, bucket), or None for a database whose events are a
    table."""
    rows = con.execute("SELECT value FROM meta WHERE key = ?", [EVENTS_SOURCE_KEY]).fetchall()
    return json.loads(rows[0][0]) if rows and rows[0][0] else None


def user_bucket(user_ids: list[str] | np.ndarray, buckets: int) -> np.ndarray:
    """The partition of each user id: the first 8 bytes of its MD5 as an integer, modulo `buckets` (stable)."""
    return np.array([int.from_bytes(hashlib.md5(str(u).encode("utf-8", "surrogatepass")).digest()[:8], "big") % buckets
                     for u in user_ids], dtype=np.int64)  # fmt: skip


def user_predicate(con: duckdb.DuckDBPyConnection, user_id: str, alias: str = "e") -> tuple[str, list]:
    """SQL (and parameters) selecting one user's events of `alias`: `user_id = ?`, plus the user's bucket on a
    Parquet store partitioned by export-parquet's scheme, so DuckDB opens one partition instead of all.

    The predicate is an optimisation only: the rows are the same either way. It costs one read of `meta` (well
    under a millisecond) on every call, so it holds for whichever database `con` is.
    """
    source = events_source(con)
    bucket = source.get("bucket") if source else None
    if not bucket:
        return f"{alias}.user_id = ?", [str(user_id)]
    b = int(user_bucket([str(user_id)], int(bucket["buckets"]))[0])
    return f"{alias}.user_id = ? AND {alias}.{BUCKET_COLUMN} = ?", [str(user_id), b]
