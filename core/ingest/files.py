"""File-level helpers shared by every loader: existence checks and turning DuckDB errors into one sentence."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

import duckdb

from core.errors import SettingError, UserInputError

__all__ = ["require_file", "translate_error", "sql_literal_path"]


def require_file(path: str | os.PathLike, what: str = "file") -> Path:
    """The path as a Path, or a clear UserInputError when it is missing, a folder or empty."""
    p = Path(path)
    if not p.exists():
        raise UserInputError(f"The {what} {p} does not exist.")
    if p.is_dir():
        raise UserInputError(f"The {what} {p} is a folder; expected a file.")
    if p.stat().st_size == 0:
        raise UserInputError(f"The {what} {p} is empty; expected at least one row.")
    return p


def sql_literal_path(path: str | os.PathLike) -> str:
    """A path as a quoted SQL string literal (table functions take their file argument as a constant)."""
    return "'" + str(path).replace("'", "''") + "'"


_PATTERNS: list[tuple[str, str]] = [
    (r"Invalid unicode|invalid UTF-8|not valid UTF-8|Invalid Input Error: .*unicode",
     "{src} is not valid UTF-8; if it is Latin-1 text, set {encoding} to latin-1."),
    (r"gzip|Input is not a GZIP stream|inflate|zlib|Unexpected EOF in compressed",
     "{src} looks compressed but cannot be decompressed (a truncated or damaged gzip file?)."),
    (r"maximum_line_size|Maximum line size", "{src} has a line longer than the reader's limit; is it the right format?"),
    (r"No files found|No such file|Cannot open file", "{src} could not be opened; check the path."),
    (r"Referenced column|not found in FROM clause|Binder Error: .*column",
     "{src} is missing a required column: {detail}"),
    (r"Could not convert|Conversion Error|could not parse", "{src} has values of an unexpected type: {detail}"),
    (r"state machine reached an invalid state",
     "{src} has a line ending or quote the reader cannot follow (a lone carriage return, or an unclosed quote?); "
     "fix its line endings or quoting and try again."),
    (r"CSV Error|sniff|Sniffing|delimiter|did not find any columns",
     "{src} could not be read as the expected delimited text: {detail}"),
    (r"Malformed JSON|JSON|json", "{src} is not valid JSON lines: {detail}"),
    (r"Parquet|parquet|magic bytes", "{src} is not a readable Parquet file: {detail}"),
]


def translate_error(exc: duckdb.Error, source: str, files: Iterable[str] = ()) -> UserInputError:
    """One clear sentence for a DuckDB error met while reading `source` (never a traceback).

    When the error names one of `files` (the paths the run read), that file's name is used instead of `source`.
    """
    text = str(exc)
    source = next((Path(f).name for f in files if f and f in text), source)
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    detail = re.sub(r"\s+", " ", first)[:300]
    for pattern, template in _PATTERNS:
        if re.search(pattern, text, flags=re.IGNORECASE):
            if "{encoding}" in template:  # the remedy is a setting: an app names it its own way (SettingError)
                return SettingError(template, "encoding", src=source, detail=detail)
            return UserInputError(template.format(src=source, detail=detail))
    return UserInputError(f"{source} could not be ingested: {detail}")
