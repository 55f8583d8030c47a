"""One ingest run is one transaction: stage the source, validate it in SQL, quarantine bad rows,
drop duplicates, insert the rest clustered by user, upsert users and items, record the run.

A loader (a preset, or `ingest_frames`) builds a `core.ingest.stage.Stage`; everything after that is shared
(`core.ingest.pipeline`), so every format gets the same checks.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable
from pathlib import Path

import duckdb

from core.errors import InterestLensError, UserInputError
from core.ingest import guard, pipeline
from core.ingest.files import translate_error
from core.ingest.result import IngestResult
from core.ingest.stage import Offset, Progress, Run, Stage
from core.store import connect_write
from core.store.edges import insert_edges

__all__ = ["execute_run", "top_reasons"]

log = logging.getLogger(__name__)

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
            f"{', '.join(sorted(_EVENT_COLUMNS - cols))}); ingest into a new database file."
        )


def _unregister(run: Run) -> None:
    for name in run.registered:
        run.con.unregister(name)
    run.registered.clear()

