"""The types an ingest run is built from: a loader describes its source as a `Stage` (SQL yielding the stage
columns below, plus optional users / items `SideTable`s) while holding the open `Run`; `core.ingest.run` executes
it through the shared steps of `core.ingest.pipeline`, so every format gets the same checks.

Stage columns of the events SELECT::

    seq BIGINT           position of the row in its source (0-based), or NULL to let the pipeline number the
                         rows by their position in the stage (the usual case: DuckDB then reads on all threads);
                         with several event files, file k's rows carry k << 40 on top, so ties keep file order
    user_id, item_id     VARCHAR
    ts TIMESTAMP         UTC; NULL when missing or unparseable
    ts_problem VARCHAR   why ts is NULL or unusable (NULL when fine)
    event_type VARCHAR   lower-case word
    value DOUBLE         rating / weight; NULL when absent
    problem VARCHAR      a loader-specific reason to reject the row (NULL when fine)
    raw_0 … raw_{r-1}    VARCHAR, the source fields, joined with `Stage.raw_delim` into `rejects.raw` only for
                         rejected rows
    ctx_0 … ctx_{k-1}    VARCHAR, one per `Stage.context_keys` entry (NULL = absent)
    item_title VARCHAR, item_categories VARCHAR[]   only with `Stage.item_columns`: item facts carried by events

`rejects.row_number` is the row's 1-based position among the rows the reader could split, or, for a line
the reader could not split, that line's number in the file (the reason then says "line N").
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from core.ingest import guard, readers
from core.store.edges import EdgeStage

__all__ = ["Run", "Stage", "SideTable", "Offset", "Progress", "FILE_SHIFT"]

log = logging.getLogger(__name__)

Progress = Callable[[str], None]

FILE_SHIFT = 40  # seq = (file index << FILE_SHIFT) + row: 2^40 rows per file is beyond any log


@dataclass(frozen=True)
class SideTable:
    """A users or items SELECT with the file label used in reject reasons.

    users: (seq, user_id, attributes, raw); items: (seq, item_id, title, categories, attributes, raw).
    """

    sql: str
    params: list = field(default_factory=list)
    label: str = "users"


@dataclass(frozen=True)
class Stage:
    """What a loader hands to the shared pipeline."""

    events_sql: str
    events_params: list = field(default_factory=list)
    users: SideTable | None = None
    items: SideTable | None = None
    context_keys: tuple[str, ...] = ()  # names of the ctx_0 … ctx_{k-1} columns
    item_columns: bool = False  # events carry item_title / item_categories
    files: tuple[str, ...] = ()  # labels of the event files, by file index (seq >> FILE_SHIFT)
    raw_parts: int = 0  # number of raw_i columns
    raw_delim: str = ","  # how the raw_i columns are joined into the rejected row's text
    edges: EdgeStage | None = None  # social edges loaded in the same transaction (after the events)


@dataclass(frozen=True)
class Offset:
    """Where a chunk of a longer source starts (live ingest of a growing file reads it in chunks).

    `rows` data rows and `lines` lines of the whole source come before the chunk's first data row, so `seq`
    and the row and line numbers of rejects refer to the whole source, not to the chunk.
    """

    rows: int = 0
    lines: int = 0  # added to a line number in the chunk to give the line number in the source


@dataclass
class Run:
    """The open run: its connection (inside the transaction), id and the assumptions made so far."""

    con: duckdb.DuckDBPyConnection
    run_id: int
    started_at: dt.datetime
    assumptions: list[str] = field(default_factory=list)
    registered: list[str] = field(default_factory=list)
    layouts: dict[str, str] = field(default_factory=dict)  # file path -> what its lines should look like
    event_files: list[str] = field(default_factory=list)
    offset: Offset = field(default_factory=Offset)
    stamps: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # file -> stamp when first read
    scans: dict[str, guard.FileScan] = field(default_factory=dict)  # file -> what the guard's pass found

    def register(self, name: str, frame) -> None:
        """Expose a DataFrame (or Arrow table) to this run's SQL under `name`; unregistered when the run ends."""
        self.con.register(name, frame)
        self.registered.append(name)

    def assume(self, sentence: str) -> None:
        """State an assumption once; it is returned to the caller and recorded in the run's message."""
        if sentence not in self.assumptions:
            log.info("assumption: %s", sentence)
            self.assumptions.append(sentence)

    def delimited(
        self, path: Path, n_columns: int, dialect: readers.Dialect, layout: str, events: bool = True
    ) -> tuple[str, list]:
        """`read_csv(…)` SQL for a delimited file whose unreadable lines become rejects (see `readers`)."""
        self._note(path, layout, events)
        sql = readers.delimited(path, n_columns, dialect)
        self.scans[str(path)] = guard.scan_text(path, dialect.max_line_size)  # cached by the read above
        return sql

    def json_lines(self, path: Path, layout: str, events: bool = True) -> tuple[str, list]:
        """`read_csv(…)` SQL yielding one text column `c0` per line of a JSON lines file."""
        self._note(path, layout, events)
        sql = readers.json_lines(path)
        self.scans[str(path)] = guard.scan_text(path, readers.JSON_MAX_LINE)
        return sql

    def _note(self, path: Path, layout: str, events: bool) -> None:
        self.layouts[str(path)] = layout
        self.stamps.setdefault(str(path), guard.stamp(path))
        if events and str(path) not in self.event_files:
            self.event_files.append(str(path))
