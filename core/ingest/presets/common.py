"""Helpers the presets share: finding a preset's files and writing the stage SELECT."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import UserInputError
from core.ingest.files import require_file
from core.ingest.readers import first_line
from core.ingest.result import ColumnMapping
from core.ingest.stage import FILE_SHIFT
from core.ingest.times import TimeSql

__all__ = [
    "detect_format",
    "IngestOptions",
    "attributes_map",
    "events_select",
    "find_file",
    "number",
    "number_problem",
    "first_problem",
    "raw_fields",
    "raw_text",
    "sibling",
]


@dataclass(frozen=True)
class IngestOptions:
    """What a caller may add to a preset's source."""

    mapping: ColumnMapping | None = None  # generic: which columns hold what
    meta: Path | None = None  # amazon-reviews: the metadata file (default: meta_<name> beside the reviews)
    extra: dict = field(default_factory=dict)  # reserved for preset-specific switches


def find_file(source: Path, names: Sequence[str], what: str) -> Path:
    """`source` itself when it is a file, else the first of `names` inside the folder `source`."""
    if not source.exists():
        raise UserInputError(f"The source {source} does not exist; expected {what}.")
    if source.is_dir():
        for name in names:
            for candidate in sorted(source.glob(name)):
                if candidate.is_file():
                    return require_file(candidate)
        raise UserInputError(f"The folder {source} has no {' or '.join(names)}; expected {what}.")
    return require_file(source)


def sibling(path: Path, names: Sequence[str]) -> Path | None:
    """The first of `names` (glob patterns) beside `path` that exists, or None (optional files)."""
    for name in names:
        for candidate in sorted(path.parent.glob(name)):
            if candidate.is_file() and candidate != path:
                return candidate
    return None


def raw_fields(n_columns: int) -> list[str]:
    """The fields c0..c{n-1} of a delimited row, to pass through for rejected rows (see `events_select`)."""
    return [f"c{i}" for i in range(n_columns)]


def attributes_map(pairs: list[tuple[str, str]]) -> tuple[str, list]:
    """MAP SQL of (key, text expression) pairs, empty values left out; keys go in as parameters (an empty MAP
    when there are no pairs)."""
    if not pairs:
        return "MAP {}::MAP(VARCHAR, VARCHAR)", []
    entries = ", ".join(f"struct_pack(k := ?::VARCHAR, v := trim({expr}))" for _key, expr in pairs)
    sql = f"map_from_entries(list_filter([{entries}], lambda e: e.v IS NOT NULL AND e.v <> ''))"
    return sql, [key for key, _expr in pairs]


def raw_text(n_columns: int, delim: str) -> str:
    """SQL rebuilding a delimited row from c0..c{n-1} (side tables, which are small)."""
    parts = ", ".join(f"coalesce(c{i}, '')" for i in range(n_columns))
    return "concat_ws(" + "'" + delim.replace("'", "''") + "', " + parts + ")"


def number(x: str) -> str:
    return f"TRY_CAST({x} AS DOUBLE)"


def number_problem(x: str, what: str) -> str:
    """A reason when the text `x` is present but not a number (NULL otherwise)."""
    label = what.replace("'", "''")
    return f"CASE WHEN {number(x)} IS NULL AND {x} IS NOT NULL AND {x} <> '' THEN '{label} is not a number' END"


def first_problem(*exprs: str) -> str:
    """The first non-NULL reason among several SQL expressions."""
    real = [e for e in exprs if e and e != "NULL"]
    if not real:
        return "NULL::VARCHAR"
    return real[0] if len(real) == 1 else "coalesce(" + ", ".join(real) + ")"


def events_select(
    src: str,
    *,
    user: str,
    item: str,
    time: TimeSql,
    event_type: str,
    raw: Sequence[str],
    value: str = "NULL",
    problem: str = "NULL",
    context: Sequence[str] = (),
    item_title: str | None = None,
    item_categories: str | None = None,
    file_index: int = 0,
    seq: str | None = None,
    seq_rows: bool = False,
) -> str:
    """The stage SELECT (see `core.ingest.stage`) over the table function or subquery `src`.

    Every argument is a SQL expression over `src`'s columns. `seq` is left NULL by default: the pipeline then
    uses the row's position in the stage (see `core.ingest.stage`), which lets DuckDB read the file on all
    threads. `seq_rows=True` numbers `src`'s rows here instead (a window, so one thread): needed when several
    files are stacked (`file_index`).
    `raw` lists the source fields passed through as raw_0, raw_1, …; the pipeline joins them into the reject's
    text only for rejected rows (building that text for every row would cost as much as the read).
    """
    passthrough = "".join(f", CAST({r} AS VARCHAR) AS raw_{i}" for i, r in enumerate(raw))
    ctx = "".join(f", CAST({c} AS VARCHAR) AS ctx_{i}" for i, c in enumerate(context))
    items = ""
    if item_title is not None or item_categories is not None:
        items = (
            f", CAST({item_title or 'NULL'} AS VARCHAR) AS item_title,"
            f" CAST({item_categories or '[]'} AS VARCHAR[]) AS item_categories"
        )
    if seq_rows:
        seq = "row_number() OVER () - 1"
    position = "NULL::BIGINT" if seq is None else f"({seq}) + {file_index << FILE_SHIFT}"
    return f"""SELECT {position} AS seq,
            CAST({user} AS VARCHAR) AS user_id, CAST({item} AS VARCHAR) AS item_id,
            {time.ts} AS ts, {time.problem} AS ts_problem,
            CAST({event_type} AS VARCHAR) AS event_type, CAST({value} AS DOUBLE) AS value,
            CAST({problem} AS VARCHAR) AS problem{passthrough}{ctx}{items}
        FROM {src}"""

def detect_format(path: Path) -> str:
    """"csv", "tsv", "parquet" or "json" from the extension (ignoring .gz), else from the first bytes."""
    name = re.sub(r"\.gz$", "", path.name.lower())
    suffix = Path(name).suffix
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".json", ".jsonl", ".ndjson"):
        return "json"
    if suffix in (".tsv", ".tab"):
        return "tsv"
    if suffix in (".csv", ".txt", ".dat"):
        return "csv"
    with open(path, "rb") as f:
        if f.read(4) == b"PAR1":
            return "parquet"
    return "json" if first_line(path).lstrip().startswith("{") else "csv"
