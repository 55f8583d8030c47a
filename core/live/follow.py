"""Follow a source that keeps coming: a folder where new files land, or one file that keeps growing.

Each batch goes through the ordinary ingest pipeline (`core.ingest.ingest`, any preset) as one short write
transaction that opens the database, writes and closes it, so readers get in between batches and never see
half of one. The follower's position in each file (bytes and lines already ingested) is a row of `meta`
written **in the same transaction** as the batch's events: after a crash or Ctrl-C the position and the
events agree, so a restarted follower neither loses nor repeats a line (and exact duplicates would be dropped
anyway).

Text files are read in chunks of complete lines: only bytes up to the last newline are taken, the rest waits
for the writer to finish the line. In a watched folder, a file whose last line has no newline is taken whole
once it has not changed for `settle_s` seconds. Compressed and Parquet files cannot be read in parts; they are
ingested whole once settled, and again (duplicates dropped) if they change. A chunk carries the file's header
line when the format has one, and its rows and lines are numbered as in the whole file.

A half-written last line is never guessed at: it is taken only once this follower has seen the file unchanged
for `settle_s` seconds (or on a final poll, `poll(final=True)`, as `follow --once` does). Tools that drop
files should still write them elsewhere and rename them into the folder, or end them with a newline.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from core.errors import UserInputError
from core.ingest import ColumnMapping, IngestResult, ingest
from core.ingest.presets import get_preset
from core.ingest.stage import Offset
from core.store import connect_read, connect_write, default_db_path

__all__ = ["FileState", "FollowBatch", "Follower", "STATE_PREFIX"]

log = logging.getLogger(__name__)

STATE_PREFIX = "follow:"  # meta key of a followed file: follow:<absolute path>
_SKIPPED = (".tmp", ".part", ".partial", ".crdownload", ".swp", "~")  # files still being written by other tools
_HEAD = 256  # bytes of a file's start remembered to notice that it was replaced


@dataclass(frozen=True)
class FileState:
    """How far a file has been ingested; stored as JSON in `meta` under `follow:<path>`."""

    offset: int = 0  # bytes already ingested
    lines: int = 0  # lines already ingested (a header line included)
    size: int = 0  # size and modification time when last ingested (whole-file formats)
    mtime_ns: int = 0
    head: str = ""  # sha256 of the file's first `head_len` bytes: a different start means a new file
    head_len: int = 0

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> FileState:
        data = json.loads(text)
        return cls(**{k: data[k] for k in data if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class FollowBatch:
    """One batch the follower ingested, or tried to (then `error` says why in one sentence)."""

    path: str
    first_byte: int
    last_byte: int  # exclusive
    lines: int  # lines of the file this batch covered
    result: IngestResult | None
    error: str | None
    seconds: float

    def as_dict(self) -> dict:
        out = {"event": "batch" if self.error is None else "error", "file": self.path,
               "bytes": [self.first_byte, self.last_byte], "lines": self.lines, "seconds": round(self.seconds, 3)}  # fmt: skip
        if self.result is not None:
            out.update({k: v for k, v in self.result.as_dict().items() if k != "assumptions"})
        if self.error is not None:
            out["message"] = self.error
        return out


class Follower:
    """Ingest what is new in `source` (a folder or a growing file) into `db`, batch by batch.

    Parameters
    ----------
    db : the database file; created on the first batch if absent.
    preset : any ingest preset (`core.ingest.preset_names()`); `mapping` and `meta` as for `ingest`.
    source : a folder (every new file matching `pattern` is ingested, oldest first) or one file (its new
        complete lines are ingested as it grows).
    settle_s : a folder's file is taken whole (a last line without newline, or a compressed/Parquet file) only
        once this follower has seen it unchanged for this long.
    write_timeout_s : how long a batch waits for the database while another process holds it, then fails
        with one sentence (`StoreError`); a writer never waits forever.
    chunk_bytes : at most this much of a file per batch (a longer line is still taken whole).
    """

    def __init__(
        self,
        db: str | os.PathLike | None,
        preset: str,
        source: str | os.PathLike,
        *,
        mapping: ColumnMapping | None = None,
        meta: str | os.PathLike | None = None,
        pattern: str = "*",
        settle_s: float = 2.0,
        write_timeout_s: float = 30.0,
        chunk_bytes: int = 64 << 20,
    ) -> None:
        self.db = default_db_path(db)
        self.preset = get_preset(preset)
        self.source = Path(source).expanduser().resolve()
        if not self.source.exists():
            raise UserInputError(f"The source {self.source} does not exist; expected a folder or a file to follow.")
        self.folder = self.source.is_dir()
        self.mapping, self.meta, self.pattern = mapping, meta, pattern
        self.settle_s, self.write_timeout_s, self.chunk_bytes = settle_s, write_timeout_s, int(chunk_bytes)
        self.states = self._load_states()
        self._failed: dict[str, tuple[int, int]] = {}  # path -> (size, mtime_ns) that failed; retried once changed
        self._seen: dict[str, tuple[tuple[int, int], float]] = {}  # path -> ((size, mtime_ns), first seen so)

    # ---- what is there ----------------------------------------------------------------------------------------

    def _load_states(self) -> dict[str, FileState]:
        if not self.db.exists():
            return {}
        with connect_read(self.db, timeout_s=self.write_timeout_s) as con:
            rows = con.execute("SELECT key, value FROM meta WHERE starts_with(key, ?)", [STATE_PREFIX]).fetchall()
        return {k.removeprefix(STATE_PREFIX): FileState.from_json(v) for k, v in rows}

    def files(self) -> list[Path]:
        """The files followed now: the source file, or the folder's matching files, oldest first."""
        if not self.folder:
            return [self.source]
        found = [
            p for p in self.source.glob(self.pattern)
            if p.is_file() and not p.name.startswith(".") and not p.name.endswith(_SKIPPED)
        ]  # fmt: skip
        return sorted(found, key=lambda p: (p.stat().st_mtime_ns, p.name))

    # ---- one poll ---------------------------------------------------------------------------------------------

    def poll(self, final: bool = False) -> list[FollowBatch]:
        """Ingest everything new now, one batch per chunk; returns the batches (failed ones too).

        With `final`, a folder's files count as complete (their unterminated last lines are taken).
        """
        out: list[FollowBatch] = []
        for path in self.files():
            for batch in self._batches(path, final):
                out.append(batch)
                if batch.error is not None:
                    break
        return out

    def run(
        self,
        interval_s: float = 1.0,
        on_batch: Callable[[FollowBatch], None] | None = None,
        stop: Callable[[], bool] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Poll every `interval_s` seconds until `stop()` is true or the process is interrupted (Ctrl-C).

        An interrupt during a batch rolls that batch back (nothing of it lands, its position is not
        advanced) and is raised as KeyboardInterrupt.
        """
        while stop is None or not stop():
            for batch in self.poll():
                if on_batch is not None:
                    on_batch(batch)
            sleep(interval_s)

    def _batches(self, path: Path, final: bool) -> Iterator[FollowBatch]:
        while True:
            batch = self._next(path, final)
            if batch is None:
                return
            yield batch

    def _next(self, path: Path, final: bool) -> FollowBatch | None:
        key = str(path)
        st = path.stat()
        signature = (st.st_size, st.st_mtime_ns)
        if self._failed.get(key) == signature:
            return None
        state = self._current_state(path, st.st_size)
        settled = final or self._settled(key, signature)
        if _is_binary(path):
            if (state.size, state.mtime_ns) == signature or not settled:
                return None
            new = FileState(st.st_size, 0, st.st_size, st.st_mtime_ns)
            return self._ingest(path, path, 0, st.st_size, 0, new, Offset())
        if st.st_size <= state.offset:
            return None
        region, tail = _complete_lines(path, state.offset, st.st_size, self.chunk_bytes, self.folder and settled)
        if not region:
            return None
        end = state.offset + len(region)
        lines = region.count(b"\n") + (1 if tail else 0)
        header = self.preset.header(path)
        new = FileState(end, state.lines + lines, st.st_size, st.st_mtime_ns, *_head(path, end))
        data = region
        if state.offset == 0 and header:  # the file's own header line is not data
            data = region.split(b"\n", 1)[1] if b"\n" in region else b""
        if not data.strip():  # only blank lines, or only the header so far: move on without a run
            self._save(key, new)
            return None
        if state.offset == 0:
            chunk, offset = region, Offset()
        else:
            skip = 1 if header else 0  # the copied header is the chunk's line 1
            chunk = (_first_line(path) if header else b"") + region
            offset = Offset(rows=state.lines - skip, lines=state.lines - skip)
        return self._ingest_chunk(path, chunk, state.offset, end, lines, new, offset)

    def _settled(self, key: str, signature: tuple[int, int]) -> bool:
        """True once this follower has seen the file with this size and time for `settle_s` seconds."""
        now = time.monotonic()
        seen = self._seen.get(key)
        if seen is None or seen[0] != signature:
            self._seen[key] = (signature, now)
            return self.settle_s <= 0
        return now - seen[1] >= self.settle_s

    def _current_state(self, path: Path, size: int) -> FileState:
        """The stored position, or a fresh one when the file shrank or now starts differently (replaced)."""
        state = self.states.get(str(path), FileState())
        if state.offset == 0:
            return state
        replaced = size < state.offset or (state.head_len and _head(path, state.head_len)[0] != state.head)
        if replaced:
            log.warning("%s was truncated or replaced: reading it from the start (stored events are not repeated)", path)
            return FileState()
        return state

    def _ingest_chunk(self, path, chunk: bytes, first: int, end: int, lines: int, new: FileState, offset: Offset):
        with tempfile.TemporaryDirectory(prefix="interestlens-follow-") as tmp:
            part = Path(tmp) / path.name  # same name: presets recognise files by name and extension
            part.write_bytes(chunk)
            return self._ingest(path, part, first, end, lines, new, offset)

    def _ingest(self, path: Path, read: Path, first: int, end: int, lines: int, new: FileState, offset: Offset):
        key = str(path)
        label = f"{path} (bytes {first}-{end})"
        t0 = time.perf_counter()
        try:
            result = ingest(
                self.db, self.preset.name, read, mapping=self.mapping, meta=self.meta,
                state={STATE_PREFIX + key: new.to_json()}, offset=offset, label=label,
                write_timeout_s=self.write_timeout_s,
            )  # fmt: skip
        except UserInputError as exc:  # this file cannot be ingested as it is: say so, retry when it changes
            st = path.stat()
            self._failed[key] = (st.st_size, st.st_mtime_ns)
            log.info("%s: %s", path, exc)
            return FollowBatch(key, first, end, lines, None, str(exc), time.perf_counter() - t0)
        self.states[key] = new
        return FollowBatch(key, first, end, lines, result, None, time.perf_counter() - t0)

    def _save(self, key: str, state: FileState) -> None:
        with connect_write(self.db, timeout_s=self.write_timeout_s) as con:
            con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [STATE_PREFIX + key, state.to_json()])
        self.states[key] = state


def _is_binary(path: Path) -> bool:
    """Compressed or Parquet files: they cannot be read a few lines at a time."""
    with open(path, "rb") as f:
        start = f.read(4)
    return start[:2] == b"\x1f\x8b" or start == b"PAR1"


def _complete_lines(path: Path, start: int, size: int, limit: int, take_tail: bool) -> tuple[bytes, bool]:
    """Bytes from `start` up to the last newline (at most about `limit` of them, a longer line whole).

    With `take_tail`, an unterminated last line up to `size` is included too (the second value says so).
    """
    with open(path, "rb") as f:
        f.seek(start)
        region = f.read(min(size - start, limit))
        cut = region.rfind(b"\n")
        while cut < 0 and start + len(region) < size:  # one line longer than the limit: read on to its end
            more = f.read(min(size - start - len(region), limit))
            if not more:
                break
            at = more.find(b"\n")
            region += more if at < 0 else more[: at + 1]
            cut = region.rfind(b"\n")
    if take_tail and start + len(region) >= size and cut < len(region) - 1:
        return region, True
    return region[: cut + 1], False


def _first_line(path: Path) -> bytes:
    with open(path, "rb") as f:
        line = f.readline()
    return line if line.endswith(b"\n") else line + b"\n"


def _head(path: Path, n: int) -> tuple[str, int]:
    n = min(n, _HEAD)
    with open(path, "rb") as f:
        data = f.read(n)
    return hashlib.sha256(data).hexdigest(), len(data)
