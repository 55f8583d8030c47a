"""Guards on a source file before DuckDB reads it: decompression bombs, lines too long for the reader to report,
and files that change while a run reads them.

One streaming pass per file (cached by path, size, modification time and inode, so the readers of one run share
it) with a fixed-size buffer, so memory stays bounded whatever the file holds:

- a gzip file that decompresses to more than `MAX_EXPANSION` times its size is refused as soon as its output
  passes that bound (CPU and memory are bounded by the compressed size), never fed to the reader;
- lines longer than the reader's limit are found with their line numbers: DuckDB quarantines such lines only while
  they fit its read buffer and skips longer ones without a record, so the run adds those rejects itself;
- `stamp` / `check_unchanged`: the run notes each file's stamp when it starts reading it and checks it before it
  commits, so a file rewritten or appended to mid-run fails the run (nothing lands) instead of landing half.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from core.errors import UserInputError

__all__ = ["MAX_EXPANSION", "FileScan", "scan_text", "stamp", "check_unchanged", "check_parquet", "expansion_error"]

MAX_EXPANSION = 200  # gzip text logs expand 3-20x; zeros or repeated rows reach ~1,000x
_CHUNK = 1 << 20  # bytes read (and decompressed) per step
_HEAD = 2000  # characters of a long line kept for its reject row
_CACHE: dict[tuple, FileScan] = {}


@dataclass(frozen=True)
class FileScan:
    """What one pass over a (decompressed) text file found."""

    lines: int  # physical lines (a last line without a newline counts)
    long_lines: tuple[tuple[int, str], ...]  # (1-based line number, first characters) of lines over the limit
    expanded: int  # bytes of text (after decompression)


def stamp(path: str | os.PathLike) -> tuple[int, int, int]:
    """(size, mtime_ns, inode): changes when a file is rewritten, appended to or replaced."""
    st = os.stat(path)
    return (st.st_size, st.st_mtime_ns, st.st_ino)


def expansion_error(name: str) -> UserInputError:
    return UserInputError(
        f"{name} expands more than {MAX_EXPANSION} times when decompressed, like a decompression bomb, so it was not "
        "read (if it is genuine, decompress it yourself and ingest the result)."
    )


def _damaged(name: str) -> UserInputError:
    return UserInputError(f"{name} looks compressed but cannot be decompressed (a truncated or damaged gzip file?).")


def _gunzip(path: Path, f) -> Iterator[bytes]:
    """Decompressed chunks of a (multi-member) gzip file; stops with one sentence when its output outgrows
    `MAX_EXPANSION` times its size or the file is damaged (like DuckDB's reader, trailing garbage is damage)."""
    budget = MAX_EXPANSION * max(path.stat().st_size, 1) + _CHUNK
    out = 0
    d = zlib.decompressobj(wbits=31)
    buf = b""
    while True:
        if not buf:
            buf = f.read(_CHUNK)
            if not buf:
                piece = d.flush() if not d.eof else b""
                if piece:
                    yield piece
                if not d.eof:
                    raise _damaged(path.name)
                return
        try:
            piece = d.decompress(buf, _CHUNK)
        except zlib.error as exc:
            raise _damaged(path.name) from exc
        buf = d.unconsumed_tail
        out += len(piece)
        if out > budget:
            raise expansion_error(path.name)
        if piece:
            yield piece
        if d.eof:  # a member ended: what follows is another member, zero padding, or damage
            rest = d.unused_data
            while len(rest) < 2 and (more := f.read(_CHUNK)):
                rest += more
            if rest[:2] == b"\x1f\x8b":
                d, buf = zlib.decompressobj(wbits=31), rest
                continue
            while rest:
                if rest.strip(b"\0"):
                    raise _damaged(path.name)
                rest = f.read(_CHUNK)
            return


def _chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        if f.read(2) == b"\x1f\x8b":
            f.seek(0)
            yield from _gunzip(path, f)
            return
        f.seek(0)
        while chunk := f.read(_CHUNK):
            yield chunk


def scan_text(path: str | os.PathLike, max_line: int) -> FileScan:
    """One pass over a text file (gzip or not): line count and the lines longer than `max_line` bytes.

    Raises UserInputError for a decompression bomb or a damaged gzip file. Cached per file version.
    """
    path = Path(path)
    key = (str(path), int(max_line), stamp(path))
    hit = _CACHE.get(key)
    if hit is not None:
        return hit
    newlines = 0  # newlines before the current chunk
    run = 0  # bytes of the line still open at the end of the previous chunk
    head = b""  # its first bytes
    expanded = 0
    long_lines: list[tuple[int, str]] = []
    for chunk in _chunks(path):
        expanded += len(chunk)
        first = chunk.find(b"\n")
        if first < 0:
            run += len(chunk)
            head = (head + chunk[: _HEAD])[:_HEAD]
        else:
            if run + first > max_line:  # a line longer than the limit spans a chunk boundary, so it ends here
                long_lines.append((newlines + 1, (head + chunk[:first])[:_HEAD].decode("utf-8", "replace")))
            n = chunk.count(b"\n")
            newlines += n
            last = chunk.rfind(b"\n")
            run = len(chunk) - last - 1
            head = chunk[last + 1 : last + 1 + _HEAD]
    if run > max_line:
        long_lines.append((newlines + 1, head[:_HEAD].decode("utf-8", "replace")))
    scan = FileScan(lines=newlines + (1 if run else 0), long_lines=tuple(long_lines), expanded=expanded)
    if len(_CACHE) > 256:
        _CACHE.clear()
    _CACHE[key] = scan
    return scan


def check_unchanged(stamps: Mapping[str, tuple[int, int, int]]) -> None:
    """Raise UserInputError when a file's stamp differs from the one noted when the run started reading it."""
    for path, before in stamps.items():
        try:
            now = stamp(path)
        except OSError:
            now = None
        if now != before:
            raise UserInputError(
                f"{Path(path).name} changed while it was being read, so nothing was ingested; "
                "ingest it again once it is complete."
            )


def check_parquet(path: str | os.PathLike) -> None:
    """Refuse a Parquet file whose pages claim to expand more than `MAX_EXPANSION` times its size."""
    import pyarrow.parquet as pq

    path = Path(path)
    try:
        meta = pq.ParquetFile(path).metadata
    except Exception:  # not readable as Parquet: DuckDB's reader says so in its own words
        return
    total = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    if total > MAX_EXPANSION * max(path.stat().st_size, 1) + _CHUNK:
        raise expansion_error(path.name)
