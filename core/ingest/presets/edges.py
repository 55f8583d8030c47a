"""Edge files for ingest: a generic CSV / TSV / Parquet file with named columns (`--social-file`), and the
positional files of the public formats (Last.fm `user_friends.dat`, Ciao `trusts.txt`), as `EdgeStage`s."""

from __future__ import annotations

from pathlib import Path

from core.errors import UserInputError
from core.ingest.files import require_file
from core.ingest.presets.common import detect_format, raw_text
from core.ingest.readers import Dialect, header_names, parquet_columns, require_columns
from core.ingest.result import ColumnMapping
from core.ingest.stage import Run
from core.ingest.times import time_sql
from core.store.edges import EdgeStage

__all__ = ["generic_edges", "positional_edges"]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _clean(col: str) -> str:
    """A text field without a trailing carriage return (files with CRLF line endings)."""
    return f"rtrim(CAST({col} AS VARCHAR), chr(13))"


def _since(run: Run, col: str | None, unit: str) -> tuple[str, str]:
    """`since` and `since_problem` SQL for the text column `col` (NULLs when there is none)."""
    if col is None:
        return "NULL::TIMESTAMP", "NULL::VARCHAR"
    if unit == "auto":
        unit = "s"
        run.assume("Edge times are read as unix seconds (ISO-8601 text when --time-unit iso is given).")
    t = time_sql(col, unit)  # type: ignore[arg-type]
    # an absent edge time is fine (unknown start), an unreadable one is a reject
    return t.ts, f"CASE WHEN {col} IS NULL OR trim({col}) = '' THEN NULL ELSE {t.problem} END"


def generic_edges(run: Run, m: ColumnMapping) -> EdgeStage:
    """The edges file named by `m.social_file`, its columns named by `m.src_col`, `m.dst_col` and optionally
    `m.edge_time_col` and `m.edge_weight_col`; every edge gets the kind `m.edge_kind`."""
    path = require_file(Path(str(m.social_file)), "social file")
    fmt = detect_format(path)
    roles = {"src": m.src_col, "dst": m.dst_col}
    if m.edge_time_col:
        roles["time"] = m.edge_time_col
    if m.edge_weight_col:
        roles["weight"] = m.edge_weight_col
    if fmt == "parquet":
        names = list(parquet_columns(run.con, path))
        pos = require_columns(names, roles, path.name)
        src = "(SELECT file_row_number AS seq, " + ", ".join(
            f"CAST({_quote(n)} AS VARCHAR) AS c{k}" for k, n in enumerate(names)
        ) + " FROM read_parquet(?, file_row_number = true))"
        params, delim = [str(path)], ","
    elif fmt in ("csv", "tsv"):
        delim = "\t" if fmt == "tsv" else _delim(path, m)
        dialect = Dialect(delim=delim, header=True, encoding=m.encoding)
        names = header_names(path, dialect)
        pos = require_columns(names, roles, path.name)
        table, params = run.delimited(path, len(names), dialect, f"a header line and {len(names)} fields", False)
        src = f"(SELECT row_number() OVER () - 1 AS seq, * FROM {table})"
    else:
        raise UserInputError(f"{path.name}: a social file must be CSV, TSV or Parquet with a header line.")
    cols = {r: _clean(f"c{k}") for r, k in pos.items()}
    since, problem = _since(run, cols.get("time"), m.time_unit)
    sql = f"""SELECT seq, {cols['src']} AS src, {cols['dst']} AS dst, ?::VARCHAR AS kind,
                {cols.get('weight', 'NULL::VARCHAR')} AS weight_text, {since} AS since, {problem} AS since_problem,
                {raw_text(len(names), delim)} AS raw FROM {src}"""
    return EdgeStage(sql, [m.edge_kind, *params], directed=m.directed, label=path.name)


def positional_edges(
    run: Run, path: Path, dialect: Dialect, n_columns: int, *, kind: str, directed: bool, weight: int | None = None
) -> EdgeStage:
    """An edges file whose first two fields are the source and target users (`weight`: the weight's field)."""
    table, params = run.delimited(path, n_columns, dialect, f"{n_columns} fields: source user, target user", False)
    w = _clean(f"c{weight}") if weight is not None else "NULL::VARCHAR"
    delim = dialect.delim
    sql = f"""SELECT row_number() OVER () - 1 AS seq, {_clean('c0')} AS src, {_clean('c1')} AS dst, ?::VARCHAR AS kind,
                {w} AS weight_text, NULL::TIMESTAMP AS since, NULL::VARCHAR AS since_problem,
                {raw_text(n_columns, delim)} AS raw FROM {table}"""
    return EdgeStage(sql, [kind, *params], directed=directed, label=path.name)


def _delim(path: Path, m: ColumnMapping) -> str:
    if m.delimiter:
        return "\t" if m.delimiter in ("\\t", "tab") else m.delimiter
    from core.ingest.readers import first_line

    line = first_line(path, m.encoding)
    counts = {d: line.count(d) for d in (",", "\t", ";", "|")}
    return max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","


