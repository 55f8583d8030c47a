"""The time hierarchy of a history (event → session → day → week → month) as a scipy linkage matrix.

Levels nest, so that every window lies inside one window of the next level:

- **session**: a run of events whose gaps are shorter than 30 minutes (the time grid's session rule), cut at midnight (UTC);
- **day**: a calendar day (UTC);
- **week**: an ISO week (Monday to Sunday), cut at month boundaries;
- **month**: a calendar month.

The tree is written in scipy's linkage format, which shap's `PartitionExplainer` reads as its clustering: row r =
`[left, right, height, size]` creates node `n + r`; nodes `0..n-1` are the events. Inside each window its parts
are joined pairwise, neighbours in time first, so the tree stays balanced (depth about log2(n) plus the levels)
and an exact Owen recursion over it stays quadratic in n. Heights are 1 (session), 2 (day), 3 (week), 4 (month)
and 5 (the whole history); all are positive, which is what tells shap to descend into a node.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from core.trajectory.timegrid import SESSION_GAP_S

__all__ = [
    "LEVELS",
    "SESSION_GAP_SECONDS",
    "RECENT_EVENTS",
    "OLDER_GROUPS",
    "Window",
    "TimeHierarchy",
    "FeatureSpan",
    "build_time_hierarchy",
    "explained_features",
    "window_keys",
]

LEVELS: tuple[str, ...] = ("session", "day", "week", "month")
SESSION_GAP_SECONDS = SESSION_GAP_S  # the time grid's rule: a gap at least this long starts a new session
RECENT_EVENTS = 50  # per-event explanations: the latest events explained one by one
OLDER_GROUPS = 10  # ... and the older events of the window in at most this many periods
_DAY = 86_400


@dataclass(frozen=True)
class Window:
    """One period of a history: its level, a readable label, its first and last event time, its events."""

    level: str  # one of LEVELS
    label: str  # e.g. "2024-03-05 14:02–14:40", "2024-03-05", "2024-W10", "2024-03"
    start: dt.datetime  # time of the window's first event (naive UTC)
    end: dt.datetime  # time of the window's last event (naive UTC)
    members: tuple[int, ...]  # positions (0..n-1) of the window's events
    node: int  # the window's node in the linkage tree (an event's own index for a one-event window)


@dataclass
class TimeHierarchy:
    """A history's windows and the binary tree over its events that shap's Partition explainer walks."""

    linkage: np.ndarray  # [n-1, 4] float64, scipy linkage format
    windows: list[Window]  # every window of every level, finest level first, in time order within a level

    @property
    def n_events(self) -> int:
        return int(self.linkage.shape[0]) + 1


def _utc(seconds: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1) + dt.timedelta(seconds=int(seconds))


def window_keys(ts: np.ndarray, session_gap: int = SESSION_GAP_SECONDS) -> dict[str, np.ndarray]:
    """For events sorted by time (unix seconds), an integer window id per event at every level.

    Ids grow with time and each level's id changes whenever a coarser level's id does, so windows nest.
    """
    ts = np.asarray(ts, dtype=np.int64)
    day = ts // _DAY
    dates = [_utc(t).date() for t in ts]
    month = np.array([d.year * 12 + d.month - 1 for d in dates], dtype=np.int64)
    monday = (day + 3) // 7  # 1970-01-01 was a Thursday: weeks counted from Mondays
    week_start = np.r_[True, (monday[1:] != monday[:-1]) | (month[1:] != month[:-1])] if len(ts) else np.zeros(0, bool)
    gap = np.diff(ts, prepend=ts[:1]) if len(ts) else ts
    session_start = np.r_[True, (gap[1:] >= session_gap) | (day[1:] != day[:-1])] if len(ts) else np.zeros(0, bool)
    return {
        "session": np.cumsum(session_start) - 1,
        "day": np.cumsum(np.r_[True, day[1:] != day[:-1]]) - 1 if len(ts) else day,
        "week": np.cumsum(week_start) - 1,
        "month": np.cumsum(np.r_[True, month[1:] != month[:-1]]) - 1 if len(ts) else month,
    }


def _label(level: str, first: int, last: int) -> str:
    a, b = _utc(first), _utc(last)
    if level == "session":
        return f"{a:%Y-%m-%d %H:%M}" + (f"–{b:%H:%M}" if b != a else "")
    if level == "day":
        return f"{a:%Y-%m-%d}"
    if level == "week":
        year, week, _ = a.isocalendar()
        return f"{year}-W{week:02d} ({a:%b})"
    return f"{a:%Y-%m}"


def build_time_hierarchy(ts: np.ndarray, session_gap: int = SESSION_GAP_SECONDS) -> TimeHierarchy:
    """The time hierarchy of `n` events sorted by time (unix seconds): its windows and linkage matrix.

    Raises ValueError for an empty or unsorted `ts` (the canonical event order is sorted by time).
    """
    ts = np.asarray(ts, dtype=np.int64)
    n = len(ts)
    if n == 0:
        raise ValueError("a time hierarchy needs at least one event")
    if np.any(np.diff(ts) < 0):
        raise ValueError("event times must be sorted")
    keys = window_keys(ts, session_gap)
    rows: list[list[float]] = []
    size = [1] * n  # size of every node so far

    def join(a: int, b: int, height: float) -> int:
        rows.append([a, b, height, size[a] + size[b]])
        size.append(size[a] + size[b])
        return n + len(rows) - 1

    def merge(nodes: list[int], height: float) -> int:
        while len(nodes) > 1:  # neighbours pairwise: a balanced tree that keeps time order
            merged = [join(nodes[i], nodes[i + 1], height) for i in range(0, len(nodes) - 1, 2)]
            nodes = merged + ([nodes[-1]] if len(nodes) % 2 else [])
        return nodes[0]

    nodes = list(range(n))
    first = list(range(n))  # first event of each current node
    windows: list[Window] = []
    for height, level in enumerate((*LEVELS, "all"), start=1):
        key = keys[level] if level != "all" else np.zeros(n, np.int64)
        node_key = key[first]
        new_nodes, new_first = [], []
        start = 0
        for i in range(1, len(nodes) + 1):
            if i == len(nodes) or node_key[i] != node_key[start]:
                node = merge(nodes[start:i], float(height))
                lo = first[start]
                hi = first[i] if i < len(nodes) else n
                if level != "all":
                    windows.append(
                        Window(level, _label(level, ts[lo], ts[hi - 1]), _utc(ts[lo]), _utc(ts[hi - 1]), tuple(range(lo, hi)), node)
                    )
                new_nodes.append(node)
                new_first.append(lo)
                start = i
        nodes, first = new_nodes, new_first
    linkage = np.array(rows, dtype=np.float64).reshape(-1, 4)
    return TimeHierarchy(linkage=linkage, windows=windows)


@dataclass(frozen=True)
class FeatureSpan:
    """One player of a per-event explanation: a single event, or a period of older events."""

    members: tuple[int, ...]  # positions (0..n-1) of its events, in time order
    level: str | None  # None for a single event; else "session", "day", "week", "month" or "months"
    label: str  # the period's label ("" for a single event)


def explained_features(
    ts: np.ndarray, recent: int = RECENT_EVENTS, max_groups: int = OLDER_GROUPS, session_gap: int = SESSION_GAP_SECONDS
) -> list[FeatureSpan]:
    """The players of a per-event explanation of `n` events sorted by time, oldest first.

    With at most `recent` events, every event is a player. Otherwise the latest `recent` events are players one by
    one and the older ones are grouped by period: the finest level (session, day, week, month) that has at most
    `max_groups` windows among them, or, when even months are more, runs of consecutive months cut into
    `max_groups` parts. A group is one player: its value is what its events do together.
    """
    ts = np.asarray(ts, dtype=np.int64)
    n = len(ts)
    if recent < 0 or max_groups < 1:
        raise ValueError("recent must be at least 0 and max_groups at least 1")
    if n <= recent:
        return [FeatureSpan((i,), None, "") for i in range(n)]
    old = n - recent
    keys = window_keys(ts[:old], session_gap)
    level = next((lv for lv in LEVELS if int(keys[lv][-1]) + 1 <= max_groups), "months")
    group = keys[level] if level != "months" else keys["month"] * max_groups // (int(keys["month"][-1]) + 1)
    spans = []
    for g in np.unique(group):
        idx = np.flatnonzero(group == g)
        first, last = int(ts[idx[0]]), int(ts[idx[-1]])
        if level == "months":
            a, b = f"{_utc(first):%Y-%m}", f"{_utc(last):%Y-%m}"
            label = a if a == b else f"{a} – {b}"
        else:
            label = _label(level, first, last)
        spans.append(FeatureSpan(tuple(int(i) for i in idx), level, label))
    return spans + [FeatureSpan((i,), None, "") for i in range(old, n)]
