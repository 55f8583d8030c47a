"""The time grid: sessions and calendar buckets on hand-made times, the grain `auto` picks, aggregation, change points
between sessions (a bulk burst is one moment), marks on drift peaks, and a ranking score that length does not drive."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.trajectory import (
    ChangeConfig,
    Trajectory,
    bucket_index,
    bulk_entries,
    choose_grain,
    decayed_histogram,
    detect_change_points,
    detect_changes,
    drift_summary,
    grid_view,
    moment_starts,
    sessions,
)

T0 = np.datetime64("2025-01-06T09:00:00", "s")  # a Monday
MIN, HOUR, DAY = 60, 3600, 86_400


def at(*seconds: float) -> np.ndarray:
    return T0 + np.asarray(seconds, dtype=np.int64).astype("timedelta64[s]")


def one_hot(cats: list[int], c: int = 3) -> np.ndarray:
    return np.eye(c)[cats]


def trajectory(events: np.ndarray, ts: np.ndarray, names=("A", "B", "C"), user: str = "u") -> Trajectory:
    """A trajectory whose distributions are the decayed histogram (no model needed) and whose change points are
    found on the grid, as `TrajectoryAnalyzer.build` finds them."""
    n = len(events)
    base = decayed_histogram(events, 10.0)
    steps = pd.DataFrame({"index": np.arange(n), "time": ts, "item": [f"i{k}" for k in range(n)], "title": None})
    return Trajectory(
        user_id=user, steps=steps, categories=list(names), distribution=base, long_term=None, short_term=None,
        baseline=base, gate=np.full(n, 0.5), drift=np.zeros(n), change_points=detect_changes(events, ts).steps,
        events=events,
    )


def test_sessions_split_at_thirty_minutes_and_one_sitting_is_one_point():
    ts = at(0, MIN, 2 * MIN, 2 * MIN + 30 * MIN, 3 * HOUR, 3 * HOUR + 29 * MIN, 5 * DAY)
    assert sessions(ts).tolist() == [0, 0, 0, 1, 2, 2, 3]  # a gap of exactly 30 minutes starts a new one
    events = one_hot([0, 0, 1, 2, 2, 2, 1])
    grid = grid_view(trajectory(events, ts), "session")
    assert grid.events.tolist() == [3, 1, 2, 1] and grid.first_step.tolist() == [0, 3, 4, 6]
    base = decayed_histogram(events, 10.0)
    np.testing.assert_allclose(grid.share[0], base[:3].mean(axis=0))  # the sitting's mean interest
    np.testing.assert_allclose(grid.share.sum(axis=1), 1.0)
    assert grid.start[2] == ts[4] and grid.end[2] == ts[5]


def test_calendar_buckets_are_utc_days_monday_weeks_and_months():
    ts = np.array(["2025-01-05T23:00", "2025-01-06T01:00", "2025-01-06T22:00", "2025-01-31T12:00",
                   "2025-02-01T00:00"], dtype="datetime64[s]")  # Sunday, Monday, Monday, Friday, Saturday
    assert bucket_index(ts, "day").tolist() == [0, 1, 1, 2, 3]
    assert bucket_index(ts, "week").tolist() == [0, 1, 1, 2, 2]
    assert bucket_index(ts, "month").tolist() == [0, 0, 0, 0, 1]
    assert bucket_index(ts, "event").tolist() == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    ("offsets", "grain"),
    [
        ([0, 10, 20, 30], "event"),  # one sitting: no time course, the order of entry is all there is
        ([0, HOUR, 2 * HOUR, 20 * HOUR], "session"),  # under 2 days
        ([0, DAY, 10 * DAY, 30 * DAY], "day"),  # under 120 days
        ([0, 30 * DAY, 200 * DAY, 365 * DAY], "week"),  # under 3 years
        ([0, 400 * DAY, 1000 * DAY, 1500 * DAY], "month"),
        ([0, 10, 1500 * DAY], "event"),  # five years, but only two months hold events
    ],
)
def test_auto_grain_follows_the_span(offsets, grain):
    assert choose_grain(at(*offsets)) == grain


def _bulk_log() -> tuple[np.ndarray, np.ndarray]:
    """30 daily events of A, one sitting of 40 ratings seconds apart (20 of B, then 20 of C), 30 daily events of A."""
    cats = [0] * 30 + [1] * 20 + [2] * 20 + [0] * 30
    secs = [k * DAY for k in range(30)] + [30 * DAY + 5 * k for k in range(40)] + [(31 + k) * DAY for k in range(30)]
    return one_hot(cats), at(*secs)


def test_a_bulk_burst_is_one_moment_and_holds_no_change_point():
    events, ts = _bulk_log()
    assert detect_change_points(events) == [30, 50, 70]  # event by event, the burst's order reads as a change
    found = detect_changes(events, ts)
    starts, sid = moment_starts(ts)
    assert 30 in starts and not set(range(31, 70)) & set(starts.tolist())  # the burst is one moment
    assert found.steps and set(found.steps) <= set(starts.tolist())
    assert not [s for s in found.steps if 30 < s < 70]  # nothing inside the burst
    assert len([s for s in found.steps if 30 <= s <= 70]) <= 2  # its two ends at most: in, then out
    per_session = np.bincount(sid[found.steps])
    assert per_session.max() <= 1
    b = bulk_entries(ts)
    assert (b.bulk_sessions, b.bulk_events, b.mostly_bulk) == (1, 40, False)
    assert bulk_entries(at(*range(0, 400, 10))).mostly_bulk  # 40 events in one sitting
    assert "entered in bulk" in bulk_entries(at(*range(0, 400, 10))).sentence()


def _switch_user(n: int, seed: int, switch_at: float = 0.5, gap_s: int = 2 * DAY) -> tuple[np.ndarray, np.ndarray]:
    """n events, one a session every `gap_s`, mostly A then mostly C from `switch_at` of the way on."""
    rng = np.random.default_rng(seed)
    k = int(n * switch_at)
    before = rng.choice(3, k, p=[0.8, 0.15, 0.05])
    after = rng.choice(3, n - k, p=[0.1, 0.15, 0.75])
    return one_hot(list(before) + list(after)), at(*[i * gap_s for i in range(n)])


@pytest.mark.parametrize("grain", ["event", "session", "day", "week"])
def test_change_marks_sit_on_drift_peaks(grain):
    events, ts = _switch_user(120, seed=1)
    grid = grid_view(trajectory(events, ts), grain)
    # the planted switch at event 60, alone (the third session's detector, evidence="shared", also marked event 34
    # in this draw, where B's share rises from 2 of 34 events to 8 of 26; the l2 PELT marks 60 alone too)
    assert [c.step for c in grid.changes] == [pytest.approx(60, abs=5)]
    shared = ChangeConfig(evidence="shared", alpha=0.5, weekly_penalty=0.0, ramp_penalty=0.0, change_penalty=-1.0,
                          min_contrast=0.2, one_per_session=True)
    assert detect_changes(events, ts, shared).steps == [34, pytest.approx(60, abs=5)]
    for change in grid.changes:
        b = change.bucket
        near = grid.drift[max(0, b - 2) : b + 3]
        assert grid.drift[b] == near.max()  # every mark is where the drift line peaks
        assert change.size == pytest.approx(grid.drift[b])
    planted = grid.changes[0]
    assert grid.drift[planted.bucket] > 0.4
    assert planted.words.startswith("A → C, ")
    pelt = detect_changes(events, ts, ChangeConfig(method="pelt")).steps
    assert pelt == [pytest.approx(60, abs=5)]


def test_largest_change_does_not_grow_with_history_length():
    """The same planted switch in a 40-event and a 400-event history scores about the same; total drift (what the
    list ranked by before) grows with the length."""
    scores = {}
    for n in (40, 400):
        vals = []
        for seed in range(16):
            events, ts = _switch_user(n, seed)
            vals.append(drift_summary(trajectory(events, ts)).largest_change)
        scores[n] = float(np.mean(vals))
    assert scores[40] > 0.3 and scores[400] > 0.3
    assert abs(scores[40] - scores[400]) < 0.1
    quiet = drift_summary(trajectory(*_switch_user(400, 9, switch_at=1.0)))
    assert quiet.largest_change == 0.0 and quiet.shift == ""


def test_change_config_refuses_impossible_settings():
    with pytest.raises(ValueError):
        ChangeConfig(window=0)
    with pytest.raises(ValueError):
        ChangeConfig(min_divergence=2.0)


def test_pelt_on_single_event_moments_equals_ruptures():
    import ruptures as rpt

    from core.trajectory.changes import auto_penalty
    from core.trajectory.grid_changes import pelt

    rng = np.random.default_rng(3)
    for n in (40, 90, 200):
        x = one_hot(list(rng.choice(3, n // 2, p=[0.7, 0.2, 0.1])) + list(rng.choice(3, n - n // 2, p=[0.1, 0.2, 0.7])))
        pen = auto_penalty(x, 0.6)
        expected = [int(b) for b in rpt.KernelCPD(kernel="linear", min_size=10).fit(x).predict(pen=pen)[:-1]]
        assert pelt(x, (x**2).sum(axis=1), np.ones(n), pen, 10) == expected and expected
