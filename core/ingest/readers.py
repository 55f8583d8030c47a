"""SQL for DuckDB's own readers (delimited text, JSON lines, Parquet) and the lines they could not read.

Every delimited file is read with explicit settings (no sniffing), all columns as text under the safe names
`c0, c1, …`, so a bad value never stops the read: it becomes a rejected row with a reason later. Lines the
reader itself cannot split (wrong number of fields, a line over the size limit) are quarantined by DuckDB's
`store_rejects` into two temporary tables and copied into `rejects` by `collect_reader_rejects`.
JSON lines are read as one text column per line and parsed in SQL, so a malformed line is a rejected row too.
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from core.errors import SettingError, UserInputError
from core.ingest import guard

__all__ = [
    "Dialect",
    "ReaderCounts",
    "collect_reader_rejects",
    "delimited",
    "first_line",
    "header_names",
    "is_gzip",
    "json_lines",
    "parquet_columns",
]

log = logging.getLogger(__name__)

REJECTS_TABLE = "_il_reader_errors"
REJECTS_SCAN = "_il_reader_scans"
_LINE_DELIM = "\x1f"  # unit separator: cannot occur unescaped in valid JSON, so a JSON line stays one field
_FIRST_LINE_LIMIT = 1 << 20


@dataclass(frozen=True)
class Dialect:
    """How a delimited file is written. `quote=""` means no quoting (MovieLens `|`/`::`/tab files)."""

    delim: str = ","
    header: bool = True
    quote: str = '"'
    escape: str = '"'
    encoding: str = "utf-8"  # utf-8, latin-1 or utf-16 (DuckDB's names)
    max_line_size: int = 2_000_000  # bytes; longer lines are quarantined, not read


def normalise_encoding(name: str) -> str:
    """DuckDB's spelling of an encoding name (utf-8, latin-1, utf-16)."""
    key = name.lower().replace("_", "-")
    return {"utf8": "utf-8", "latin1": "latin-1", "iso-8859-1": "latin-1"}.get(key, key)


def is_gzip(path: Path) -> bool:
    """True when the file starts with the gzip magic bytes (whatever its name)."""
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def first_line(path: Path, encoding: str = "utf-8") -> str:
    """The file's first line (gzip or not) without its line ending; a clear error when it cannot be read."""
    enc = normalise_encoding(encoding)
    try:
        opener = gzip.open if is_gzip(path) else open
        with opener(path, "rb") as f:
            if enc == "utf-16":  # two bytes per character: split lines after decoding, not before
                text = io.TextIOWrapper(f, encoding="utf-16", newline="").readline(_FIRST_LINE_LIMIT)
            else:
                raw = f.readline(_FIRST_LINE_LIMIT)
                text = None
    except (OSError, EOFError, zlib.error) as exc:
        raise UserInputError(f"{path.name} looks compressed but cannot be decompressed (a truncated or damaged gzip file?).") from exc
    except UnicodeError as exc:
        raise UserInputError(f"{path.name} is not valid {enc} text.") from exc
    if text is None:
        if not raw.strip():
            raise UserInputError(f"{path.name} has an empty first line; expected a header or a first row.")
        try:
            text = raw.decode(enc.replace("-", "_"))
        except UnicodeDecodeError as exc:
            hint = "; if it is Latin-1, set {encoding} to latin-1" if enc == "utf-8" else ""
            raise SettingError("{name} is not valid {enc} text" + hint + ".", "encoding", name=path.name, enc=enc) from exc
    if not text.strip():
        raise UserInputError(f"{path.name} has an empty first line; expected a header or a first row.")
    return text.rstrip("\r\n").lstrip("\ufeff")


def header_names(path: Path, dialect: Dialect) -> list[str]:
    """Column names from the header line, split the way the reader will split it."""
    line = first_line(path, dialect.encoding)
    if dialect.quote and line.count(dialect.quote) % 2:
        raise UserInputError(
            f"The header line of {path.name} has an unbalanced quote (a stray quote, or a line break inside a quoted "
            "column name); fix that column name."
        )
    if dialect.quote:
        try:
            row = next(csv.reader(io.StringIO(line), delimiter=dialect.delim, quotechar=dialect.quote), [])
        except csv.Error as exc:
            raise UserInputError(f"The header line of {path.name} cannot be split into column names ({exc}).") from exc
    else:
        row = line.split(dialect.delim)
    return [c.strip() for c in row]


def delimited(path: Path, n_columns: int, dialect: Dialect, quarantine: bool = True) -> tuple[str, list]:
    """A `read_csv(…)` table function over `path` with text columns c0..c{n-1}, and its parameters.

    With `quarantine`, lines that cannot be split into `n_columns` fields are kept aside (see
    `collect_reader_rejects`); without it they are skipped silently (for samples read before the run).
    """
    guard.scan_text(path, dialect.max_line_size)  # refuses a decompression bomb before DuckDB reads a byte
    columns = {f"c{i}": "VARCHAR" for i in range(n_columns)}
    store = (
        f", store_rejects = true, rejects_table = '{REJECTS_TABLE}', rejects_scan = '{REJECTS_SCAN}'"
        if quarantine
        else ""
    )
    sql = (
        "read_csv(?, columns = ?, delim = ?, quote = ?, escape = ?, header = ?, encoding = ?, max_line_size = ?, "
        f"auto_detect = false, ignore_errors = true, compression = ?{store})"
    )
    params = [
        str(path),
        columns,
        dialect.delim,
        dialect.quote,
        dialect.escape,
        dialect.header,
        normalise_encoding(dialect.encoding),
        dialect.max_line_size,
        "gzip" if is_gzip(path) else "none",
    ]
    return sql, params


JSON_MAX_LINE = 16_000_000  # bytes; a JSON line longer than this is quarantined


def json_lines(path: Path, max_line_size: int = JSON_MAX_LINE, quarantine: bool = True) -> tuple[str, list]:
    """A `read_csv(…)` yielding one text column `c0` per line of a JSON lines file (gzip or not)."""
    return delimited(
        path, 1, Dialect(delim=_LINE_DELIM, header=False, quote="", escape="", max_line_size=max_line_size), quarantine
    )


def parquet_columns(con: duckdb.DuckDBPyConnection, path: Path) -> dict[str, str]:
    """Column name -> DuckDB type of a Parquet file (one whose pages claim to expand enormously is refused)."""
    guard.check_parquet(path)
    rows = con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()
    return {str(r[0]): str(r[1]) for r in rows}


@dataclass(frozen=True)
class ReaderCounts:
    """Lines each file's reader could not read (by file path)."""

    per_file: dict[str, int]

    def get(self, path: Path | str) -> int:
        return self.per_file.get(str(path), 0)

    @property
    def total(self) -> int:
        return sum(self.per_file.values())


def _table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    rows = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND temporary", [name]).fetchall()
    return bool(rows[0][0])


def collect_reader_rejects(
    con: duckdb.DuckDBPyConnection,
    run_id: int,
    expect: dict[str, str],
    line_offset: int = 0,
    scans: dict[str, guard.FileScan] | None = None,
) -> ReaderCounts:
    """Copy the reader's unreadable lines into `rejects` (one row per line) and count them per file.

    `expect` maps a file path to what its lines should look like, for the reason text; `line_offset` is added
    to every line number (a chunk of a longer file numbers its lines as in that file). A file that is not
    in the declared encoding is refused as a whole (one sentence), since every later line is suspect too.
    `scans` (`core.ingest.guard`) add the over-long lines DuckDB skipped without a record (longer than its buffer).
    """
    if not _table_exists(con, REJECTS_TABLE):
        return _add_long_lines(con, run_id, {}, line_offset, scans or {})
    bad = con.execute(
        f"""SELECT s.file_path, min(e.line) FROM {REJECTS_TABLE} e JOIN {REJECTS_SCAN} s USING (scan_id, file_id)
            WHERE e.error_type = 'INVALID ENCODING' GROUP BY 1 ORDER BY 1 LIMIT 1"""
    ).fetchall()
    if bad:
        path, line = Path(bad[0][0]), bad[0][1]
        raise SettingError(
            "{name} is not valid UTF-8 text (line {line}); if it is Latin-1, set {encoding} to latin-1.", "encoding",
            name=path.name, line=line + line_offset,
        )
    counts = con.execute(
        f"""SELECT s.file_path, count(DISTINCT e.line) FROM {REJECTS_TABLE} e
            JOIN {REJECTS_SCAN} s USING (scan_id, file_id) GROUP BY 1 ORDER BY 1"""
    ).fetchall()
    for path, _n in counts:
        layout = expect.get(str(path), "the documented layout")
        con.execute(
            f"""INSERT INTO rejects
                SELECT ?, e.line + ?,
                       ? || ' line ' || (e.line + ?) || ': unreadable line, ' ||
                       CASE WHEN bool_or(e.error_type = 'LINE SIZE OVER MAXIMUM') THEN 'longer than the reader''s limit'
                            WHEN bool_or(e.error_type IN ('MISSING COLUMNS', 'TOO MANY COLUMNS'))
                                THEN 'wrong number of fields (expected ' || ? || ')'
                            ELSE lower(string_agg(DISTINCT e.error_type::VARCHAR, ', ')) END,
                       left(any_value(e.csv_line), 2000)
                FROM {REJECTS_TABLE} e JOIN {REJECTS_SCAN} s USING (scan_id, file_id)
                WHERE s.file_path = ? GROUP BY e.line ORDER BY e.line""",
            [run_id, line_offset, Path(path).name, line_offset, layout, str(path)],
        )
    return _add_long_lines(con, run_id, {str(p): int(n) for p, n in counts}, line_offset, scans or {})


def _add_long_lines(
    con: duckdb.DuckDBPyConnection, run_id: int, counts: dict[str, int], line_offset: int, scans: dict[str, guard.FileScan]
) -> ReaderCounts:
    """Rejects for the over-long lines of `scans` that the reader did not report itself."""
    have = _table_exists(con, REJECTS_TABLE)
    for path, scan in scans.items():
        if not scan.long_lines:
            continue
        reported = set()
        if have:
            rows = con.execute(
                f"""SELECT DISTINCT e.line FROM {REJECTS_TABLE} e JOIN {REJECTS_SCAN} s USING (scan_id, file_id)
                    WHERE s.file_path = ?""",
                [path],
            ).fetchall()
            reported = {int(r[0]) for r in rows}
        missing = [(n, head) for n, head in scan.long_lines if n not in reported]
        for n, head in missing:
            number = n + line_offset
            con.execute(
                "INSERT INTO rejects VALUES (?, ?, ?, ?)",
                [run_id, number, f"{Path(path).name} line {number}: unreadable line, longer than the reader's limit", head],
            )
        if missing:
            log.info("%s: %d over-long line(s) the reader skipped without a record", path, len(missing))
            counts[path] = counts.get(path, 0) + len(missing)
    return ReaderCounts(counts)


def first_reader_error(con: duckdb.DuckDBPyConnection, path: Path | str) -> tuple[int, str] | None:
    """The first unreadable line of `path` (line number, DuckDB's message), or None."""
    if not _table_exists(con, REJECTS_TABLE):
        return None
    rows = con.execute(
        f"""SELECT e.line, e.error_message FROM {REJECTS_TABLE} e JOIN {REJECTS_SCAN} s USING (scan_id, file_id)
            WHERE s.file_path = ? ORDER BY e.line LIMIT 1""",
        [str(path)],
    ).fetchall()
    return (int(rows[0][0]), str(rows[0][1]).splitlines()[0]) if rows else None


def drop_reader_tables(con: duckdb.DuckDBPyConnection) -> None:
    for name in (REJECTS_TABLE, REJECTS_SCAN):
        con.execute(f"DROP TABLE IF EXISTS {name}")


def require_columns(names: Sequence[str], required: dict[str, str], file_label: str) -> dict[str, int]:
    """Positions of the required columns in a header; one clear sentence naming what is missing.

    `required` maps a role (e.g. "user") to the column name expected for it.
    """
    pos = {n: i for i, n in enumerate(names)}
    twice = sorted({col for col in required.values() if names.count(col) > 1})
    if twice:
        raise UserInputError(
            f"{file_label} has the column(s) {', '.join(map(repr, twice))} more than once, so it is unclear which to "
            "read; rename the copies."
        )
    missing = [f"{col!r} ({role})" for role, col in required.items() if col not in pos]
    if missing:
        shown = ", ".join(repr(n) for n in names[:12]) + (", …" if len(names) > 12 else "")
        hint = " (wrong delimiter?)" if len(names) == 1 else ""
        raise UserInputError(
            f"{file_label} is missing the required column(s) {', '.join(missing)}; its columns are {shown}{hint}."
        )
    return {role: pos[col] for role, col in required.items()}
