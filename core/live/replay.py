"""Replay a database's log into another, in canonical time order, as if the events were arriving now.

For demos and tests of live mode: `speed` seconds of log time pass per second of wall time (`inf`, or any very
large factor, replays as fast as the writes go). Every batch is one ingest run through the ordinary pipeline
(`core.ingest.ingest_frames`: the same checks and dedupe), one short write transaction that opens the target,
writes and closes it, so a reader of the target sees whole batches only. Users and items travel with the
first batch that mentions them (users and items without any event, with the first batch). Ties keep the
source's order: events are read `ORDER BY ts, run_id, seq` and numbered in that order within each batch, and
later batches get later run ids, so the target's canonical order is the source's.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import duckdb
import pandas as pd

from core.errors import SettingError, UserInputError
from core.ingest import ingest_frames
from core.store import connect_read, default_db_path
from core.store.queries import EVENT_ORDER

__all__ = ["ReplayBatch", "ReplaySummary", "Replayer"]

log = logging.getLogger(__name__)

_RESERVED = {"user_id", "item_id", "ts", "event_type", "value", "title", "categories"}


@dataclass(frozen=True)
class ReplayBatch:
    """One batch written to the target."""

    index: int  # 1-based
    rows: int  # events read from the source for this batch
    accepted: int
    duplicates: int
    rejected: int
    run_id: int
    log_time: dt.datetime  # time of the batch's last event (log time, naive UTC)
    seconds: float  # how long the write took
    elapsed: float  # wall seconds since the replay started

    def as_dict(self) -> dict:
        return {"event": "batch", "batch": self.index, "rows": self.rows, "accepted": self.accepted,
                "duplicates": self.duplicates, "rejected": self.rejected, "run_id": self.run_id,
                "log_time": self.log_time, "seconds": round(self.seconds, 3), "elapsed": round(self.elapsed, 3)}  # fmt: skip


@dataclass
class ReplaySummary:
    """What has been replayed so far (kept up to date while the replay runs)."""

    source_events: int = 0
    events: int = 0  # events read and written so far
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    batches: int = 0
    first_log_time: dt.datetime | None = None
    last_log_time: dt.datetime | None = None
    seconds: float = 0.0
    done: bool = False
    batch_sizes: list[int] = field(default_factory=list)  # accepted events per batch, in order

    def as_dict(self) -> dict:
        return {"event": "done" if self.done else "stopped", "source_events": self.source_events,
                "events": self.events, "accepted": self.accepted, "duplicates": self.duplicates,
                "rejected": self.rejected, "batches": self.batches, "first_log_time": self.first_log_time,
                "last_log_time": self.last_log_time, "seconds": round(self.seconds, 3)}  # fmt: skip


class Replayer:
    """Replays `source`'s events into `db`.

    Parameters
    ----------
    db, source : target and source database files (they must differ).
    speed : seconds of log time per wall second; `math.inf` (or any factor large enough) = as fast as possible.
    interval_s : at most one batch per interval while the log is due (fewer, larger batches than one per event).
    max_batch : at most this many events per batch.
    write_timeout_s : how long a batch waits for a target held by another process, then fails (`StoreError`).
    """

    def __init__(
        self,
        db: str | os.PathLike | None,
        source: str | os.PathLike,
        *,
        speed: float = math.inf,
        interval_s: float = 1.0,
        max_batch: int = 10_000,
        write_timeout_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.db = default_db_path(db)
        self.source = default_db_path(source)
        if not speed > 0:
            raise SettingError("{speed} must be a positive factor (seconds of log per second), not {value}.", "speed",
                               value=speed)
        if not self.source.exists():
            raise UserInputError(f"The source database {self.source} does not exist.")
        if self.db.exists() and self.db.resolve() == self.source.resolve():
            raise SettingError("{source} and {db} are the same file; replay into another database.", ("source", "db"))
        self.speed, self.interval_s, self.max_batch = float(speed), float(interval_s), max(1, int(max_batch))
        self.write_timeout_s = float(write_timeout_s)
        self.clock, self.sleep = clock, sleep
        self.summary = ReplaySummary()
        self._on_batch: Callable[[ReplayBatch], None] | None = None
        self._orphans: tuple[list, list] = ([], [])
        self._sent_users: set[str] = set()
        self._sent_items: set[str] = set()

    def run(self, on_batch: Callable[[ReplayBatch], None] | None = None) -> ReplaySummary:
        """Replay until the log is exhausted; returns the summary (`summary.done` is then True).

        An interrupt (Ctrl-C) during a batch rolls that batch back and is raised as KeyboardInterrupt;
        `self.summary` still describes the batches that landed.
        """
        self._on_batch = on_batch
        start = self.clock()
        with connect_read(self.source) as con:
            con.execute("SET enable_progress_bar = false")  # DuckDB's bar would write into stdout (--json)
            keys = _context_keys(con)
            self.summary.source_events = int(con.execute("SELECT count(*) FROM events").fetchall()[0][0])
            if self.summary.source_events == 0:
                raise UserInputError(f"{self.source} has no events to replay.")
            side = con.cursor()  # the event stream owns `con` until it is read to the end
            ctx = "".join(f", context[?] AS ctx_{i}" for i in range(len(keys)))
            order = ", ".join(c.strip() for c in EVENT_ORDER.split(","))
            stream = con.sql(
                f"SELECT user_id, item_id, ts, event_type, value{ctx} FROM events ORDER BY {order}", params=keys
            ).to_arrow_reader(self.max_batch)
            pending = _Pending(stream, keys)
            first_ts = pending.peek_ts()
            self.summary.first_log_time = first_ts
            self._orphans = _without_events(side)
            while not pending.exhausted():
                due = _due(first_ts, (self.clock() - start) * self.speed)
                batch = pending.take(due, self.max_batch)
                if batch is not None:
                    self._write(side, batch, keys, start)
                    continue  # more may be due at once (batches of at most max_batch)
                wait = (pending.peek_ts() - first_ts).total_seconds() / self.speed - (self.clock() - start)
                self.sleep(max(self.interval_s, wait) if math.isfinite(wait) else self.interval_s)
            side.close()
        self.summary.seconds = self.clock() - start
        self.summary.done = True
        return self.summary

    def _write(self, side: duckdb.DuckDBPyConnection, events: pd.DataFrame, keys: list[str], start: float) -> None:
        users, items = self._new_users(side, events), self._new_items(side, events)
        t0 = self.clock()
        result = ingest_frames(self.db, events, users, items, context=keys, source=f"replay of {self.source}",
                               preset="replay", write_timeout_s=self.write_timeout_s)  # fmt: skip
        s = self.summary
        s.batches += 1
        s.events += len(events)
        s.accepted += result.accepted
        s.duplicates += result.duplicates
        s.rejected += result.rejected
        s.batch_sizes.append(result.accepted)
        s.last_log_time = events["ts"].iloc[-1].to_pydatetime()
        s.seconds = self.clock() - start
        if users is not None:
            self._sent_users.update(users["user_id"])
        if items is not None:
            self._sent_items.update(items["item_id"])
        if self._on_batch is not None:
            self._on_batch(ReplayBatch(s.batches, len(events), result.accepted, result.duplicates, result.rejected,
                                       result.run_id, s.last_log_time, self.clock() - t0, s.seconds))  # fmt: skip

    def _new_users(self, side, events: pd.DataFrame) -> pd.DataFrame | None:
        ids = [u for u in pd.unique(events["user_id"]) if u not in self._sent_users]
        rows = side.execute(
            "SELECT user_id, attributes FROM users WHERE user_id IN (SELECT unnest(?::VARCHAR[]))", [ids]
        ).fetchall()
        if self.summary.batches == 0:
            rows += self._orphans[0]
        if not rows:
            return None
        return pd.DataFrame([{**_attrs(a, {"user_id"}), "user_id": u} for u, a in rows])

    def _new_items(self, side, events: pd.DataFrame) -> pd.DataFrame | None:
        ids = [i for i in pd.unique(events["item_id"]) if i not in self._sent_items]
        rows = side.execute(
            """SELECT item_id, title, categories, attributes FROM items
               WHERE item_id IN (SELECT unnest(?::VARCHAR[]))""",
            [ids],
        ).fetchall()
        if self.summary.batches == 0:
            rows += self._orphans[1]
        if not rows:
            return None
        return pd.DataFrame(
            [{**_attrs(a, _RESERVED), "item_id": i, "title": t, "categories": list(c or [])} for i, t, c, a in rows]
        )


def _attrs(m, reserved: set[str]) -> dict:
    """A MAP's entries as columns, leaving out keys that would collide with the frame's own columns."""
    return {str(k): v for k, v in (m or {}).items() if str(k) not in reserved}


def _context_keys(con: duckdb.DuckDBPyConnection) -> list[str]:
    row = con.execute("SELECT value FROM meta WHERE key = 'context_keys'").fetchall()
    keys = json.loads(row[0][0]) if row and row[0][0] else []
    found = [r[0] for r in con.execute("SELECT DISTINCT unnest(map_keys(context)) FROM events ORDER BY 1").fetchall()]
    keys = [*keys, *(k for k in found if k not in keys)]
    clash = [k for k in keys if k in _RESERVED]
    if clash:
        raise UserInputError(f"Context keys {', '.join(clash)} collide with event fields; they cannot be replayed.")
    return [str(k) for k in keys]


def _without_events(con: duckdb.DuckDBPyConnection) -> tuple[list, list]:
    users = con.execute(
        "SELECT user_id, attributes FROM users u WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.user_id = u.user_id)"
    ).fetchall()
    items = con.execute(
        """SELECT item_id, title, categories, attributes FROM items i
           WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.item_id = i.item_id)"""
    ).fetchall()
    return users, items


def _due(first: dt.datetime, log_seconds: float) -> dt.datetime:
    """The log time due after `log_seconds` of log time have been played (the far future when infinite)."""
    if not math.isfinite(log_seconds) or log_seconds > 1e11:
        return dt.datetime.max
    return first + dt.timedelta(seconds=log_seconds)


class _Pending:
    """The source's events in order, read from an Arrow stream a batch at a time."""

    def __init__(self, stream, keys: list[str]) -> None:
        self.stream, self.keys = stream, keys
        self.buf = pd.DataFrame()
        self.done = False
        self._fill()

    def _fill(self) -> None:
        while len(self.buf) == 0 and not self.done:
            try:
                chunk = self.stream.read_next_batch()
            except StopIteration:
                self.done = True
                return
            df = chunk.to_pandas().rename(columns={f"ctx_{i}": k for i, k in enumerate(self.keys)})
            df["ts"] = pd.to_datetime(df["ts"])
            self.buf = df

    def exhausted(self) -> bool:
        self._fill()
        return len(self.buf) == 0

    def peek_ts(self) -> dt.datetime:
        self._fill()
        return self.buf["ts"].iloc[0].to_pydatetime()

    def take(self, due: dt.datetime, limit: int) -> pd.DataFrame | None:
        """Up to `limit` events with ts <= due, in order (None when none is due)."""
        parts, n = [], 0
        while n < limit and not self.exhausted():
            ts = self.buf["ts"]
            k = min(int((ts <= pd.Timestamp(due) if due != dt.datetime.max else ts.notna()).sum()), limit - n)
            if k == 0:
                break
            parts.append(self.buf.iloc[:k])
            self.buf = self.buf.iloc[k:]
            n += k
        return pd.concat(parts, ignore_index=True) if parts else None
