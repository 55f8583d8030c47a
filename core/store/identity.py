"""Which database is which: every InterestLens database gets an identity (a UUID in `meta`) when it is created.

Item ids alone are no evidence of the same data: two MovieLens releases both number their movies 1, 2, 3…, so a
model trained on one "knows" the other's ids while meaning other films. The identity is written once, by the first
writer that finds none (a new file, or a database made before identities existed), and never changed afterwards:
appends, live ingest and `forget-user`'s compaction (which copies `meta`) keep it; `export-parquet` writes it into
the dataset folder and `attach` of that folder takes it over, so the attached database is the same data under the
same identity. Training records it in the checkpoint card (`core.checkpoint`), and the model choice compares the
two (`core.model_match`).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import duckdb

__all__ = ["DATABASE_ID_KEY", "IDENTITY_FILE", "database_id", "ensure_database_id", "set_database_id",
           "write_identity_file", "read_identity_file"]

DATABASE_ID_KEY = "database_id"  # the `meta` key holding the identity
IDENTITY_FILE = "database.json"  # beside an exported Parquet dataset: {"database_id": …}


def database_id(con: duckdb.DuckDBPyConnection) -> str | None:
    """The database's identity, or None for a database written before identities existed (and not since)."""
    try:
        rows = con.execute("SELECT value FROM main.meta WHERE key = ?", [DATABASE_ID_KEY]).fetchall()
    except duckdb.CatalogException:
        return None
    return str(rows[0][0]) if rows and rows[0][0] else None


def ensure_database_id(con: duckdb.DuckDBPyConnection) -> str:
    """The identity, created (a new random UUID) when the database has none; never replaces an existing one.

    Called by every writer open (`core.store.connect_write`), so a database gets its identity when it is created
    and an older one on its next write. A single-row read when the identity exists, so small appends pay nothing.
    """
    found = database_id(con)
    if found is not None:
        return found
    new = str(uuid.uuid4())
    # INSERT OR IGNORE: a concurrent writer cannot exist (DuckDB's file lock), but this keeps "never replace" literal.
    con.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)", [DATABASE_ID_KEY, new])
    return database_id(con) or new


def set_database_id(con: duckdb.DuckDBPyConnection, value: str) -> None:
    """Give a database created from another's exported data (`attach` of an export-parquet folder) that identity."""
    con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [DATABASE_ID_KEY, str(uuid.UUID(str(value)))])


def write_identity_file(folder: Path, value: str | None) -> None:
    """Record the exported database's identity in `folder/database.json` (nothing when it has none)."""
    if value:
        (folder / IDENTITY_FILE).write_text(json.dumps({DATABASE_ID_KEY: value}) + "\n", encoding="utf-8")


def read_identity_file(folder: Path) -> str | None:
    """The identity recorded beside an exported dataset; None when absent or not a UUID (then attach makes a new one)."""
    path = folder / IDENTITY_FILE
    try:
        value = json.loads(path.read_text(encoding="utf-8")).get(DATABASE_ID_KEY)
        return str(uuid.UUID(str(value)))
    except (OSError, ValueError, AttributeError, TypeError):
        return None
