"""One ingest run is one transaction: stage the source, validate it in SQL, quarantine bad rows,
drop duplicates, insert the rest clustered by user, upsert users and items, record the run.

A loader (a preset, or `ingest_frames`) only has to describe its source as SQL that yields the stage
columns below; everything after that is shared (`core.ingest.pipeline`), so every format gets the same checks.

Stage columns of the events SELECT::

    seq BIGINT           position of the row in its source (0-based), or NULL to let the pipeline number the
                         rows by their position in the stage (the usual case: DuckDB then reads on all threads);
                         with several event files, file k's rows carry k << 40 on top, so ties keep file order
    user_id, item_id     VARCHAR
    ts TIMESTAMP         UTC; NULL when missing or unparseable
    ts_problem VARCHAR   why ts is NULL or unusable (NULL when fine)
    event_type VARCHAR   lower-case word
    value DOUBLE         rating / weight; NULL when absent
    problem VARCHAR      a loader-specific reason to reject the row (NULL when fine)
    raw_0 … raw_{r-1}    VARCHAR, the source fields, joined with `Stage.raw_delim` into `rejects.raw` only for
                         rejected rows
    ctx_0 … ctx_{k-1}    VARCHAR, one per `Stage.context_keys` entry (NULL = absent)
    item_title VARCHAR, item_categories VARCHAR[]   only with `Stage.item_columns`: item facts carried by events

`rejects.row_number` is the row's 1-based position among the rows the reader could split, or, for a line
the reader could not split, that line's number in the file (the reason then says "line N").
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from core.errors import InterestLensError, UserInputError
from core.ingest import guard, readers
from core.ingest.files import translate_error
from core.ingest.result import IngestResult
from core.social.edges import EdgeStage, insert_edges
from core.store import connect_write

__all__ = ["Run", "Stage", "SideTable", "Offset", "execute_run", "require", "FILE_SHIFT"]

log = logging.getLogger(__name__)

Progress = Callable[[str], None]

FILE_SHIFT = 40  # seq = (file index << FILE_SHIFT) + row: 2^40 rows per file is beyond any log


@dataclass(frozen=True)
class SideTable:
    """A users or items SELECT with the file label used in reject reasons.

    users: (seq, user_id, attributes, raw); items: (seq, item_id, title, categories, attributes, raw).
    """

    sql: str
    params: list = field(default_factory=list)
    label: str = "users"


@dataclass(frozen=True)
class Stage:
    """What a loader hands to the shared pipeline."""

    events_sql: str
    events_params: list = field(default_factory=list)
    users: SideTable | None = None
    items: SideTable | None = None
    context_keys: tuple[str, ...] = ()  # names of the ctx_0 … ctx_{k-1} columns
    item_columns: bool = False  # events carry item_title / item_categories
    files: tuple[str, ...] = ()  # labels of the event files, by file index (seq >> FILE_SHIFT)
    raw_parts: int = 0  # number of raw_i columns
    raw_delim: str = ","  # how the raw_i columns are joined into the rejected row's text
    edges: EdgeStage | None = None  # social edges loaded in the same transaction (after the events)


@dataclass(frozen=True)
class Offset:
    """Where a chunk of a longer source starts (live ingest of a growing file reads it in chunks).

    `rows` data rows and `lines` lines of the whole source come before the chunk's first data row, so `seq`
    and the row and line numbers of rejects refer to the whole source, not to the chunk.
    """

    rows: int = 0
    lines: int = 0  # added to a line number in the chunk to give the line number in the source


@dataclass
class Run:
    """The open run: its connection (inside the transaction), id and the assumptions made so far."""

    con: duckdb.DuckDBPyConnection
    run_id: int
    started_at: dt.datetime
    assumptions: list[str] = field(default_factory=list)
    registered: list[str] = field(default_factory=list)
    layouts: dict[str, str] = field(default_factory=dict)  # file path -> what its lines should look like
    event_files: list[str] = field(default_factory=list)
    offset: Offset = field(default_factory=Offset)
    stamps: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # file -> stamp when first read
    scans: dict[str, guard.FileScan] = field(default_factory=dict)  # file -> what the guard's pass found

    def register(self, name: str, frame) -> None:
        """Expose a DataFrame (or Arrow table) to this run's SQL under `name`; unregistered when the run ends."""
        self.con.register(name, frame)
        self.registered.append(name)

    def assume(self, sentence: str) -> None:
        """State an assumption once; it is returned to the caller and recorded in the run's message."""
        if sentence not in self.assumptions:
            log.info("assumption: %s", sentence)
            self.assumptions.append(sentence)

    def delimited(
        self, path: Path, n_columns: int, dialect: readers.Dialect, layout: str, events: bool = True
    ) -> tuple[str, list]:
        """`read_csv(…)` SQL for a delimited file whose unreadable lines become rejects (see `readers`)."""
        self._note(path, layout, events)
        sql = readers.delimited(path, n_columns, dialect)
        self.scans[str(path)] = guard.scan_text(path, dialect.max_line_size)  # cached by the read above
        return sql

    def json_lines(self, path: Path, layout: str, events: bool = True) -> tuple[str, list]:
        """`read_csv(…)` SQL yielding one text column `c0` per line of a JSON lines file."""
        self._note(path, layout, events)
        sql = readers.json_lines(path)
        self.scans[str(path)] = guard.scan_text(path, readers.JSON_MAX_LINE)
        return sql

    def _note(self, path: Path, layout: str, events: bool) -> None:
        self.layouts[str(path)] = layout
        self.stamps.setdefault(str(path), guard.stamp(path))
        if events and str(path) not in self.event_files:
            self.event_files.append(str(path))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


def _next_run_id(con: duckdb.DuckDBPyConnection) -> int:
    return int(con.execute("SELECT coalesce(max(run_id), 0) + 1 FROM ingest_runs").fetchone()[0])


def _summary(accepted: int, rejected: int, duplicates: int, assumptions: list[str]) -> str:
    text = f"{accepted:,} events accepted, {rejected:,} rows rejected, {duplicates:,} duplicates dropped."
    return " ".join([text, *assumptions])


def _record_failure(con, run_id, source, preset, started, message) -> None:
    try:
        con.execute("BEGIN TRANSACTION")
        con.execute(
            "INSERT INTO ingest_runs VALUES (?, ?, ?, 'failed', 0, 0, 0, ?, ?, ?)",
            [run_id, source, preset, message, started, _now()],
        )
        con.execute("COMMIT")
    except duckdb.Error:  # recording the failure must never hide the failure itself
        log.exception("could not record the failed run %s", run_id)
        con.execute("ROLLBACK")


def execute_run(
    db: str | os.PathLike | duckdb.DuckDBPyConnection | None,
    *,
    source: str,
    preset: str,
    build: Callable[[Run], Stage],
    assumptions: list[str] | tuple[str, ...] = (),
    progress: Progress | None = None,
    state: dict[str, str] | None = None,
    offset: Offset | None = None,
    write_timeout_s: float = 10.0,
) -> IngestResult:
    """Run `build` and the shared pipeline in one transaction; record the run, failed or not.

    `db` is a database path (opened with `connect_write` and closed after) or an open writable
    connection. `state` rows are written to `meta` in the same transaction as the events (a live reader's
    position in its source: it advances exactly when the batch lands). Raises UserInputError (one sentence)
    when the source cannot be ingested; the database is then exactly as before, apart from the `ingest_runs`
    row recording the failure. An interrupt (Ctrl-C) rolls the batch back and is raised as KeyboardInterrupt.
    While another process holds the file, opening it is retried for `write_timeout_s` seconds, then refused
    (`StoreError`, one sentence).
    """
    args = (source, preset, build, assumptions, progress, state or {}, offset or Offset())
    if isinstance(db, duckdb.DuckDBPyConnection):
        from core.store import init_schema

        init_schema(db)
        return _execute(db, *args)
    with connect_write(db, timeout_s=write_timeout_s) as con:
        return _execute(con, *args)


def _execute(con, source, preset, build, assumptions, progress, state, offset) -> IngestResult:
    from core.ingest import pipeline

    step = progress or (lambda _name: None)
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")  # DuckDB's bar writes to stdout; the CLI draws its own
    _require_our_tables(con)
    run = Run(con=con, run_id=_next_run_id(con), started_at=_now(), assumptions=list(assumptions), offset=offset)
    con.execute("BEGIN TRANSACTION")
    try:
        step("reading")
        stage = build(run)
        step("validating")
        counts = pipeline.stage_and_validate(run, stage)
        step("inserting events")
        accepted = pipeline.insert_events(run, stage)
        step("updating users and items")
        side_rejected = pipeline.upsert_users(run, stage) + pipeline.upsert_items(run, stage)
        pipeline.merge_context_keys(con, stage.context_keys)
        edges = insert_edges(con, run.run_id, stage.edges, _now()) if stage.edges is not None else None
        for key, value in state.items():
            con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, value])
        rejected = counts.rejected + side_rejected + (edges.rejected if edges is not None else 0)
        duplicates = counts.valid - accepted
        reasons = top_reasons(con, run.run_id) if rejected else {}
        message = _summary(accepted, rejected, duplicates, run.assumptions)
        if edges is not None:
            message += " " + edges.sentence()
        con.execute(
            "INSERT INTO ingest_runs VALUES (?, ?, ?, 'ok', ?, ?, ?, ?, ?, ?)",
            [run.run_id, source, preset, accepted, rejected, duplicates, message, run.started_at, _now()],
        )
        pipeline.drop_temp(con)
        guard.check_unchanged(run.stamps)  # a file rewritten or appended to mid-run: nothing lands
        con.execute("COMMIT")
    except BaseException as exc:
        try:
            con.execute("ROLLBACK")
        except duckdb.Error:  # interrupted during COMMIT, which then completed: the batch landed whole
            log.warning("run %s: nothing to roll back after %s", run.run_id, type(exc).__name__)
        _unregister(run)
        if isinstance(exc, duckdb.InterruptException):
            error: BaseException = KeyboardInterrupt()
        elif isinstance(exc, InterestLensError):
            error = exc
        elif isinstance(exc, duckdb.Error):
            error = translate_error(exc, Path(source).name or source, run.layouts)
        else:
            error = exc
        reason = "interrupted" if isinstance(error, KeyboardInterrupt) else str(error) or type(error).__name__
        _record_failure(con, run.run_id, source, preset, run.started_at, reason)
        if error is exc:
            raise
        raise error from exc
    _unregister(run)
    step("done")
    log.info("run %s: %s", run.run_id, message)
    return IngestResult(accepted, rejected, duplicates, run.run_id, list(run.assumptions), message, reasons, edges)


# A reject's reason may start with where it was ("ratings.dat line 12: ", "u.item row 3: "); grouping drops that.
_WHERE = r"^.* (line|row) [0-9]+: "


def top_reasons(con: duckdb.DuckDBPyConnection, run_id: int, limit: int = 5) -> dict[str, int]:
    """The run's most frequent reject reasons (without the line or row they name) and how many rows each."""
    rows = con.execute(
        f"""SELECT regexp_replace(reason, '{_WHERE}', '') AS why, count(*) AS n FROM rejects WHERE run_id = ?
            GROUP BY why ORDER BY n DESC, why LIMIT ?""",
        [run_id, limit],
    ).fetchall()
    return {str(why): int(n) for why, n in rows}


_EVENT_COLUMNS = {"user_id", "item_id", "ts", "event_type", "value", "context", "run_id", "seq"}


def _require_our_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Refuse a DuckDB file whose tables merely share our names (writing into it would corrupt it)."""
    cols = {r[0] for r in con.execute(
        """SELECT column_name FROM duckdb_columns()
           WHERE table_name = 'events' AND schema_name = 'main' AND database_name = current_database()"""
    ).fetchall()}  # fmt: skip
    if not _EVENT_COLUMNS <= cols:
        raise UserInputError(
            "This database has an events table that is not InterestLens' (missing "
            f"{', '.join(sorted(_EVENT_COLUMNS - cols))}); ingest into a new --db file."
        )


def _unregister(run: Run) -> None:
    for name in run.registered:
        run.con.unregister(name)
    run.registered.clear()


def require(condition: bool, sentence: str) -> None:
    """Raise UserInputError(sentence) unless condition holds."""
    if not condition:
        raise UserInputError(sentence)
