"""Event logs as Parquet, read in place: an InterestLens database whose `events` is a VIEW over a Parquet dataset.

`attach_parquet(db, source, ...)` creates a new database file holding `meta`, `users`, `items` (filled from the
Parquet or from side files), empty `ingest_runs` / `rejects` apart from one row recording the attach, and
`events` as a VIEW over `read_parquet(source, hive_partitioning = true)` with the dataset's columns mapped to the
events schema. Nothing is copied: every read query, training and the dashboard read the Parquet files through
DuckDB (a local folder, a glob, or `s3://…` through DuckDB's httpfs extension and a DuckDB secret). Ingest-side
features — rejects, dedupe, live appends, forgetting a user — need events in a DuckDB table, so every writer
refuses such a database (`core.store.connect_write`) with one sentence.

`core.store.parquet_export.export_parquet(db, out)` writes a table-backed database's log the other way: events
partitioned by user bucket (hive layout `out/events/user_bucket=K/*.parquet`, K = `user_bucket(id, n)`) with
`out/users.parquet` and `out/items.parquet` beside them. `attach_parquet(db, out)` recognises that folder
(`export_layout`): it reads the events from `out/events` and the users and items from the two side files (unless
others are given), with the default mapping and the bucket scheme, so a user's lookup reads one partition.

The source path is a literal inside the view (DuckDB binds no parameters in a view): it is made absolute and
checked against a conservative character set before it is quoted; column names are checked against the
dataset's real columns before they are quoted.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb
import numpy as np

from core.store.connection import StoreError, connect_write, default_db_path
from core.store.identity import read_identity_file, set_database_id
from core.store.source import BUCKET_COLUMN, EVENTS_SOURCE_KEY, user_bucket

__all__ = ["ParquetMapping", "AttachResult", "attach_parquet", "source_glob", "export_layout", "EVENTS_DIR",
           "USERS_FILE", "ITEMS_FILE"]

_URL = re.compile(r"^(s3|s3a|gs|gcs|r2|az|abfss|https?)://[A-Za-z0-9._~/=+,:@%*-]+$")
_LOCAL = re.compile(r"^[A-Za-z0-9 _./=+,:@%~*-]+$")
_TIME_UNITS = {"s": 1_000_000, "ms": 1_000, "us": 1}
_EMPTY_MAP = "MAP {}::MAP(VARCHAR, VARCHAR)"
# export-parquet's folder: the events under EVENTS_DIR/, the users and items tables as two files beside it
EVENTS_DIR, USERS_FILE, ITEMS_FILE = "events", "users.parquet", "items.parquet"
_LAYOUTS = ("attach expects a folder of event Parquet files (hive key=value subfolders allowed), a file, a glob, "
            f"or an export-parquet folder ({EVENTS_DIR}/ with {USERS_FILE} and {ITEMS_FILE} beside it)")


@dataclass(frozen=True)
class ParquetMapping:
    """Which Parquet column holds each part of an event; None = the conventional name when the dataset has it."""

    user: str = "user_id"  # user id (cast to text)
    item: str = "item_id"  # item id (cast to text)
    time: str = "ts"  # TIMESTAMP (naive = UTC), TIMESTAMPTZ, DATE, text, or a number of `time_unit` since 1970
    event_type: str | None = None  # default: column `event_type` if present, else every event is 'interaction'
    value: str | None = None  # default: column `value` if present, else NULL
    context: tuple[str, ...] | None = None  # columns kept as context; default: a MAP column `context`, else none
    run_id: str | None = None  # default: column `run_id`, else a number per file (order of ties across files)
    seq: str | None = None  # default: column `seq`, else the row's position in its file
    time_unit: str = "s"  # unit of a numeric time column: s, ms or us
    buckets: int | None = None  # user buckets of a `user_bucket` partition column (None: its largest value + 1)


@dataclass(frozen=True)
class AttachResult:
    db: Path
    source: str  # the glob or URL the view reads
    events: int
    users: int
    items: int
    files: int


def source_glob(source: str | os.PathLike) -> str:
    """What `read_parquet` reads: a URL as given, a local folder as `<abs>/**/*.parquet`, a file or glob made
    absolute. Refuses characters outside a conservative set, since the result becomes a literal in SQL."""
    text = str(source)
    if "://" in text:
        if not _URL.match(text):
            raise StoreError(f"The Parquet URL {text!r} has characters InterestLens does not accept in a path.")
        return text.rstrip("/") + "/**/*.parquet" if text.endswith("/") else text
    path = Path(text).expanduser().absolute()
    if path.is_dir():
        text = str(path / "**" / "*.parquet")
    elif path.is_file() or any(c in text for c in "*?["):
        text = str(path)
    else:
        raise StoreError(f"There is no Parquet file or folder at {source}.")
    if not _LOCAL.match(text):
        raise StoreError(f"The Parquet path {text!r} has characters InterestLens does not accept in a path; rename it.")
    return text


def export_layout(source: str | os.PathLike) -> tuple[Path, Path | None, Path | None] | None:
    """For a local folder in export-parquet's layout, (events folder, users file or None, items file or None).

    The layout: a subfolder `events/` and no Parquet file outside it other than `users.parquet` and
    `items.parquet` at the top. None for anything else (a plain or hive-partitioned folder of events, a file, a
    glob, a URL), which is read as one dataset.
    """
    text = str(source)
    if "://" in text or any(c in text for c in "*?["):
        return None
    root = Path(text).expanduser().absolute()
    events = root / EVENTS_DIR
    if not root.is_dir() or not events.is_dir():
        return None
    side = {root / USERS_FILE, root / ITEMS_FILE}
    for f in root.rglob("*.parquet"):
        if f not in side and events not in f.parents:
            return None  # something else lies beside events/: a mixed folder, reported when it is read
    users, items = root / USERS_FILE, root / ITEMS_FILE
    return events, (users if users.is_file() else None), (items if items.is_file() else None)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _columns(con: duckdb.DuckDBPyConnection, glob: str, hive: bool) -> dict[str, str]:
    try:
        rows = con.execute("SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet(?, hive_partitioning = ?))",
                           [glob, hive]).fetchall()  # fmt: skip
    except duckdb.Error as exc:
        first = str(exc).splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        if "hive partition mismatch" in first.lower():  # files at different depths, e.g. x.parquet beside k=v/
            files = re.findall(r'"([^"]+)"', first)[:2]
            where = glob.removesuffix("/**/*.parquet")
            raise StoreError(f"{where} mixes Parquet files at different folder depths"
                             f"{' (' + ' and '.join(files) + ')' if files else ''}; {_LAYOUTS}.") from exc
        raise StoreError(f"The Parquet dataset {glob} cannot be read ({first}).") from exc
    return {str(n): str(t) for n, t in rows}


def _pick(cols: dict[str, str], asked: str | None, default: str, what: str) -> str | None:
    """The column for `what`: the one asked for (which must exist), else `default` when present, else None."""
    name = asked if asked is not None else default
    if name in cols:
        return name
    if asked is not None:
        raise StoreError(f"The Parquet dataset has no column {asked!r} for the {what}; it has {', '.join(cols)}.")
    return None


def _time_sql(col: str, kind: str, unit: str) -> str:
    c = _ident(col)
    if kind.startswith("TIMESTAMP WITH TIME ZONE"):
        return f"timezone('UTC', {c})"
    if kind.startswith(("TIMESTAMP", "DATE")):
        return f"CAST({c} AS TIMESTAMP)"
    if kind in ("VARCHAR", "BLOB"):
        return f"CAST({c} AS TIMESTAMP)"
    if unit not in _TIME_UNITS:
        raise StoreError(f"Unknown time unit {unit!r}; expected s, ms or us.")
    return f"make_timestamp(CAST(round({c} * {_TIME_UNITS[unit]}) AS BIGINT))"


def _map_sql(cols: list[str]) -> str:
    """A MAP(VARCHAR, VARCHAR) of the given columns keyed by their names, NULL values left out."""
    if not cols:
        return _EMPTY_MAP
    entries = ", ".join(f"struct_pack(k := {_literal(c)}, v := CAST({_ident(c)} AS VARCHAR))" for c in cols)
    return f"map_from_entries(list_filter([{entries}], lambda e: e.v IS NOT NULL))"


def events_view_sql(
    glob: str, cols: dict[str, str], m: ParquetMapping, hive: bool, bucketed: bool = False
) -> tuple[str, list[str]]:
    """The `CREATE VIEW events` statement for a dataset with columns `cols`, and the context keys it yields.

    With `bucketed`, the partition column `user_bucket` follows the eight event columns, so a user's lookup can
    name its bucket and DuckDB reads one partition (`user_predicate`).
    """
    user, item, time = (_pick(cols, a, a, w) for a, w in ((m.user, "user id"), (m.item, "item id"), (m.time, "time")))
    etype = _pick(cols, m.event_type, "event_type", "event type")
    value = _pick(cols, m.value, "value", "value")
    run_id, seq = _pick(cols, m.run_id, "run_id", "run number"), _pick(cols, m.seq, "seq", "position")
    keys: list[str] = []
    if m.context is None:
        ctx = "context" if cols.get("context", "").startswith("MAP") else None
        context = f"CAST({_ident(ctx)} AS MAP(VARCHAR, VARCHAR))" if ctx else _EMPTY_MAP
    else:
        for c in m.context:
            _pick(cols, c, c, "context")
        keys, context = list(m.context), _map_sql(list(m.context))
    select = [
        f"CAST({_ident(user)} AS VARCHAR) AS user_id",
        f"CAST({_ident(item)} AS VARCHAR) AS item_id",
        f"{_time_sql(time, cols[time], m.time_unit)} AS ts",
        f"lower(CAST({_ident(etype)} AS VARCHAR)) AS event_type" if etype else "'interaction' AS event_type",
        f"CAST({_ident(value)} AS DOUBLE) AS value" if value else "NULL::DOUBLE AS value",
        f"{context} AS context",
        f"CAST({_ident(run_id)} AS BIGINT) AS run_id" if run_id else "CAST(hash(filename) >> 1 AS BIGINT) AS run_id",
        f"CAST({_ident(seq)} AS BIGINT) AS seq" if seq else "CAST(file_row_number AS BIGINT) AS seq",
    ] + ([_ident(BUCKET_COLUMN)] if bucketed else [])
    options = [f"hive_partitioning = {'true' if hive else 'false'}"]
    if not run_id:
        options.append("filename = true")
    if not seq:
        options.append("file_row_number = true")
    sql = f"CREATE VIEW events AS SELECT {', '.join(select)} FROM read_parquet({_literal(glob)}, {', '.join(options)})"
    return sql, keys


def _side_sql(con: duckdb.DuckDBPyConnection, path: str | os.PathLike, key: str, kind: str) -> str:
    """SELECT of a users or items side file in the table's shape (other columns become text attributes)."""
    glob = source_glob(path)
    cols = _columns(con, glob, False)
    if key not in cols:
        raise StoreError(f"The {kind} file {path} has no {key} column.")
    fixed = {key, "attributes"} | ({"title", "categories"} if kind == "items" else set())
    attrs = "CAST(attributes AS MAP(VARCHAR, VARCHAR))" if cols.get("attributes", "").startswith("MAP") else \
        _map_sql([c for c in cols if c not in fixed])
    parts = [f"CAST({_ident(key)} AS VARCHAR) AS {key}"]
    if kind == "items":
        parts.append("CAST(title AS VARCHAR) AS title" if "title" in cols else "NULL::VARCHAR AS title")
        parts.append("CAST(categories AS VARCHAR[]) AS categories" if "categories" in cols else "[]::VARCHAR[] AS categories")
    parts.append(f"{attrs} AS attributes")
    return f"SELECT {', '.join(parts)} FROM read_parquet({_literal(glob)})"


def attach_parquet(
    db: str | os.PathLike,
    source: str | os.PathLike,
    mapping: ParquetMapping | None = None,
    *,
    users: str | os.PathLike | None = None,
    items: str | os.PathLike | None = None,
    hive: bool = True,
) -> AttachResult:
    """Create the database `db` (a new file) whose events are read in place from the Parquet dataset `source`.

    Users and items come from the side files when given (user_id / item_id, optional title and categories, an
    `attributes` MAP or one column per attribute) and from the distinct ids of the events otherwise; an id in
    the events but not in its side file gets a row without attributes. Raises StoreError (one sentence) for an
    existing file, an unreadable dataset, a mixed folder, a missing column or an odd path.

    A folder in export-parquet's layout (`export_layout`) is read as its `events/` folder, with its
    `users.parquet` and `items.parquet` as the side files unless `users` / `items` are given, and takes over the
    exported database's identity (`database.json`, `core.store.identity`).
    """
    path = default_db_path(db)
    if path.exists():
        raise StoreError(f"{path} already exists; attach a Parquet dataset to a new database file.")
    layout = export_layout(source)
    identity = read_identity_file(layout[0].parent) if layout is not None else None
    if layout is not None:
        source = layout[0]
        users = users if users is not None else layout[1]
        items = items if items is not None else layout[2]
    m = mapping or ParquetMapping()
    try:
        with connect_write(path) as con:
            glob = source_glob(source)
            cols = _columns(con, glob, hive)
            buckets = _bucket_scheme(con, glob, hive, cols, m)
            view, keys = events_view_sql(glob, cols, m, hive, bucketed=buckets is not None)
            con.execute("BEGIN TRANSACTION")
            con.execute("DROP TABLE events")
            con.execute(view)
            if m.context is None and "context" in cols:
                keys = [r[0] for r in con.execute(
                    "SELECT DISTINCT k FROM (SELECT unnest(map_keys(context)) AS k FROM events) WHERE k IS NOT NULL ORDER BY 1"
                ).fetchall()]  # fmt: skip
            _fill(con, "users", "user_id", users, "attributes")
            _fill(con, "items", "item_id", items, "NULL, []::VARCHAR[], " + "attributes")
            events = con.execute("SELECT count(*) FROM events").fetchone()[0]
            source_text = glob
            now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
            con.execute(
                "INSERT INTO ingest_runs VALUES (1, ?, 'parquet', 'ok', ?, 0, 0, ?, ?, ?)",
                [source_text, events, "events read in place from Parquet (not copied); no rejects or dedupe", now, now],
            )
            info = {"kind": "parquet", "source": glob, "hive_partitioning": hive, "mapping": asdict(m),
                    "users_file": str(users) if users else None, "items_file": str(items) if items else None,
                    "bucket": {"column": BUCKET_COLUMN, "buckets": buckets, "hash": "md5"} if buckets else None}
            con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [EVENTS_SOURCE_KEY, json.dumps(info)])
            con.execute("INSERT OR REPLACE INTO meta VALUES ('context_keys', ?)", [json.dumps(keys)])
            if identity is not None:  # the exported database's data, read in place: the same identity
                set_database_id(con, identity)
            con.execute("COMMIT")
            n_users = con.execute("SELECT count(*) FROM users").fetchone()[0]
            n_items = con.execute("SELECT count(*) FROM items").fetchone()[0]
            files = con.execute("SELECT count(*) FROM glob(?)", [glob]).fetchone()[0] if "://" not in glob else 0
    except BaseException:
        for p in (path, Path(str(path) + ".wal")):
            p.unlink(missing_ok=True)
        raise
    return AttachResult(path, glob, int(events), int(n_users), int(n_items), int(files))


def _bucket_scheme(con: duckdb.DuckDBPyConnection, glob: str, hive: bool, cols: dict[str, str],
                   m: ParquetMapping) -> int | None:
    """The number of user buckets when every user's `user_bucket` is `user_bucket(id, n)` (export-parquet's
    scheme), so naming the bucket in a lookup is safe; None otherwise (lookups then scan every partition)."""
    if not hive or cols.get(BUCKET_COLUMN) not in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UBIGINT"):
        return None
    pairs = con.execute(f"""SELECT DISTINCT CAST({_ident(m.user)} AS VARCHAR), {_ident(BUCKET_COLUMN)}
                            FROM read_parquet(?, hive_partitioning = true)""", [glob]).fetchnumpy()
    ids, got = pairs[next(iter(pairs))], np.asarray(pairs[BUCKET_COLUMN])
    n = m.buckets or (int(got.max()) + 1 if len(got) else 0)
    if n < 1 or not np.array_equal(user_bucket(ids, n), got):
        return None
    return n


def _fill(con: duckdb.DuckDBPyConnection, table: str, key: str, side: str | os.PathLike | None, rest: str) -> None:
    """Fill `users` or `items` from the side file, then add every id the events have that it lacks."""
    if side is not None:
        con.execute(f"INSERT INTO {table} SELECT DISTINCT ON ({key}) * FROM ({_side_sql(con, side, key, table)})")
    extra = rest.replace("attributes", _EMPTY_MAP)
    con.execute(f"""INSERT INTO {table} SELECT {key}, {extra} FROM (SELECT DISTINCT {key} FROM events) e
                    ANTI JOIN {table} t USING ({key})""")

