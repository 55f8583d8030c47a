"""The DuckDB event store: schema, connection policy and the read API.

Connection policy (see README, "Connections"): writers (ingest, build, live appends) open the file,
write inside one transaction and close it at once. Readers (the app, the CLI) open the file
read-only for a short time and retry for a bounded time when a writer holds it.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from core.errors import InterestLensError, SettingError
from core.store.edges import EDGES_SCHEMA, EDGES_TABLE
from core.store.identity import ensure_database_id

__all__ = [
    "DEFAULT_DB",
    "SCHEMA_VERSION",
    "StoreError",
    "check_version",
    "connect_read",
    "connect_write",
    "default_db_path",
    "init_schema",
    "require_duckdb_file",
    "require_interestlens",
    "require_table_events",
    "schema_version",
]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
DEFAULT_DB = Path("data") / "interestlens.duckdb"


class StoreError(InterestLensError):
    """A problem with the database an analyst can act on; the message is one clear sentence."""


def default_db_path(db: str | os.PathLike | None = None) -> Path:
    """The database path: the argument, else $INTERESTLENS_DB, else data/interestlens.duckdb."""
    if db:
        return Path(db)
    env = os.environ.get("INTERESTLENS_DB")
    return Path(env) if env else DEFAULT_DB


_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS users (user_id VARCHAR PRIMARY KEY, attributes MAP(VARCHAR, VARCHAR))""",
    """CREATE TABLE IF NOT EXISTS items (item_id VARCHAR PRIMARY KEY, title VARCHAR,
        categories VARCHAR[], attributes MAP(VARCHAR, VARCHAR))""",
    """CREATE TABLE IF NOT EXISTS events (user_id VARCHAR NOT NULL, item_id VARCHAR NOT NULL,
        ts TIMESTAMP NOT NULL, event_type VARCHAR NOT NULL, value DOUBLE,
        context MAP(VARCHAR, VARCHAR), run_id BIGINT NOT NULL, seq BIGINT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS ingest_runs (run_id BIGINT PRIMARY KEY, source VARCHAR, preset VARCHAR,
        status VARCHAR, accepted BIGINT, rejected BIGINT, duplicates BIGINT, message VARCHAR,
        started_at TIMESTAMP, finished_at TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS rejects (run_id BIGINT, row_number BIGINT, reason VARCHAR, raw VARCHAR)""",
    EDGES_SCHEMA,
]


# Migrations from version N to N+1, applied in order inside one transaction when a writer opens an older file.
_MIGRATIONS: dict[int, list[str]] = {}


def schema_version(con: duckdb.DuckDBPyConnection) -> int | None:
    """The schema version recorded in the database, or None for an empty file."""
    # Asking for the table directly: information_schema costs ~10 ms, paid on every read-only open by the app.
    try:
        rows = con.execute("SELECT value FROM main.meta WHERE key = 'schema_version'").fetchall()
    except duckdb.CatalogException:
        return None
    return int(rows[0][0]) if rows else None


def check_version(con: duckdb.DuckDBPyConnection, path: Path | str) -> None:
    """Raise a clear StoreError when a read-only database has a schema this version cannot read."""
    version = schema_version(con)
    if version is None:
        raise StoreError(f"{path} is not an InterestLens database (no schema version); build or ingest into it first.")
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path} was written by a newer InterestLens (schema {version}, this one reads {SCHEMA_VERSION}); upgrade InterestLens."
        )
    if version < SCHEMA_VERSION:
        raise StoreError(
            f"{path} has schema {version}; it needs upgrading to {SCHEMA_VERSION}.", next_step="migrate", step_db=path
        )


def init_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the tables if absent, migrate an older schema, and record the schema version and (once) the
    database's identity (`core.store.identity`).

    A database already at this version is left untouched (no write transaction), so opening it for a
    small append costs nothing here.
    """
    version = schema_version(con)
    if version is not None and version > SCHEMA_VERSION:
        raise StoreError(
            f"This database was written by a newer InterestLens (schema {version}, this one writes {SCHEMA_VERSION}); upgrade InterestLens."
        )
    if version == SCHEMA_VERSION and _OUR_TABLES <= set(_table_names(con)):
        ensure_database_id(con)  # a database from before identities gets one on its next write
        return
    con.execute("BEGIN TRANSACTION")
    try:
        for v in range(version or SCHEMA_VERSION, SCHEMA_VERSION):
            for stmt in _MIGRATIONS.get(v, []):
                con.execute(stmt)
        for stmt in _SCHEMA:
            con.execute(stmt)
        con.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])
        ensure_database_id(con)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


_OUR_TABLES = {"meta", "users", "items", "events", "ingest_runs", "rejects", EDGES_TABLE}


def _table_names(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Tables and views of the database's own catalog (not temporary ones, not attached databases)."""
    rows = con.execute(
        """SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() AND NOT temporary
           UNION ALL
           SELECT view_name FROM duckdb_views() WHERE database_name = current_database() AND NOT internal
             AND NOT temporary"""
    ).fetchall()
    return sorted(str(r[0]) for r in rows)


def require_interestlens(con: duckdb.DuckDBPyConnection, path: Path | str) -> None:
    """Refuse a DuckDB file that holds tables but is not an InterestLens database (before anything is written).

    An empty file is fine (it becomes a new database); a file with tables needs the `meta` table with a
    schema version, otherwise creating our tables inside it would mix them with someone else's data.
    """
    names = _table_names(con)
    if not names:
        return
    try:
        version = schema_version(con)
    except duckdb.Error:  # a `meta` table of someone else's shape
        version = None
    if version is None:
        shown = ", ".join(names[:5]) + (", …" if len(names) > 5 else "")
        raise StoreError(
            f"{path} is not an InterestLens database (it holds other tables: {shown}); use a new database file."
        )


def require_table_events(con: duckdb.DuckDBPyConnection, path: Path | str) -> None:
    """Refuse to write into a database whose events are read in place from Parquet (`interestlens attach`):
    ingest, live appends and forgetting a user need the events in a DuckDB table."""
    views = con.execute(
        """SELECT count(*) FROM duckdb_views() WHERE view_name = 'events' AND database_name = current_database()
           AND NOT internal AND NOT temporary"""
    ).fetchall()[0][0]
    if views:
        raise StoreError(
            f"{path} reads its events in place from Parquet files (an attached dataset), so it cannot be written to; "
            "add files to the Parquet dataset instead, or ingest into a database of its own."
        )


@contextmanager
def connect_write(db: str | os.PathLike | None = None, timeout_s: float = 10.0) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the database for writing, create the schema, and close it when done.

    While another process holds the file (a reader or a writer), the open is retried for up to `timeout_s`
    seconds and then refused with one sentence: a writer never waits forever. A DuckDB file that holds
    tables but is not an InterestLens database is refused before anything is written.
    """
    path = default_db_path(db)
    require_duckdb_file(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    con = _retry(lambda: duckdb.connect(str(path)), path, timeout_s)
    try:
        require_interestlens(con, path)
        require_table_events(con, path)
        init_schema(con)
        yield con
    except duckdb.Error as exc:
        _raise_if_damaged(exc, path)
        raise
    finally:
        con.close()


@contextmanager
def connect_read(db: str | os.PathLike | None = None, timeout_s: float = 10.0) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the database read-only, retrying while a writer holds it, and close it when done."""
    path = default_db_path(db)
    if not path.exists():
        raise StoreError(f"No database at {path}.", next_step="create_db", step_db=path)
    require_duckdb_file(path)
    con = _retry(lambda: duckdb.connect(str(path), read_only=True), path, timeout_s)
    try:
        check_version(con, path)
        yield con
    except duckdb.Error as exc:
        _raise_if_damaged(exc, path)
        raise
    finally:
        con.close()


# A DuckDB database file: a 4 KiB main header whose bytes 8..12 are the magic "DUCK" (after an 8-byte checksum).
_DUCKDB_MAGIC = b"DUCK"
_MAGIC_OFFSET = 8
# Other formats by their first bytes, to name what a wrong --db file looks like.
_SIGNATURES = [(b"PAR1", "Parquet"), (b"SQLite format 3\x00", "SQLite database"), (b"\x1f\x8b", "gzip-compressed"),
               (b"PK\x03\x04", "ZIP"), (b"\x28\xb5\x2f\xfd", "zstd-compressed"), (b"BZh", "bzip2-compressed"),
               (b"\xfd7zXZ\x00", "xz-compressed")]
_BY_SUFFIX = {".csv": "CSV", ".tsv": "TSV", ".txt": "text", ".json": "JSON", ".jsonl": "JSON Lines",
              ".ndjson": "JSON Lines", ".parquet": "Parquet", ".gz": "gzip-compressed", ".zip": "ZIP"}


def _looks_like(path: Path, head: bytes) -> str:
    """A short name of the format a non-DuckDB file appears to have (for the error message)."""
    for magic, name in _SIGNATURES:
        if head.startswith(magic):
            return f"a {name} file"
    by_suffix = _BY_SUFFIX.get(path.suffix.lower())
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text[:1] in (b"{", b"["):
        return f"a {by_suffix or 'JSON'} file"
    if by_suffix:
        return f"a {by_suffix} file"
    try:
        decoded = head.decode("utf-8")
    except UnicodeDecodeError:
        return "a file of another format"
    return "a CSV file" if "," in decoded.split("\n", 1)[0] else "a text file"


def require_duckdb_file(path: Path) -> None:
    """Refuse (UserInputError, one sentence) an existing regular file that is not a DuckDB database file.

    Checked before DuckDB opens it: DuckDB reads a CSV, Parquet or JSON path as a database of views over that
    file, so a log passed as --db would otherwise give confusing errors (or look like someone else's tables).
    A missing path (a new database) and an empty file are left to DuckDB, which creates or refuses them itself.
    """
    try:
        if not path.is_file() or path.stat().st_size == 0:
            return
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return  # unreadable or vanished: DuckDB's own open reports it
    if head[_MAGIC_OFFSET:_MAGIC_OFFSET + len(_DUCKDB_MAGIC)] == _DUCKDB_MAGIC:
        return
    raise SettingError(
        "{path} is not a DuckDB database file (it looks like {kind}); {db} is the database, not a log.", "db",
        path=path, kind=_looks_like(path, head), next_step="ingest_log",
    )


# DuckDB's messages for a file whose blocks fail their checksum or end early.
_DAMAGE = ("corrupt database file", "does not match stored checksum", "could not read enough bytes from file")


def _is_damaged(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(m in text for m in _DAMAGE)


def _raise_if_damaged(exc: BaseException, path: Path) -> None:
    """Turn DuckDB's report of a damaged database file into one sentence (StoreError); other errors pass."""
    if _is_damaged(exc):
        raise StoreError(
            f"The database {path} is damaged ({_first_line(exc)}); restore it from a backup or rebuild it.",
            next_step="rebuild_db", step_db=path,
        ) from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _retry(open_fn, path: Path, timeout_s: float = 10.0) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + timeout_s
    delay = 0.05
    while True:
        try:
            return open_fn()
        except (duckdb.IOException, duckdb.ConnectionException) as exc:
            _raise_if_damaged(exc, path)
            # Another process holds a write lock, or this process has the file open in the other mode.
            busy = "lock" in str(exc).lower() or "different configuration" in str(exc).lower()
            if not busy:
                raise StoreError(f"The database {path} could not be opened ({_first_line(exc)}).") from exc
            if time.monotonic() > deadline:
                pid = re.search(r"\(PID (\d+)\)", str(exc))
                who = f"another process (PID {pid.group(1)})" if pid else "another process"
                raise StoreError(
                    f"The database {path} is held by {who}; it was retried for {timeout_s:g} s, try again shortly."
                ) from exc
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
        except duckdb.Error as exc:  # a damaged block read while loading the catalog
            _raise_if_damaged(exc, path)
            raise
