"""The time hierarchy (event → session → day → week → month) built from hand-made timestamps."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from scipy.cluster.hierarchy import is_valid_linkage, to_tree

from core.explain import build_time_hierarchy
from core.explain.hierarchy import window_keys
from core.trajectory.timegrid import sessions


def ts(*times: str) -> np.ndarray:
    epoch = dt.datetime(1970, 1, 1)
    return np.array([int((dt.datetime.fromisoformat(t) - epoch).total_seconds()) for t in times], dtype=np.int64)


TIMES = ts(
    "2024-02-28 23:50",  # 0  Wed, ISO week 9, February
    "2024-02-29 00:10",  # 1  20 minutes later, but a new day: a new session
    "2024-02-29 00:39",  # 2  29 minutes later: the same session
    "2024-02-29 01:11",  # 3  32 minutes later: a new session
    "2024-03-01 08:00",  # 4  Fri, still ISO week 9, but March: week 9 is cut at the month boundary
    "2024-03-04 08:00",  # 5  Mon, ISO week 10
    "2024-03-04 08:05",  # 6
)


def windows_by_level(h) -> dict[str, list[tuple[int, ...]]]:
    out: dict[str, list[tuple[int, ...]]] = {}
    for w in h.windows:
        out.setdefault(w.level, []).append(w.members)
    return out


def leaves(linkage: np.ndarray, node: int) -> set[int]:
    n = len(linkage) + 1
    if node < n:
        return {node}
    return set(to_tree(linkage, rd=True)[1][node].pre_order())


def test_windows_of_hand_made_times():
    h = build_time_hierarchy(TIMES)
    assert windows_by_level(h) == {
        "session": [(0,), (1, 2), (3,), (4,), (5, 6)],
        "day": [(0,), (1, 2, 3), (4,), (5, 6)],
        "week": [(0, 1, 2, 3), (4,), (5, 6)],
        "month": [(0, 1, 2, 3), (4, 5, 6)],
    }
    labels = {(w.level, w.members): w.label for w in h.windows}
    assert labels["session", (1, 2)] == "2024-02-29 00:10–00:39"
    assert labels["session", (0,)] == "2024-02-28 23:50"
    assert labels["day", (1, 2, 3)] == "2024-02-29"
    assert labels["week", (0, 1, 2, 3)] == "2024-W09 (Feb)"
    assert labels["week", (4,)] == "2024-W09 (Mar)"
    assert labels["month", (4, 5, 6)] == "2024-03"
    week = next(w for w in h.windows if w.level == "week" and w.members == (5, 6))
    assert week.start == dt.datetime(2024, 3, 4, 8, 0) and week.end == dt.datetime(2024, 3, 4, 8, 5)


def test_linkage_is_scipy_format_and_each_window_is_a_node():
    h = build_time_hierarchy(TIMES)
    n = len(TIMES)
    assert h.linkage.shape == (n - 1, 4) and is_valid_linkage(h.linkage)
    assert h.linkage[-1, 3] == n and h.linkage[-1, 2] == 5.0  # the root joins the months at height 5
    assert (h.linkage[:, 2] > 0).all()  # positive heights: shap's Partition explainer descends into every node
    heights = {"session": 1.0, "day": 2.0, "week": 3.0, "month": 4.0}
    for w in h.windows:
        assert leaves(h.linkage, w.node) == set(w.members)
        if len(w.members) > 1 and w.node >= n:
            # a window's node was made at its own level, or lower when it holds a single part of that level
            assert h.linkage[w.node - n, 2] <= heights[w.level]


def test_a_long_session_is_split_into_a_balanced_tree():
    h = build_time_hierarchy(ts(*(f"2024-05-01 10:{m:02d}" for m in range(0, 40, 5))))  # 8 events, one session
    assert len(h.windows) == 4 and all(w.members == tuple(range(8)) for w in h.windows)
    root = to_tree(h.linkage)
    depth = max(len(path) for path in _paths(root))
    assert depth == 3  # log2(8): neighbours joined pairwise, not a chain of 7


def _paths(node, path=()):
    if node.is_leaf():
        yield path
        return
    yield from _paths(node.get_left(), (*path, node.id))
    yield from _paths(node.get_right(), (*path, node.id))


def test_one_event_and_bad_input():
    h = build_time_hierarchy(ts("2024-01-01 12:00"))
    assert h.linkage.shape == (0, 4) and [w.level for w in h.windows] == ["session", "day", "week", "month"]
    assert all(w.node == 0 and w.members == (0,) for w in h.windows)
    with pytest.raises(ValueError, match="sorted"):
        build_time_hierarchy(ts("2024-01-02", "2024-01-01"))
    with pytest.raises(ValueError, match="at least one"):
        build_time_hierarchy(np.zeros(0, np.int64))


def test_sessions_follow_the_time_grid_rule():
    # a gap of exactly 30 minutes starts a new session, as on the trajectory chart (core.trajectory.timegrid)
    t = ts("2024-05-01 10:00", "2024-05-01 10:29", "2024-05-01 10:59", "2024-05-01 11:00", "2024-05-01 13:00")
    assert window_keys(t)["session"].tolist() == [0, 0, 1, 1, 2]
    assert window_keys(t)["session"].tolist() == sessions(t).tolist()
