"""One ingest run is one transaction: stage the source, validate it in SQL, quarantine bad rows,
drop duplicates, insert the rest sorted by (user_id, ts, seq), upsert users and items, record the run.

A loader (a preset, or `load_frames`) only has to describe its source as SQL that yields the stage
columns below; everything after that is shared, so every format gets the same checks.

Stage columns of the events SELECT::

    seq BIGINT           position of the row in its source (0-based)
    user_id, item_id     VARCHAR
    ts TIMESTAMP         UTC; NULL when missing or unparseable
    ts_problem VARCHAR   why ts is NULL or suspicious (NULL when fine)
    event_type VARCHAR   lower-case word
    value DOUBLE         rating / weight; NULL when absent
    problem VARCHAR      a loader-specific reason to reject the row (NULL when fine)
    context MAP(VARCHAR, VARCHAR)
    raw VARCHAR          the row as text, kept for rejected rows
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import duckdb

from core.errors import InterestLensError, UserInputError
from core.ingest.files import translate_error
from core.ingest.result import IngestResult
from core.store import connect_write

__all__ = ["Run", "Stage", "SideTable", "execute_run"]

log = logging.getLogger(__name__)

Progress = Callable[[str], None]

_CHECKED = "_il_checked"


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
    context_keys: tuple[str, ...] = ()


@dataclass
class Run:
    """The open run: its connection (inside the transaction), id and the assumptions made so far."""

    con: duckdb.DuckDBPyConnection
    run_id: int
    started_at: dt.datetime
    assumptions: list[str] = field(default_factory=list)
    temp_names: list[str] = field(default_factory=list)
    registered: list[str] = field(default_factory=list)

    def register(self, name: str, frame) -> None:
        """Expose a DataFrame (or Arrow table) to this run's SQL under `name`; unregistered when the run ends."""
        self.con.register(name, frame)
        self.registered.append(name)

    def assume(self, sentence: str) -> None:
        """State an assumption once; it is returned to the caller and recorded in the run's message."""
        if sentence not in self.assumptions:
            log.info("assumption: %s", sentence)
            self.assumptions.append(sentence)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


def _next_run_id(con: duckdb.DuckDBPyConnection) -> int:
    return int(con.execute("SELECT coalesce(max(run_id), 0) + 1 FROM ingest_runs").fetchone()[0])


_REASON = """CASE
    WHEN user_id IS NULL OR trim(user_id) = '' THEN 'missing user id'
    WHEN item_id IS NULL OR trim(item_id) = '' THEN 'missing item id'
    WHEN ts_problem IS NOT NULL THEN ts_problem
    WHEN ts IS NULL THEN 'missing timestamp'
    WHEN ts < TIMESTAMP '1990-01-01' THEN 'timestamp before 1990'
    WHEN ts > ?::TIMESTAMP THEN 'timestamp in the future'
    WHEN event_type IS NULL OR trim(event_type) = '' THEN 'missing event type'
    WHEN problem IS NOT NULL THEN problem
    WHEN value IS NOT NULL AND NOT isfinite(value) THEN 'value is not a finite number'
    WHEN event_type = 'rating' AND value < 0 THEN 'negative rating'
END"""


def _validate(run: Run, stage: Stage) -> tuple[int, int]:
    """Materialise the checked stage; returns (valid rows, rejected rows)."""
    con = run.con
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {_CHECKED} AS
            SELECT seq, user_id, item_id, ts, event_type, value, context,
                   CASE WHEN reason IS NOT NULL THEN raw END AS raw, reason
            FROM (SELECT *, {_REASON} AS reason FROM ({stage.events_sql}) s) c""",
        [*stage.events_params, run.started_at],
    )
    run.temp_names.append(_CHECKED)
    valid, bad = con.execute(
        f"SELECT count(*) FILTER (reason IS NULL), count(*) FILTER (reason IS NOT NULL) FROM {_CHECKED}"
    ).fetchone()
    con.execute(
        f"""INSERT INTO rejects SELECT ?, seq + 1, reason, raw FROM {_CHECKED}
            WHERE reason IS NOT NULL ORDER BY seq""",
        [run.run_id],
    )
    return int(valid), int(bad)


def _insert_events(run: Run) -> int:
    """Insert distinct valid events absent from the store, sorted so one user's rows are contiguous."""
    con = run.con
    has_events = con.execute("SELECT EXISTS (SELECT 1 FROM events)").fetchone()[0]
    not_stored = (
        """WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.user_id = c.user_id AND e.item_id = c.item_id
                 AND e.ts = c.ts AND e.event_type = c.event_type AND e.value IS NOT DISTINCT FROM c.value)"""
        if has_events
        else ""
    )
    row = con.execute(
        f"""INSERT INTO events (user_id, item_id, ts, event_type, value, context, run_id, seq)
            SELECT user_id, item_id, ts, event_type, value, context, ?, seq FROM (
                SELECT user_id, item_id, ts, event_type, value, min(seq) AS seq, arg_min(context, seq) AS context
                FROM {_CHECKED} WHERE reason IS NULL
                GROUP BY user_id, item_id, ts, event_type, value) c
            {not_stored}
            ORDER BY user_id, ts, seq""",
        [run.run_id],
    ).fetchone()
    return int(row[0]) if row else 0


def _side_rejects(run: Run, side: SideTable, id_col: str) -> int:
    row = run.con.execute(
        f"""INSERT INTO rejects SELECT ?, seq + 1, ? || ': missing ' || ? || ' id', raw FROM ({side.sql}) s
            WHERE {id_col} IS NULL OR trim({id_col}) = ''""",
        [run.run_id, side.label, id_col.removesuffix("_id"), *side.params],
    ).fetchone()
    return int(row[0]) if row else 0


def _upsert_users(run: Run, side: SideTable | None) -> int:
    con, bad = run.con, 0
    if side is not None:
        bad = _side_rejects(run, side, "user_id")
        con.execute(
            f"""INSERT INTO users
                SELECT user_id, arg_max(coalesce(attributes, MAP {{}}), seq) FROM ({side.sql}) s
                WHERE user_id IS NOT NULL AND trim(user_id) <> '' GROUP BY user_id
                ON CONFLICT (user_id) DO UPDATE
                SET attributes = map_concat(coalesce(users.attributes, MAP {{}}), EXCLUDED.attributes)""",
            side.params,
        )
    con.execute(
        f"""INSERT INTO users SELECT DISTINCT user_id, MAP {{}}::MAP(VARCHAR, VARCHAR)
            FROM {_CHECKED} WHERE reason IS NULL ON CONFLICT DO NOTHING"""
    )
    return bad


def _upsert_items(run: Run, side: SideTable | None) -> int:
    con, bad = run.con, 0
    if side is not None:
        bad = _side_rejects(run, side, "item_id")
        con.execute(
            f"""INSERT INTO items
                SELECT item_id, arg_max(title, seq), arg_max(coalesce(categories, []::VARCHAR[]), seq),
                       arg_max(coalesce(attributes, MAP {{}}), seq)
                FROM ({side.sql}) s WHERE item_id IS NOT NULL AND trim(item_id) <> '' GROUP BY item_id
                ON CONFLICT (item_id) DO UPDATE SET
                    title = coalesce(EXCLUDED.title, items.title),
                    categories = CASE WHEN len(EXCLUDED.categories) > 0 THEN EXCLUDED.categories
                                      ELSE items.categories END,
                    attributes = map_concat(coalesce(items.attributes, MAP {{}}), EXCLUDED.attributes)""",
            side.params,
        )
    con.execute(
        f"""INSERT INTO items SELECT DISTINCT item_id, NULL, []::VARCHAR[], MAP {{}}::MAP(VARCHAR, VARCHAR)
            FROM {_CHECKED} WHERE reason IS NULL ON CONFLICT DO NOTHING"""
    )
    return bad


def _merge_context_keys(con: duckdb.DuckDBPyConnection, keys: tuple[str, ...]) -> None:
    row = con.execute("SELECT value FROM meta WHERE key = 'context_keys'").fetchone()
    existing = json.loads(row[0]) if row and row[0] else []
    merged = existing + [k for k in keys if k not in existing]
    con.execute("INSERT OR REPLACE INTO meta VALUES ('context_keys', ?)", [json.dumps(merged)])


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
) -> IngestResult:
    """Run `build` and the shared pipeline in one transaction; record the run, failed or not.

    `db` is a database path (opened with `connect_write` and closed after) or an open writable
    connection. Raises UserInputError (one sentence) when the source cannot be ingested; the
    database is then exactly as before, apart from the `ingest_runs` row recording the failure.
    """
    if isinstance(db, duckdb.DuckDBPyConnection):
        from core.store import init_schema

        init_schema(db)
        return _execute(db, source, preset, build, assumptions, progress)
    with connect_write(db) as con:
        return _execute(con, source, preset, build, assumptions, progress)


def _execute(con, source, preset, build, assumptions, progress) -> IngestResult:
    step = progress or (lambda _name: None)
    con.execute("SET TimeZone = 'UTC'")
    run = Run(con=con, run_id=_next_run_id(con), started_at=_now(), assumptions=list(assumptions))
    con.execute("BEGIN TRANSACTION")
    try:
        step("reading")
        stage = build(run)
        step("validating")
        valid, rejected = _validate(run, stage)
        step("inserting events")
        accepted = _insert_events(run)
        step("updating users and items")
        rejected += _upsert_users(run, stage.users)
        rejected += _upsert_items(run, stage.items)
        _merge_context_keys(con, stage.context_keys)
        duplicates = valid - accepted
        message = _summary(accepted, rejected, duplicates, run.assumptions)
        con.execute(
            "INSERT INTO ingest_runs VALUES (?, ?, ?, 'ok', ?, ?, ?, ?, ?, ?)",
            [run.run_id, source, preset, accepted, rejected, duplicates, message, run.started_at, _now()],
        )
        for name in run.temp_names:
            con.execute(f"DROP TABLE IF EXISTS {name}")
        con.execute("COMMIT")
    except BaseException as exc:
        con.execute("ROLLBACK")
        _unregister(run)
        if isinstance(exc, InterestLensError):
            error: BaseException = exc
        elif isinstance(exc, duckdb.Error):
            error = translate_error(exc, source)
        else:
            error = exc
        _record_failure(con, run.run_id, source, preset, run.started_at, str(error) or type(error).__name__)
        if error is exc:
            raise
        raise error from exc
    _unregister(run)
    step("done")
    log.info("run %s: %s", run.run_id, message)
    return IngestResult(accepted, rejected, duplicates, run.run_id, list(run.assumptions), message)


def _unregister(run: Run) -> None:
    for name in run.registered:
        run.con.unregister(name)
    run.registered.clear()


def require(condition: bool, sentence: str) -> None:
    """Raise UserInputError(sentence) unless condition holds."""
    if not condition:
        raise UserInputError(sentence)
