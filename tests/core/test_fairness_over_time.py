"""Fairness per calendar window on hand-made timestamps.

Events (UTC), given in New York time to check the conversion:
  u1: Jan 5 a, Jan 20 b, Feb 3 c, Feb 10 d
  u2: Jan 10 a, Feb 1 04:30 b (Jan 31 23:30 in New York), Mar 2 c
  u3: Jan 15 a, Jan 16 c, Mar 5 b
  u4: Feb 20 d, Mar 1 a
January: u1, u2, u3 active; u1 and u2 have a February event (targets c and b); u3 has none.
February: u1, u2, u4 active; u2 and u4 have a March event (targets c and a).
March is the last window: nothing follows it.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from core.errors import UserInputError
from core.fairness import (
    calendar_windows,
    over_time,
    panel_note,
    popularity_recommender,
    shown_windows,
    user_panel,
    window_intervals,
    window_split,
)

ROWS = [
    ("u1", "a", "2024-01-05 10:00"), ("u2", "a", "2024-01-10 10:00"), ("u3", "a", "2024-01-15 10:00"),
    ("u3", "c", "2024-01-16 10:00"), ("u1", "b", "2024-01-20 10:00"), ("u2", "b", "2024-02-01 04:30"),
    ("u1", "c", "2024-02-03 10:00"), ("u1", "d", "2024-02-10 10:00"), ("u4", "d", "2024-02-20 10:00"),
    ("u4", "a", "2024-03-01 10:00"), ("u2", "c", "2024-03-02 10:00"), ("u3", "b", "2024-03-05 10:00"),
]
CATS = pd.Series({"a": ["X"], "b": ["X", "Y"], "c": ["Y"], "d": ["Y"]})


def events(tz: str | None = "America/New_York") -> pd.DataFrame:
    ts = pd.to_datetime(pd.Series([r[2] for r in ROWS]), utc=True)
    return pd.DataFrame(
        {"user_id": [r[0] for r in ROWS], "item_id": [r[1] for r in ROWS], "ts": ts.dt.tz_convert(tz) if tz else ts}
    )


def test_calendar_windows_are_utc_months():
    windows = calendar_windows(events()["ts"])
    assert [(s.strftime("%Y-%m-%d"), e.strftime("%Y-%m-%d")) for s, e in windows] == [
        ("2024-01-01", "2024-02-01"), ("2024-02-01", "2024-03-01"), ("2024-03-01", "2024-04-01")]
    weeks = calendar_windows(pd.Series(pd.to_datetime(["2024-02-14", "2024-02-19"])), "week")
    assert [s.strftime("%a %d") for s, _ in weeks] == ["Mon 12", "Mon 19"]
    with pytest.raises(UserInputError, match="Unknown window 'fortnight'"):
        calendar_windows(events()["ts"], "fortnight")


def test_window_split_histories_and_next_events():
    ev = events(None).assign(ts=lambda d: d["ts"].dt.tz_localize(None))
    (start, end), (_, next_end) = calendar_windows(ev["ts"])[:2]
    hist, targets = window_split(ev, start, end, next_end)
    assert targets[["user_id", "item_id"]].values.tolist() == [["u2", "b"], ["u1", "c"]]
    assert hist[["user_id", "item_id"]].values.tolist() == [["u1", "a"], ["u2", "a"], ["u1", "b"]]


def test_over_time_by_hand():
    rows = over_time(events(), popularity_recommender, k=2, item_categories=CATS)
    assert [r.start.strftime("%Y-%m") for r in rows] == ["2024-01", "2024-02"]
    jan, feb = rows
    # January: popularity over u1, u2 histories a=2, b=1; u1 has seen both (empty list), u2 gets [b] = target
    assert jan.users == 2
    assert jan.metrics["NDCG@2"] == pytest.approx(0.5) and jan.metrics["HR@2"] == pytest.approx(0.5)
    # catalogue before Feb 1: a, b, c; only b recommended → coverage 1/3, Gini 1
    assert jan.metrics["coverage"] == pytest.approx(1 / 3)
    assert jan.metrics["gini"] == pytest.approx(1.0)
    # February: a=1, b=1, d=1 (ties by id); u2 seen a, b → [d] (target c: miss); u4 seen d → [a, b] (target a: hit)
    assert feb.users == 2
    assert feb.metrics["NDCG@2"] == pytest.approx(0.5) and feb.metrics["HR@2"] == pytest.approx(0.5)
    # u2 history a, b (X 1.5, Y .5 → p = .75/.25), list [d] (Y): C_KL = .75 ln(.75/(.01·.75)) + .25 ln(.25/(.99 + .0025))
    u2 = 0.75 * math.log(0.75 / 0.0075) + 0.25 * math.log(0.25 / (0.99 + 0.01 * 0.25))
    # u4 history d (Y), list [a, b] (X 1.5, Y .5 → q(Y) = .25): C_KL = ln(1 / (.99·.25 + .01))
    u4 = math.log(1 / (0.99 * 0.25 + 0.01))
    assert feb.metrics["C_KL"] == pytest.approx((u2 + u4) / 2)
    # exposure: d 1 (u2), a 1 and b 1/log2(3) (u4), c 0; X = a + b/2 over 1.5 items, Y = b/2 + c + d over 2.5:
    # both sums are 1 + ½·v2, so parity = (sum / 2.5) / (sum / 1.5) = 0.6
    assert feb.metrics["exposure_parity:category"] == pytest.approx(0.6)
    assert "exposure_treatment:popularity" in feb.metrics


def test_over_time_would_differ_without_utc_conversion():
    # read as wall-clock New York time, u2's "b" falls in January and the January window changes
    naive = events().assign(ts=lambda d: d["ts"].dt.tz_localize(None))
    rows = over_time(naive, popularity_recommender, k=2, item_categories=CATS)
    assert rows[0].users == 1


def test_over_time_gaps_by_attribute():
    attrs = pd.DataFrame({"user_id": ["u1", "u2", "u3", "u4"], "gender": ["F", "M", "F", "M"]})
    rows = over_time(events(), popularity_recommender, 2, CATS, attrs, by=["gender"])
    # January: u1 (F) NDCG 0, u2 (M) NDCG 1 → gap 1; February: u2 (M) 0, u4 (M) 1 → one group, gap 0
    assert [r.gaps["gender"] for r in rows] == [1.0, 0.0]


def test_popularity_recommender_skips_seen_items():
    hist = pd.DataFrame({"user_id": ["x", "x", "y"], "item_id": ["a", "b", "a"]})
    recs = popularity_recommender(hist, 2)
    assert recs.values.tolist() == [["y", 1, "b"]]


def test_user_panel_is_stable_and_order_free():
    ids = [f"user{i}" for i in range(500)]
    panel = user_panel(pd.Series(ids), 50)
    assert len(panel) == 50 and set(panel) <= set(ids)
    assert set(user_panel(pd.Series(ids[::-1]), 50)) == set(panel)  # whatever order the ids come in
    # a user in the panel of a larger set stays in it for any subset that contains them
    sub = [u for u in ids[:300]]
    assert set(panel) & set(sub) <= set(user_panel(pd.Series(sub), 50))
    assert list(user_panel(pd.Series(ids[:10]), 50)) == ids[:10]  # nothing to drop


def test_over_time_panel_caps_users_per_window_and_says_how_many_there_were():
    full = over_time(events(), popularity_recommender, k=2, item_categories=CATS)
    capped = over_time(events(), popularity_recommender, k=2, item_categories=CATS, max_users=1)
    assert [r.users for r in full] == [2, 2] and all(r.eligible is None for r in full)
    assert [r.users for r in capped] == [1, 1] and [r.eligible for r in capped] == [2, 2]
    # one user scored per window: a hit or a miss, and the same panel (so the same figures) on every run
    assert all(c.metrics["HR@2"] in (0.0, 1.0) for c in capped)
    again = over_time(events(), popularity_recommender, k=2, item_categories=CATS, max_users=1)
    pd.testing.assert_frame_equal(pd.DataFrame([r.metrics for r in again]), pd.DataFrame([r.metrics for r in capped]))
    with pytest.raises(UserInputError, match="at least one user"):
        over_time(events(), popularity_recommender, k=2, item_categories=CATS, max_users=0)
    ev = events(None).assign(ts=lambda d: d["ts"].dt.tz_localize(None))
    (start, end), (_, next_end) = calendar_windows(ev["ts"])[:2]
    hist, targets = window_split(ev, start, end, next_end, max_users=1)
    assert len(targets) == 1 and set(hist["user_id"]) == set(targets["user_id"])


def test_panel_note_only_when_a_panel_was_drawn():
    full = over_time(events(), popularity_recommender, k=2, item_categories=CATS)
    capped = over_time(events(), popularity_recommender, k=2, item_categories=CATS, max_users=1)
    assert panel_note(full) is None
    assert panel_note(capped) == "a fixed panel of at most 1 users per window (of up to 2), followed from window to window"


def _window_by_definition(ev: pd.DataFrame, start, end, next_end, max_users=None):
    """The protocol spelled out with plain pandas filters (what `window_split` must equal)."""
    ts = ev["ts"]
    active = set(ev.loc[(ts >= start) & (ts < end), "user_id"])
    nxt = ev[(ts >= end) & (ts < next_end) & ev["user_id"].isin(active)]
    targets = nxt.drop_duplicates("user_id", keep="first")
    if max_users is not None and len(targets) > max_users:
        targets = targets[targets["user_id"].isin(user_panel(targets["user_id"], max_users))]
    hist = ev[(ts < end) & ev["user_id"].isin(set(targets["user_id"]))]
    return hist.reset_index(drop=True), targets.reset_index(drop=True)


@pytest.mark.parametrize("max_users", [None, 7])
def test_window_split_equals_the_definition_on_a_random_log(max_users):
    rng = np.random.default_rng(3)
    n = 3000
    ev = pd.DataFrame({
        "user_id": pd.array([f"u{i}" for i in rng.integers(0, 60, n)], dtype="str"),
        "item_id": pd.array([f"i{i}" for i in rng.integers(0, 40, n)], dtype="str"),
        "ts": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 200 * 86400, n), unit="s"),
    })
    # some events exactly on a window boundary (they belong to the later window)
    edge = rng.choice(n, 60, replace=False)
    ev.loc[edge, "ts"] = pd.to_datetime(rng.choice(["2024-02-01", "2024-03-01", "2024-04-01"], 60))
    windows = calendar_windows(ev["ts"])
    assert len(windows) >= 6
    for (start, end), (_, next_end) in zip(windows[:-1], windows[1:], strict=True):
        hist, targets = window_split(ev, start, end, next_end, max_users=max_users)
        want_hist, want_targets = _window_by_definition(ev, start, end, next_end, max_users)
        pd.testing.assert_frame_equal(targets, want_targets)
        pd.testing.assert_frame_equal(hist, want_hist)
        assert len(targets) > 0


def test_window_popularity_equals_value_counts_before_the_window_end():
    from core.fairness.over_time import _Log

    rng = np.random.default_rng(4)
    n = 2000
    ev = pd.DataFrame({
        "user_id": [f"u{i}" for i in rng.integers(0, 30, n)],
        "item_id": [f"i{i}" for i in rng.integers(0, 50, n)],
        "ts": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 100 * 86400, n), unit="s"),
    })
    log_codes = _Log(ev)
    for _, end in calendar_windows(ev["ts"]):
        got = log_codes.popularity(end)
        want = ev.loc[ev["ts"] < end, "item_id"].value_counts()
        assert got.to_dict() == want.to_dict()
        assert list(got.to_numpy()) == sorted(got.to_numpy(), reverse=True)


def test_windows_below_the_minimum_are_marked_not_dropped():
    # January and February each score 2 users (test_over_time_by_hand)
    default = over_time(events(), popularity_recommender, k=2, item_categories=CATS)
    assert [r.below_min for r in default] == [True, True]  # the default minimum is the report's 30 users
    assert [r.below_min for r in over_time(events(), popularity_recommender, 2, CATS, min_users=2)] == [False, False]
    marked = over_time(events(), popularity_recommender, 2, CATS, min_users=3)
    assert [r.below_min for r in marked] == [True, True]
    assert [r.metrics for r in marked] == [r.metrics for r in default]  # still computed, only marked
    shown, left_out = shown_windows(marked)
    assert shown == [] and left_out == marked


def test_window_intervals_known_answers():
    # every user equal: every resample mean is that value
    same = window_intervals({"m": np.full(5, 0.25)}, {}, "m", 50)
    assert same == {"m": (0.25, 0.25)}
    assert window_intervals({"m": np.ones(3)}, {}, "m", 0) == {}
    # the means are those of the resamples numpy's generator draws with the window's seed
    v = np.array([0.0, 1.0, 0.0, 0.5, 1.0, 0.0])
    got = window_intervals({"m": v}, {}, "m", 400, (0.1, 0.9), seed=(0, 3))
    idx = np.random.default_rng((0, 3)).integers(0, len(v), size=(400, len(v)))
    assert got["m"] == tuple(float(q) for q in np.quantile(v[idx].mean(axis=1), (0.1, 0.9)))
    # two groups of 4 users, values 0 and 1: the gap is 1 whenever both are drawn (all but 2 in 256 resamples, under
    # the 2.5 % quantile), so the whole interval is 1
    gap = window_intervals({"m": np.repeat([0.0, 1.0], 4)}, {"g": np.repeat([0, 1], 4)}, "m", 1000)
    assert gap["gap:g"] == (1.0, 1.0)
    assert gap["m"][0] < 0.5 < gap["m"][1]


def test_window_intervals_are_drawn_in_bounded_chunks(monkeypatch):
    import importlib

    ot = importlib.import_module("core.fairness.over_time")  # the module (the package exports the function)
    monkeypatch.setattr(ot, "_BOOT_CELLS", 10)  # at most 2 resamples of 5 users at a time
    v = np.array([0.0, 1.0, 0.25, 0.5, 1.0])
    out = window_intervals({"m": v}, {}, "m", 7, (0.0, 1.0))
    rng = np.random.default_rng(0)
    idx = np.concatenate([rng.integers(0, 5, size=(b, 5)) for b in (2, 2, 2, 1)])  # 7 resamples in 4 chunks
    means = v[idx].mean(axis=1)
    assert out == {"m": (float(means.min()), float(means.max()))}


def test_every_window_has_intervals_around_its_means():
    attrs = pd.DataFrame({"user_id": ["u1", "u2", "u3", "u4"], "gender": ["F", "M", "F", "M"]})
    rows = over_time(events(), popularity_recommender, 2, CATS, attrs, by=["gender"], n_boot=300)
    for r in rows:
        assert set(r.intervals) == {"NDCG@2", "HR@2", "gap:gender"}
        for m in ("NDCG@2", "HR@2"):
            assert r.intervals[m][0] <= r.metrics[m] <= r.intervals[m][1]
    # January: u1 0, u2 1 → resample means 0, .5 or 1; both extremes have probability 1/4
    assert rows[0].intervals["NDCG@2"] == (0.0, 1.0)
    again = over_time(events(), popularity_recommender, 2, CATS, attrs, by=["gender"], n_boot=300)
    assert [r.intervals for r in again] == [r.intervals for r in rows]  # seeded per window: the same rows every run
    assert all(r.intervals == {} for r in over_time(events(), popularity_recommender, 2, CATS, n_boot=0))
