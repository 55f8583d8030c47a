"""The shared steps of an ingest run (`core.ingest.run` executes them): validate, quarantine, dedupe, insert, upsert.

Speed matters here (tens of millions of rows): the source is parsed once into one temporary table, context
values stay plain text until after dedupe (a MAP per row is the most expensive thing to build), duplicates
are found with one hash aggregate, and events are inserted sorted by user so one user's history sits in a
few row groups (DuckDB skips the others by their min/max, which keeps `user_history` fast).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import duckdb

from core.errors import UserInputError
from core.ingest import readers
from core.ingest.stage import FILE_SHIFT, Run, SideTable, Stage

__all__ = ["Counts", "stage_and_validate", "insert_events", "upsert_users", "upsert_items", "merge_context_keys"]

CHECKED_ROWS = "_il_checked_rows"
CHECKED = "_il_checked"  # a view over CHECKED_ROWS with seq filled in
USERS = "_il_users"
ITEMS = "_il_items"
REPEATS = "_il_repeats"
CONTEXTS = "_il_contexts"
CLUSTER = "user_id"  # physical order of one run's events: by user, so a history is a few row groups
_KEYS = ["user_id", "item_id", "ts", "event_type", "value"]
_CASE_LIMIT = 64  # context combinations up to which each row's MAP is picked from constants (see _context_case)
_ROW_MASK = (1 << FILE_SHIFT) - 1


def _missing(col: str) -> str:
    """SQL: the id is absent — NULL, empty, blank or the text NULL. A string that sorts before "!" is empty or
    starts with a space or control character; only those are trimmed (plain comparisons cost far less)."""
    return f"({col} IS NULL OR ({col} < '!' AND trim({col}) = '') OR {col} = 'NULL' OR {col} = 'null')"


# One reason per rejected row, the first that applies; the loader's own `problem` (an unparseable line, an
# unknown behaviour type, a rating out of range) is the most specific, so it comes first.
_REASON = f"""CASE
    WHEN problem IS NOT NULL THEN problem
    WHEN {_missing("user_id")} THEN 'missing user id'
    WHEN {_missing("item_id")} THEN 'missing item id'
    WHEN ts_problem IS NOT NULL THEN ts_problem
    WHEN ts IS NULL THEN 'missing timestamp'
    WHEN ts < TIMESTAMP '1990-01-01' THEN 'timestamp before 1990'
    WHEN ts > ?::TIMESTAMP THEN 'timestamp in the future'
    WHEN event_type IS NULL OR event_type = '' THEN 'missing event type'
    WHEN value IS NOT NULL AND NOT isfinite(value) THEN 'value is not a finite number'
    WHEN event_type = 'rating' AND value < 0 THEN 'negative rating'
END"""


@dataclass(frozen=True)
class Counts:
    valid: int  # rows that passed validation (duplicates included)
    rejected: int  # event rows that failed validation, plus unreadable lines of every file


def _ctx_cols(stage: Stage) -> list[str]:
    return [f"ctx_{i}" for i in range(len(stage.context_keys))]


def _item_cols(stage: Stage) -> list[str]:
    return ["item_title", "item_categories"] if stage.item_columns else []


def _raw_field(col: str, stage: Stage) -> str:
    """SQL: one parsed field put back into a rejected row's text. With a one-character delimiter (CSV, TSV) a field
    holding the delimiter, a quote or a line break is quoted the CSV way, so the row reads back as it was."""
    d = stage.raw_delim
    if stage.raw_parts < 2 or len(d) != 1 or d == '"':
        return f"coalesce({col}, '')"
    lit = d.replace("'", "''")
    return (f"""CASE WHEN contains({col}, '{lit}') OR contains({col}, '"') OR contains({col}, chr(10))
                  OR contains({col}, chr(13)) THEN '"' || replace({col}, '"', '""') || '"' ELSE coalesce({col}, '') END""")


def stage_and_validate(run: Run, stage: Stage) -> Counts:
    """Materialise the checked events and the side tables, quarantine what fails; (valid, rejected) rows."""
    con = run.con
    ctx = _ctx_cols(stage)
    extra = ", ".join(["", *ctx, *_item_cols(stage)])
    raw = (
        "concat_ws(?, " + ", ".join(_raw_field(f"raw_{i}", stage) for i in range(stage.raw_parts)) + ")"
        if stage.raw_parts
        else "?::VARCHAR"
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {CHECKED_ROWS} AS
            SELECT seq, user_id, item_id, ts, event_type, value{extra}, reason,
                   CASE WHEN reason IS NOT NULL THEN left({raw}, 2000) END AS raw,
                   CASE WHEN reason IS NULL THEN hash(user_id, item_id, ts) END AS h
            FROM (SELECT *, {_REASON} AS reason FROM ({stage.events_sql}) s) c""",
        # parameters in text order: the raw delimiter, the reason's "future" bound, then the loader's
        [stage.raw_delim if stage.raw_parts else None, run.started_at, *stage.events_params],
    )
    # A stage that leaves seq NULL numbers its rows by position: the table keeps the source's order
    # (DuckDB preserves insertion order), so rowid is the row's position without a one-thread window.
    # Rows written inside a transaction get row ids counted from a large base, hence the offset.
    # A chunk of a longer source (live ingest) adds the rows before it, so seq is the position in the source.
    base = int(con.execute(f"SELECT coalesce(min(rowid), 0) FROM {CHECKED_ROWS}").fetchall()[0][0])
    shift = int(run.offset.rows)
    con.execute(
        f"""CREATE OR REPLACE TEMP VIEW {CHECKED} AS
            SELECT coalesce(seq, rowid - {base}) + {shift} AS seq, * EXCLUDE (seq) FROM {CHECKED_ROWS}"""
    )
    for name, side in ((USERS, stage.users), (ITEMS, stage.items)):
        if side is not None:
            con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {side.sql}", side.params)
    unreadable = readers.collect_reader_rejects(con, run.run_id, run.layouts, run.offset.lines, run.scans)
    total, valid = con.execute(f"SELECT count(*), count(*) FILTER (reason IS NULL) FROM {CHECKED}").fetchall()[0]
    if total == 0:
        _refuse_empty(run)
    labels = list(stage.files) if len(stage.files) > 1 else []
    con.execute(
        f"""INSERT INTO rejects
            SELECT ?, (seq & {_ROW_MASK}) + 1,
                   CASE WHEN len(?::VARCHAR[]) > 0
                        THEN list_extract(?::VARCHAR[], (seq >> {FILE_SHIFT}) + 1) || ' row '
                             || ((seq & {_ROW_MASK}) + 1) || ': ' || reason
                        ELSE reason END, raw
            FROM {CHECKED} WHERE reason IS NOT NULL ORDER BY seq""",
        [run.run_id, labels, labels],
    )
    return Counts(valid=int(valid), rejected=int(total - valid) + unreadable.total)


def _refuse_empty(run: Run) -> None:
    """No event row at all: say why in one sentence (nothing readable, or nothing there)."""
    for path in run.event_files:
        first = readers.first_reader_error(run.con, path)
        if first is not None:
            line, message = first
            raise UserInputError(
                f"{Path(path).name} has no line in the expected layout ({run.layouts.get(path, 'see the preset')}); "
                f"line {line}: {message.rstrip('.')}."
            )
    names = ", ".join(Path(p).name for p in run.event_files) or "The source"
    raise UserInputError(f"{names} has no event rows (only a header, or an empty table?).")


def _context_case(run: Run, stage: Stage) -> tuple[str, list] | None:
    """A CASE expression mapping each distinct context combination to its MAP (passed as a constant).

    Building a MAP per row costs more than reading the row, and carrying one through the sort costs more
    again; contexts repeat (a handful of devices), so each combination's MAP is made once and picked per row
    after the sort. Returns None when there are too many combinations (then `_context_table` is used).
    """
    ctx, keys = _ctx_cols(stage), list(stage.context_keys)
    combos = run.con.execute(
        f"SELECT DISTINCT {', '.join(ctx)} FROM {CHECKED} WHERE reason IS NULL LIMIT {_CASE_LIMIT + 1}"
    ).fetchall()
    if len(combos) > _CASE_LIMIT:
        return None
    whens, params = [], []
    for combo in combos:
        whens.append("WHEN " + " AND ".join(f"{c} IS NOT DISTINCT FROM ?" for c in ctx) + " THEN ?::MAP(VARCHAR, VARCHAR)")
        params += [*combo, {k: v for k, v in zip(keys, combo, strict=True) if v is not None}]
    return "CASE " + " ".join(whens) + " END", params


def _context_table(run: Run, stage: Stage) -> str:
    """A temporary table of each distinct context combination and its MAP; returns the join condition."""
    ctx = _ctx_cols(stage)
    entries = ", ".join(f"struct_pack(k := ?::VARCHAR, v := {c})" for c in ctx)
    run.con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {CONTEXTS} AS
            SELECT {', '.join(ctx)}, map_from_entries(list_filter([{entries}], lambda e: e.v IS NOT NULL)) AS context
            FROM (SELECT DISTINCT {', '.join(ctx)} FROM {CHECKED} WHERE reason IS NULL)""",
        list(stage.context_keys),
    )
    return " AND ".join(f"r.{c} IS NOT DISTINCT FROM m.{c}" for c in ctx)


# Only stored events inside the batch's time range can equal one of its rows, so the stored side of the
# anti-join is restricted to that range first (a filter on `ts` that DuckDB evaluates inside the scan); a live
# batch of new events then compares against a handful of rows, not against the whole store.
_NOT_STORED = """WHERE NOT EXISTS (SELECT 1 FROM (SELECT * FROM events WHERE ts >= ?::TIMESTAMP AND ts <= ?::TIMESTAMP) e
    WHERE e.user_id = c.user_id AND e.item_id = c.item_id
    AND e.ts = c.ts AND e.event_type = c.event_type AND e.value IS NOT DISTINCT FROM c.value
    AND list_sort(map_entries(coalesce(e.context, MAP {}))) = list_sort(map_entries(coalesce(c.context, MAP {}))))"""


def _stored_overlap(run: Run) -> list | None:
    """[first, last] time of the valid rows when the store already has events in that range, else None."""
    con = run.con
    lo, hi = con.execute(f"SELECT min(ts), max(ts) FROM {CHECKED} WHERE reason IS NULL").fetchall()[0]
    if lo is None:
        return None
    hit = con.execute("SELECT EXISTS (SELECT 1 FROM events WHERE ts >= ? AND ts <= ?)", [lo, hi]).fetchall()[0][0]
    return [lo, hi] if hit else None


def insert_events(run: Run, stage: Stage) -> int:
    """Insert distinct valid events absent from the store, sorted by user so one user's rows are contiguous.

    Exact duplicates (same user, item, time, event type, value and context) keep their first row. Candidates
    are found by one aggregate over a 64-bit hash of (user, item, time); only rows whose hash repeats are
    grouped on all the fields themselves, so a collision can never drop a distinct event. When the store holds
    events inside the batch's time range, an anti-join against those (and only those) drops events already
    stored by any earlier run; otherwise it is skipped.
    """
    con = run.con
    keys = ", ".join(_KEYS + _ctx_cols(stage))
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {REPEATS} AS
            SELECT h FROM {CHECKED} WHERE reason IS NULL GROUP BY h HAVING count(*) > 1"""
    )
    repeats = con.execute(f"SELECT count(*) FROM {REPEATS}").fetchall()[0][0]
    rows = f"SELECT {keys}, seq FROM {CHECKED} WHERE reason IS NULL"
    if repeats:
        rows = f"""SELECT {keys}, seq FROM {CHECKED} WHERE reason IS NULL AND h NOT IN (SELECT h FROM {REPEATS})
                   UNION ALL
                   SELECT {keys}, min(seq) AS seq FROM {CHECKED}
                   WHERE reason IS NULL AND h IN (SELECT h FROM {REPEATS}) GROUP BY {keys}"""
    bounds = _stored_overlap(run)  # None: no stored event can equal a row of this batch
    has_events = bounds is not None
    case = _context_case(run, stage) if stage.context_keys and not has_events else None
    if not stage.context_keys or case is not None:
        # fast path: sort the plain rows, then attach each row's MAP (a constant per combination)
        context, params = case if case is not None else ("MAP {}::MAP(VARCHAR, VARCHAR)", [])
        if has_events:
            rows = f"SELECT *, {context} AS context FROM ({rows}) r"
            sql = f"""SELECT user_id, item_id, ts, event_type, value, context, ?, seq FROM ({rows}) c
                      {_NOT_STORED} ORDER BY {CLUSTER}"""
            params = [run.run_id, *params, *bounds]
        else:
            sql = f"""SELECT user_id, item_id, ts, event_type, value, {context}, ?, seq
                      FROM ({rows} ORDER BY {CLUSTER}) c"""
            params = [*params, run.run_id]
    else:
        on = _context_table(run, stage)
        rows = f"""SELECT r.user_id, r.item_id, r.ts, r.event_type, r.value, m.context, r.seq
                   FROM ({rows}) r JOIN {CONTEXTS} m ON {on}"""
        not_stored = _NOT_STORED if has_events else ""
        sql = f"""SELECT user_id, item_id, ts, event_type, value, context, ?, seq FROM ({rows}) c
                  {not_stored} ORDER BY {CLUSTER}"""
        params = [run.run_id, *(bounds or [])]
    row = con.execute(
        f"INSERT INTO events (user_id, item_id, ts, event_type, value, context, run_id, seq) {sql}", params
    ).fetchall()
    return int(row[0][0]) if row else 0


def _side_rejects(run: Run, side: SideTable, table: str, id_col: str) -> int:
    row = run.con.execute(
        f"""INSERT INTO rejects SELECT ?, (seq & {_ROW_MASK}) + 1, ? || ' row ' || ((seq & {_ROW_MASK}) + 1)
                || ': missing ' || ? || ' id', left(raw, 2000)
            FROM {table} WHERE {id_col} IS NULL OR trim({id_col}) = '' ORDER BY seq""",
        [run.run_id, side.label, id_col.removesuffix("_id")],
    ).fetchall()
    return int(row[0][0]) if row else 0


def upsert_users(run: Run, stage: Stage) -> int:
    """Users from the side table (attributes merged, the latest row wins) and from accepted events."""
    con, bad = run.con, 0
    if stage.users is not None:
        bad = _side_rejects(run, stage.users, USERS, "user_id")
        con.execute(
            f"""INSERT INTO users
                SELECT user_id, arg_max(coalesce(attributes, MAP {{}}), seq) FROM {USERS}
                WHERE user_id IS NOT NULL AND trim(user_id) <> '' GROUP BY user_id
                ON CONFLICT (user_id) DO UPDATE
                SET attributes = map_concat(coalesce(users.attributes, MAP {{}}), EXCLUDED.attributes)"""
        )
    # new ids only: an anti-join against the key costs half of ON CONFLICT's per-row index probes
    con.execute(
        f"""INSERT INTO users SELECT d.user_id, MAP {{}}::MAP(VARCHAR, VARCHAR)
            FROM (SELECT DISTINCT user_id FROM {CHECKED} WHERE reason IS NULL) d ANTI JOIN users USING (user_id)"""
    )
    return bad


_ITEM_UPSERT = """ON CONFLICT (item_id) DO UPDATE SET
    title = coalesce(EXCLUDED.title, items.title),
    categories = CASE WHEN len(EXCLUDED.categories) > 0 THEN EXCLUDED.categories ELSE items.categories END,
    attributes = map_concat(coalesce(items.attributes, MAP {}), EXCLUDED.attributes)"""


def upsert_items(run: Run, stage: Stage) -> int:
    """Items from events' item columns, then from the side table (which wins), then bare ids from events."""
    con, bad = run.con, 0
    if stage.item_columns:
        con.execute(
            f"""INSERT INTO items
                SELECT item_id, arg_max(item_title, seq) FILTER (item_title IS NOT NULL),
                       coalesce(arg_max(item_categories, seq) FILTER (len(item_categories) > 0), []::VARCHAR[]),
                       MAP {{}}::MAP(VARCHAR, VARCHAR)
                FROM {CHECKED} WHERE reason IS NULL GROUP BY item_id
                {_ITEM_UPSERT}"""
        )
    if stage.items is not None:
        bad = _side_rejects(run, stage.items, ITEMS, "item_id")
        con.execute(
            f"""INSERT INTO items
                SELECT item_id, arg_max(title, seq), arg_max(coalesce(categories, []::VARCHAR[]), seq),
                       arg_max(coalesce(attributes, MAP {{}}), seq)
                FROM {ITEMS} WHERE item_id IS NOT NULL AND trim(item_id) <> '' GROUP BY item_id
                {_ITEM_UPSERT}"""
        )
    con.execute(
        f"""INSERT INTO items SELECT d.item_id, NULL, []::VARCHAR[], MAP {{}}::MAP(VARCHAR, VARCHAR)
            FROM (SELECT DISTINCT item_id FROM {CHECKED} WHERE reason IS NULL) d ANTI JOIN items USING (item_id)"""
    )
    return bad


def merge_context_keys(con: duckdb.DuckDBPyConnection, keys: tuple[str, ...]) -> None:
    """Add this run's context keys to `meta.context_keys` (a JSON list, first-seen order)."""
    row = con.execute("SELECT value FROM meta WHERE key = 'context_keys'").fetchall()
    existing = json.loads(row[0][0]) if row and row[0][0] else []
    merged = existing + [k for k in keys if k not in existing]
    con.execute("INSERT OR REPLACE INTO meta VALUES ('context_keys', ?)", [json.dumps(merged)])


def drop_temp(con: duckdb.DuckDBPyConnection) -> None:
    """Drop the run's temporary tables (before COMMIT, so a long session does not keep them)."""
    con.execute(f"DROP VIEW IF EXISTS {CHECKED}")
    for name in (CHECKED_ROWS, USERS, ITEMS, REPEATS, CONTEXTS):
        con.execute(f"DROP TABLE IF EXISTS {name}")
    readers.drop_reader_tables(con)
