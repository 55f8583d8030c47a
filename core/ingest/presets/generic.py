"""Any CSV / TSV / Parquet / JSON lines file, with a `ColumnMapping` (flags or a small TOML file) saying
which column holds the user, the item and the time, and optionally the event type, value, categories, title
and context columns; optionally a users file (user attributes) and an items file (titles, categories, item
attributes) beside it, CSV / TSV / Parquet.

The format comes from the extension (`.csv`, `.tsv`, `.parquet`, `.jsonl`/`.json`, each optionally `.gz`),
else from the first bytes. A CSV's delimiter is taken from the mapping, else `.tsv` means tab, else the most
frequent of `, \\t ; |` in the header line (stated). The time column is read as the mapping says or, with
`time_unit = "auto"`, as what its first 10,000 values look like (stated; rows that do not fit are rejected).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from core.errors import UserInputError
from core.ingest.files import require_file
from core.ingest.presets.common import (
    IngestOptions,
    attributes_map,
    detect_format,
    events_select,
    first_problem,
    number,
    number_problem,
    raw_fields,
    raw_text,
)
from core.ingest.presets.edges import generic_edges
from core.ingest.readers import (
    Dialect,
    delimited,
    first_line,
    header_names,
    json_lines,
    parquet_columns,
    require_columns,
)
from core.ingest.result import ColumnMapping
from core.ingest.stage import Run, SideTable, Stage
from core.ingest.times import TimeSql, guess_unit, time_sql

__all__ = ["load_generic", "detect_format"]

_SAMPLE = 10_000
_TYPED_TIME = ("TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "DATE", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S")




def _roles(m: ColumnMapping) -> dict[str, str]:
    """Role -> column name for every column the mapping uses (context columns as ctx0, ctx1, …)."""
    roles = {"user": m.user, "item": m.item, "time": m.time}
    for role in ("event", "value", "category", "title"):
        if getattr(m, role):
            roles[role] = getattr(m, role)
    roles.update({f"ctx{i}": c for i, c in enumerate(m.context)})
    return roles


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def load_generic(run: Run, source: Path, options: IngestOptions) -> Stage:
    """A single file of events described by `options.mapping` (default: user_id, item_id, timestamp)."""
    m = options.mapping or ColumnMapping()
    path = require_file(source, "events file")
    fmt = detect_format(path)
    roles = _roles(m)
    typed_time = False
    if fmt == "parquet":
        types = parquet_columns(run.con, path)
        require_columns(list(types), roles, path.name)
        typed_time = types[m.time].upper() in _TYPED_TIME
        cols = {r: f"CAST({_quote(c)} AS VARCHAR)" for r, c in roles.items()}
        if typed_time:
            cols["time"] = f"CAST({_quote(m.time)} AS TIMESTAMP)"
        raw, delim = [f"r_{role}" for role in cols], ","
        base = f"SELECT file_row_number AS seq, {_select(cols)}, FALSE AS bad FROM read_parquet(?, file_row_number = true)"
        params: list = [str(path)]
        sample = (f"SELECT {cols['time']} AS x FROM read_parquet(?) LIMIT {_SAMPLE}", [str(path)])
    elif fmt == "json":
        keys = _json_keys(run, path)
        require_columns(keys, roles, path.name)
        paths = ["$." + json.dumps(c) for c in roles.values()]
        cols = {r: f"j[{k + 1}]" for k, r in enumerate(roles)}
        src, rparams = run.json_lines(path, "one JSON object per line")
        inner = """SELECT c0, CASE WHEN TRY(json_type(c0)) = 'OBJECT' THEN json_extract_string(c0, ?::VARCHAR[]) END AS j
                    FROM {src} WHERE c0 IS NOT NULL AND trim(c0) <> ''"""
        raw, delim = ["c0"], ""
        base = f"SELECT NULL::BIGINT AS seq, {_select(cols)}, c0, j IS NULL AS bad FROM ({inner.format(src=src)})"
        params = [paths, *rparams]
        s_src, s_params = json_lines(path, quarantine=False)
        sample = (f"SELECT j[{list(roles).index('time') + 1}] AS x FROM ({inner.format(src=s_src)}) LIMIT {_SAMPLE}",
                  [paths, *s_params])  # fmt: skip
    else:
        dialect = _dialect(run, path, fmt, m)
        names = header_names(path, dialect)
        pos = require_columns(names, roles, path.name)
        cols = {r: f"c{k}" for r, k in pos.items()}
        sep = "tab" if dialect.delim == "\t" else repr(dialect.delim)
        src, rparams = run.delimited(path, len(names), dialect, f"{len(names)} {sep}-separated fields: {', '.join(names)}")
        raw, delim = raw_fields(len(names)), dialect.delim
        base = f"SELECT NULL::BIGINT AS seq, {_select(cols)}, {', '.join(raw)}, FALSE AS bad FROM {src}"
        params = rparams
        s_src, s_params = delimited(path, len(names), dialect, quarantine=False)
        sample = (f"SELECT {cols['time']} AS x FROM {s_src} LIMIT {_SAMPLE}", s_params)
    time = _time(run, m, typed_time, sample)
    event = "lower(r_event)" if "event" in roles else "?::VARCHAR"
    sql = events_select(
        f"({base})",
        user="r_user",
        item="r_item",
        time=time,
        event_type=event,
        value=number("r_value") if "value" in roles else "NULL",
        problem=first_problem(
            "CASE WHEN bad THEN 'not a JSON object' END",
            number_problem("r_value", "value") if "value" in roles else "NULL",
        ),
        raw=raw,
        context=[f"r_ctx{i}" for i in range(len(m.context))],
        item_title="r_title" if "title" in roles else None,
        item_categories=(
            "list_filter(list_transform(string_split(r_category, ?::VARCHAR), lambda x: trim(x)), lambda x: x <> '')"
            if "category" in roles
            else None
        ),
        seq="seq",
    )
    # parameters in text order: the event type constant, the category separator, then the source's
    head = ([] if "event" in roles else [m.event_type]) + ([m.category_sep] if "category" in roles else [])
    return Stage(
        sql,
        [*head, *params],
        users=_side_file(run, m.users_file, "users", m) if m.users_file else None,
        items=_side_file(run, m.items_file, "items", m) if m.items_file else None,
        edges=generic_edges(run, m) if m.social_file else None,
        context_keys=tuple(m.context),
        item_columns="category" in roles or "title" in roles,
        raw_parts=len(raw),
        raw_delim=delim,
    )


def _side_file(run: Run, name: str, kind: str, m: ColumnMapping) -> SideTable:
    """A users or items file (CSV / TSV / Parquet with a header): the id column is named as in the events
    (`m.user` / `m.item`) or user_id / item_id; an items file's title and category columns likewise (else
    title or name, category or categories); every other non-empty column becomes an attribute."""
    path = require_file(Path(name), f"{kind} file")
    fmt = detect_format(path)
    if fmt == "parquet":
        names = list(parquet_columns(run.con, path))
        src = "(SELECT " + ", ".join(f"CAST({_quote(n)} AS VARCHAR) AS c{k}" for k, n in enumerate(names))
        src, params, delim = src + " FROM read_parquet(?))", [str(path)], ","
    elif fmt in ("csv", "tsv"):
        dialect = _dialect(run, path, fmt, dataclasses.replace(m, delimiter=None))
        names = header_names(path, dialect)
        src, params = run.delimited(path, len(names), dialect, f"a header line and {len(names)} fields", False)
        delim = dialect.delim
    else:
        raise UserInputError(f"{path.name}: a {kind} file must be CSV, TSV or Parquet with a header line.")
    key = m.user if kind == "users" else m.item
    id_col = next((c for c in (key, f"{kind[:-1]}_id") if c in names), None)
    if id_col is None:
        raise UserInputError(f"The {kind} file {path.name} has no {key!r} column (its columns: {', '.join(names)}).")
    used, head = {id_col}, []
    if kind == "items":
        title = next((c for c in (m.title, "title", "name") if c and c in names), None)
        category = next((c for c in (m.category, "category", "categories") if c and c in names), None)
        used |= {title, category}
        title_sql = f"c{names.index(title)}" if title else "NULL"
        cats = (
            f"list_filter(list_transform(string_split(c{names.index(category)}, ?::VARCHAR), lambda x: trim(x)), "
            "lambda x: x <> '')"
            if category
            else "[]::VARCHAR[]"
        )
        head = [m.category_sep] if category else []
        columns = f"trim(c{names.index(id_col)}) AS item_id, {title_sql} AS title, {cats} AS categories"
    else:
        columns = f"trim(c{names.index(id_col)}) AS user_id"
    others = [(n, f"c{k}") for k, n in enumerate(names) if n not in used]
    attrs, keys = attributes_map(others)
    sql = f"""SELECT row_number() OVER () - 1 AS seq, {columns}, {attrs} AS attributes,
                {raw_text(len(names), delim)} AS raw FROM {src}"""
    return SideTable(sql, [*head, *keys, *params], label=path.name)


def _select(cols: dict[str, str]) -> str:
    return ", ".join(f"{expr} AS r_{role}" for role, expr in cols.items())


def _dialect(run: Run, path: Path, fmt: str, m: ColumnMapping) -> Dialect:
    if m.delimiter:
        delim = "\t" if m.delimiter in ("\\t", "tab") else m.delimiter
    elif fmt == "tsv":
        delim = "\t"
    else:
        line = first_line(path, m.encoding)
        counts = {d: line.count(d) for d in (",", "\t", ";", "|")}
        delim = max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","
        if delim != ",":
            shown = "tab" if delim == "\t" else repr(delim)
            run.assume(f"{path.name} is read as {shown}-separated (the most frequent separator in its header line).")
    return Dialect(delim=delim, header=True, encoding=m.encoding)


def _json_keys(run: Run, path: Path) -> list[str]:
    """Keys of the first 1,000 JSON objects (in first-seen order)."""
    src, params = json_lines(path, quarantine=False)
    rows = run.con.execute(
        f"""SELECT k FROM (SELECT unnest(json_keys(c0)) AS k, n FROM (
                SELECT row_number() OVER () AS n, c0 FROM {src} WHERE json_valid(c0) AND c0 LIKE '{{%' LIMIT 1000))
            GROUP BY k ORDER BY min(n), k""",
        params,
    ).fetchall()
    if not rows:
        raise UserInputError(f"{path.name} has no JSON object in its first lines; expected JSON lines.")
    return [r[0] for r in rows]


def _time(run: Run, m: ColumnMapping, typed: bool, sample: tuple[str, list]) -> TimeSql:
    if typed:
        run.assume(f"The time column {m.time!r} holds timestamps; those without a time zone are taken as UTC.")
        return TimeSql(ts="r_time", problem="CASE WHEN r_time IS NULL THEN 'missing timestamp' END")
    unit = m.time_unit
    if unit == "auto":
        guess = guess_unit(run.con, sample[0], sample[1], m.time, _SAMPLE)
        run.assume(guess.sentence)
        unit = guess.unit
    elif unit == "iso":
        run.assume(f"Times in {m.time!r} without a UTC offset are taken as UTC.")
    return time_sql("r_time", unit)
