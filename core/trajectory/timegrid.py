"""The time grid a trajectory is read on: sessions, days, weeks or months, and which one to show.

A *session* (a sitting) is a run of a user's events with no gap longer than `SESSION_GAP_S` (30 minutes, the usual web-analytics
session rule). It is the smallest honest unit of time: twelve ratings entered in one sitting say what the user
thought of twelve items, not that their interest changed twelve times, so change points and drift are found between
sessions, never inside one (`core.trajectory.changes.detect_session_changes`). Days, weeks (Monday to Sunday) and
calendar months, all UTC, only aggregate what is shown.

The grain `auto` is chosen from the history's span (first to last event), so a chart has a few dozen to a couple of
hundred points whatever the history's length:

==========================  =======
span                        grain
==========================  =======
up to 2 days                session
up to 120 days              day
up to 3 years               week
longer                      month
==========================  =======

and the per-event view when that grain leaves fewer than `MIN_POINTS` points (a history entered in one or two
sessions has no time course to show; its order of entry is all there is).

Shapes: n events, B buckets (non-empty periods), C categories.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = [
    "Grain",
    "GRAINS",
    "SESSION_GAP_S",
    "MIN_POINTS",
    "BULK_SESSION",
    "BULK_SHARE",
    "BULK_GAP_S",
    "bulk_sessions",
    "sessions",
    "bucket_index",
    "choose_grain",
    "Bulk",
    "bulk_entries",
]

Grain = Literal["event", "session", "day", "week", "month"]
GRAINS: tuple[str, ...] = ("event", "session", "day", "week", "month")
SESSION_GAP_S = 30 * 60  # a gap at least this long starts a new session (the common 30-minute session rule)
MIN_POINTS = 3  # fewer buckets than this at the auto grain: show the per-event view instead
BULK_SESSION = 20  # a session of at least this many events, entered fast (BULK_GAP_S), is bulk entry
BULK_GAP_S = 60  # … with a median gap between its events of at most this (a list rated or imported at once)
BULK_SHARE = 0.5  # a history is "mostly bulk" when at least this share of its events are bulk entries
_SPAN_RULE: tuple[tuple[float, Grain], ...] = (  # (longest span in days, grain) in order; longer: month
    (2.0, "session"),
    (120.0, "day"),
    (3 * 365.25, "week"),
)
_DAY_S = 86_400
_EPOCH_MONDAY_S = 4 * _DAY_S  # 1970-01-05 was the first Monday after the epoch


def _seconds(ts: np.ndarray) -> np.ndarray:
    """[n] int64 unix seconds from datetime64 or integer seconds."""
    a = np.asarray(ts)
    if np.issubdtype(a.dtype, np.datetime64):
        return a.astype("datetime64[s]").astype(np.int64)
    return a.astype(np.int64)


def sessions(ts: np.ndarray, gap_s: int = SESSION_GAP_S) -> np.ndarray:
    """[n] session number of each event (0, 1, …; non-decreasing): a new session starts after a gap of at least `gap_s`.

    `ts` must be in the history's order (non-decreasing); equal times are one session.
    """
    s = _seconds(ts)
    if len(s) == 0:
        return np.zeros(0, np.int64)
    return np.concatenate([[0], np.cumsum(np.diff(s) >= gap_s)]).astype(np.int64)


def bucket_index(ts: np.ndarray, grain: Grain) -> np.ndarray:
    """[n] bucket number of each event at `grain` (0, 1, … over the non-empty buckets, non-decreasing).

    event: every event its own bucket; session: `sessions`; day / week (Monday first) / month: UTC calendar periods.
    """
    s = _seconds(ts)
    if grain == "event":
        return np.arange(len(s), dtype=np.int64)
    if grain == "session":
        return sessions(s)
    if grain == "day":
        key = s // _DAY_S
    elif grain == "week":
        key = (s - _EPOCH_MONDAY_S) // (7 * _DAY_S)
    elif grain == "month":
        key = s.astype("datetime64[s]").astype("datetime64[M]").astype(np.int64)
    else:
        raise ValueError(f"grain must be one of {', '.join(GRAINS)}")
    if len(key) == 0:
        return np.zeros(0, np.int64)
    return np.concatenate([[0], np.cumsum(np.diff(key) != 0)]).astype(np.int64)


def choose_grain(ts: np.ndarray) -> Grain:
    """The grain `auto` picks for a history with these event times (see the module docstring for the rule)."""
    s = _seconds(ts)
    if len(s) < 2:
        return "event"
    span_days = (s[-1] - s[0]) / _DAY_S
    grain: Grain = "month"
    for limit, g in _SPAN_RULE:
        if span_days <= limit:
            grain = g
            break
    n_buckets = int(bucket_index(s, grain)[-1]) + 1
    return grain if n_buckets >= MIN_POINTS else "event"


@dataclass(frozen=True)
class Bulk:
    """How much of a history was entered in bulk: long sessions, where the order of events says little."""

    sessions: int  # sessions in the history
    bulk_sessions: int  # bulk sessions (`bulk_sessions`)
    bulk_events: int  # events in those sessions
    events: int  # events in all
    mostly_bulk: bool  # bulk_events ≥ BULK_SHARE · events

    @property
    def share(self) -> float:
        """Share of events entered in bulk sessions, in [0, 1]."""
        return self.bulk_events / self.events if self.events else 0.0

    def sentence(self) -> str:
        """A plain sentence for the view; empty unless the history is mostly bulk."""
        if not self.mostly_bulk:
            return ""
        many = "session" if self.bulk_sessions == 1 else "sessions"
        return (
            f"Most of this history ({self.share:.0%} of {self.events:,} events) was entered in bulk: "
            f"{self.bulk_sessions} {many} of {BULK_SESSION}+ events, about a minute or less apart. The order inside a "
            f"session says little "
            f"about when interests changed, so each session counts as one moment."
        )


def bulk_sessions(ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """([n] session of each event, [S] whether each session is bulk: at least `BULK_SESSION` events with a median
    gap of at most `BULK_GAP_S` seconds between them — a list entered at once, not a long evening of browsing)."""
    s = _seconds(ts)
    sid = sessions(s)
    if len(sid) == 0:
        return sid, np.zeros(0, bool)
    sizes = np.bincount(sid)
    bulk = sizes >= BULK_SESSION
    gaps = np.diff(s)
    same = sid[1:] == sid[:-1]  # gaps inside a session
    for k in np.flatnonzero(bulk):
        bulk[k] = np.median(gaps[same & (sid[1:] == k)]) <= BULK_GAP_S
    return sid, bulk


def bulk_entries(ts: np.ndarray) -> Bulk:
    """Count the bulk sessions of a history (event times in history order)."""
    sid, big = bulk_sessions(ts)
    if len(sid) == 0:
        return Bulk(0, 0, 0, 0, False)
    sizes = np.bincount(sid)
    bulk_events = int(sizes[big].sum())
    return Bulk(int(len(sizes)), int(big.sum()), bulk_events, int(len(sid)), bulk_events >= BULK_SHARE * len(sid))
