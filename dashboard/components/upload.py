"""Uploaded files: saved to a private temporary folder for this session, previewed as text, their columns listed
for a generic column mapping. Nothing here parses events; `core.ingest` does that when the analyst ingests."""

from __future__ import annotations

import csv
import gzip
import json
import re
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from core.errors import UserInputError

__all__ = [
    "ALLOWED_TYPES", "safe_name", "check_upload", "save_uploads", "discard", "preview_lines", "preview_table",
    "column_names",
]

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_TEXT_LINES = 20
# What a behaviour log can be (FORMATS): delimited text, JSON lines, Parquet, MovieLens/RecBole names, gzip of any.
ALLOWED_TYPES = ("csv", "tsv", "tab", "txt", "dat", "data", "item", "user", "inter", "json", "jsonl", "ndjson",
                 "parquet", "pq", "gz")


def safe_name(name: str) -> str:
    """A file name without any folder part or unusual characters (an upload's name is user input)."""
    base = _SAFE.sub("_", Path(name).name).strip("._") or "upload"
    return base[:120]


def check_upload(name: str, size: int, limit_mb: int) -> None:
    """Refuse (one sentence) an upload that is not a log file type or is over the size limit. Streamlit checks both
    in the browser and the type on the server too; this holds even when a client skips them."""
    suffix = Path(name).suffix.lower().lstrip(".")
    if "\0" in name or suffix not in ALLOWED_TYPES:
        raise UserInputError(
            f"{safe_name(name)} is not a log file this page reads; upload {', '.join('.' + t for t in ALLOWED_TYPES)} files."
        )
    if size > limit_mb * 1024 * 1024:
        raise UserInputError(f"{safe_name(name)} is larger than the upload limit of {limit_mb} MB; ingest it from a terminal.")


def save_uploads(files: list, limit_mb: int) -> Path:
    """Check and write uploaded files into a new private temporary folder; returns the folder (nothing is kept when
    a file is refused)."""
    for f in files:
        check_upload(f.name, int(f.size), limit_mb)
    folder = Path(tempfile.mkdtemp(prefix="interestlens-upload-"))
    for f in files:
        with open(folder / safe_name(f.name), "wb") as out:
            shutil.copyfileobj(f, out)
    return folder


def discard(folder: Path | None) -> None:
    """Delete an upload folder made by `save_uploads`."""
    if folder is not None and folder.name.startswith("interestlens-upload-"):
        shutil.rmtree(folder, ignore_errors=True)


def _open_text(path: Path):
    with open(path, "rb") as f:
        magic = f.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="utf-8", errors="replace", newline="")
    return open(path, encoding="utf-8", errors="replace", newline="")


def preview_lines(path: Path, n: int = _TEXT_LINES) -> str:
    """The first `n` lines of a text file (gzip or not) as text, each cut at 500 characters."""
    lines = []
    try:
        with _open_text(path) as f:
            for _ in range(n):
                line = f.readline(100_000)
                if not line:
                    break
                lines.append(line.rstrip("\r\n")[:500])
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        return f"(cannot read this file as text: {exc.__class__.__name__})"
    return "\n".join(lines)


def preview_table(path: Path, n: int = _TEXT_LINES) -> pd.DataFrame | None:
    """The first rows of a Parquet file (None for other files or a damaged one)."""
    if path.suffix.lower() != ".parquet":
        return None
    try:
        pf = pq.ParquetFile(path)
        return next(pf.iter_batches(batch_size=n)).to_pandas() if pf.metadata.num_rows else pd.DataFrame()
    except Exception:  # a damaged Parquet file: the text preview says it cannot be read
        return None


def column_names(path: Path) -> list[str]:
    """Column names of a generic file: the Parquet schema, the keys of the first JSON line, or the CSV/TSV
    header (delimiter sniffed from the first line). [] when they cannot be told."""
    suffixes = [s.lower() for s in path.suffixes]
    if ".parquet" in suffixes:
        try:
            return list(pq.read_schema(path).names)
        except Exception:
            return []
    first = preview_lines(path, 1)
    if not first or first.startswith("(cannot read"):
        return []
    if ".json" in suffixes or ".jsonl" in suffixes or first.lstrip().startswith("{"):
        try:
            obj = json.loads(first)
        except json.JSONDecodeError:
            return []
        return [str(k) for k in obj] if isinstance(obj, dict) else []
    try:
        dialect = csv.Sniffer().sniff(first, delimiters=",\t;|")
        return [c.strip() for c in next(csv.reader([first], dialect))]
    except csv.Error:
        return [first.strip()]
