"""One read-only DuckDB connection shared by the app's queries while it is busy, closed as soon as it is idle.

Opening a DuckDB file costs tens of milliseconds (catalog, schema check, cold buffers), and one view of a user runs
half a dozen queries; opening the file for each doubled the time to switch user (bench/dashboard.py). So queries
that arrive close together share one read-only connection, each through its own cursor (thread-safe), and the
connection is closed `IDLE_S` seconds after the last query ends. The file is therefore held only while the app is
answering, as the connection policy asks: a writing process waits at most about that long (its open retries), and
`writing()` closes the connection and holds new queries back while this process itself writes (DuckDB refuses one
process holding a file read-only and read-write at once).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import duckdb

from core.store import connect_read

__all__ = ["IDLE_S", "SharedReader", "READER", "file_stamp"]

log = logging.getLogger(__name__)

IDLE_S = 1.0  # seconds without a query after which the shared connection is closed


def file_stamp(path: Path) -> tuple[int, int, int]:
    """(size, mtime_ns of the file, mtime_ns of its WAL) — changes whenever a writer commits."""
    if not path.exists():
        return (0, 0, 0)
    st_ = path.stat()
    wal = Path(str(path) + ".wal")
    return (st_.st_size, st_.st_mtime_ns, wal.stat().st_mtime_ns if wal.exists() else 0)


class SharedReader:
    """A read-only connection to one database file, opened on demand and closed when idle."""

    def __init__(self, idle_s: float = IDLE_S):
        self.idle_s = idle_s
        self._lock = threading.Condition()
        self._stack: ExitStack | None = None
        self._con: duckdb.DuckDBPyConnection | None = None
        self._key: tuple[str, tuple] | None = None
        self._users = 0
        self._writers = 0
        self._timer: threading.Timer | None = None

    @contextmanager
    def cursor(self, path: str | Path, stamp: tuple) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor on the shared connection to `path` as of `stamp` (the file's size and times; a new stamp
        means a writer committed, so the connection is reopened once nobody uses the old one)."""
        key = (str(path), tuple(stamp))
        with self._lock:
            while self._writers or (self._con is not None and self._key != key and self._users):
                self._lock.wait(timeout=0.05)
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._con is None or self._key != key:
                self._close_locked()
                stack = ExitStack()
                self._con = stack.enter_context(connect_read(key[0]))  # retries while a writer holds the file
                self._stack, self._key = stack, key
            self._users += 1
            cur = self._con.cursor()
        try:
            yield cur
        finally:
            cur.close()
            with self._lock:
                self._users -= 1
                if self._users == 0:
                    self._timer = threading.Timer(self.idle_s, self._close_if_idle)
                    self._timer.daemon = True
                    self._timer.start()
                self._lock.notify_all()

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Close the shared connection and keep it closed while this process writes to a database."""
        with self._lock:
            self._writers += 1
            while self._users:
                self._lock.wait(timeout=0.05)
            self._close_locked()
        try:
            yield
        finally:
            with self._lock:
                self._writers -= 1
                self._lock.notify_all()

    def close(self) -> None:
        """Close the shared connection now (when nobody uses it)."""
        with self._lock:
            if not self._users:
                self._close_locked()

    @property
    def is_open(self) -> bool:
        return self._con is not None

    def _close_if_idle(self) -> None:
        with self._lock:
            if self._users == 0 and self._timer is not None:
                self._timer = None
                self._close_locked()

    def _close_locked(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._stack is not None:
            try:
                self._stack.close()
            except duckdb.Error:  # closing must never break a query; the next open starts clean
                log.exception("closing the shared read connection failed")
        self._stack, self._con, self._key = None, None, None


READER = SharedReader()  # the app's one shared reader (module state lives as long as the server process)
