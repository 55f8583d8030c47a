"""The synthetic generator: exact sizes, determinism, and the planted changes really are in its output.

An event's category is its item's primary category (the generator draws a category from the user's true
mixture, then an item of that category), so the log itself can be checked against the truth.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.datasets import generate, load_truth
from core.datasets.build import build_synthetic
from core.store import connect_read

C = 8


@pytest.fixture(scope="module")
def ds():
    return generate(users=300, items=400, events=40_000, categories=C, seed=11)


@pytest.fixture(scope="module")
def log(ds) -> pd.DataFrame:
    """Events with user id, category index, weekend flag, in each user's time order."""
    primary = dict(zip(ds.items["item_id"], ds.items["primary_category"], strict=True))
    index = {c: i for i, c in enumerate(ds.truth.categories)}
    ev = pd.DataFrame(
        {
            "u": ds.events["user_id"].astype(str).to_numpy(),
            "c": ds.events["item_id"].astype(str).map(primary).map(index).to_numpy(),
            "ts": ds.events["ts"].to_numpy(),
            "type": ds.events["event_type"].astype(str).to_numpy(),
        }
    )
    ev["weekend"] = pd.DatetimeIndex(ev["ts"]).day_of_week >= 5
    return ev.sort_values(["u", "ts"], kind="stable").reset_index(drop=True)


def hist(c: np.ndarray) -> np.ndarray:
    return np.bincount(c, minlength=C) / max(len(c), 1)


def tv(a: np.ndarray, b: np.ndarray) -> float:
    return 0.5 * float(np.abs(hist(a) - hist(b)).sum())


def test_sizes_and_determinism(ds):
    assert (len(ds.events), len(ds.users), len(ds.items)) == (40_000, 300, 400)
    again = generate(users=300, items=400, events=40_000, categories=C, seed=11)
    pd.testing.assert_frame_equal(ds.events, again.events)
    other = generate(users=300, items=400, events=40_000, categories=C, seed=12)
    assert not ds.events["item_id"].astype(str).equals(other.events["item_id"].astype(str))
    cats = ds.items["categories"]
    assert cats.map(len).between(1, 3).all()
    assert (cats.map(lambda c: c[0]) == ds.items["primary_category"]).all()  # primary first
    assert set(ds.items["primary_category"]) == set(ds.truth.categories)  # every category has an item


def test_times_increase_per_user_within_2025(log):
    diffs = log.groupby("u")["ts"].diff().dropna()
    assert (diffs > pd.Timedelta(0)).all()
    assert log["ts"].min() >= pd.Timestamp("2025-01-01") and log["ts"].max() < pd.Timestamp("2026-01-01")


def test_planted_switches_change_what_users_do(ds, log):
    """Before vs after the first planted switch the categories differ a lot; a stable user's halves do not."""
    switch, stable = [], []
    for u, g in log.groupby("u", sort=False):
        c = g["c"].to_numpy()
        if ds.truth.archetype(u) == "switch":
            cp = ds.truth.change_points(u)[0]
            if cp >= 20 and len(c) - cp >= 20:
                switch.append(tv(c[:cp], c[cp:]))
        elif ds.truth.archetype(u) == "stable" and len(c) >= 40:
            stable.append(tv(c[: len(c) // 2], c[len(c) // 2 :]))
    assert len(switch) > 30 and len(stable) > 30
    assert np.mean(switch) > 0.45 and np.mean(stable) < 0.2


def test_the_true_mixtures_explain_the_log_better_than_a_fixed_one(ds, log):
    """Log-likelihood of each event's category under the planted per-event mixture beats the user's average
    mixture for users whose interests move, and equals it for stable users."""
    gain = {}
    for u, g in log.groupby("u", sort=False):
        c = g["c"].to_numpy()
        m = ds.truth.user_mixtures(u)  # [n, C]
        true_ll = np.log(m[np.arange(len(c)), c]).sum()
        flat_ll = np.log(m.mean(axis=0)[c]).sum()
        arch = ds.truth.archetype(u)
        gain[arch] = gain.get(arch, 0.0) + (true_ll - flat_ll)
    assert gain["switch"] > 1000 and gain["gradual"] > 500 and gain["periodic"] > 500
    assert gain["stable"] == pytest.approx(0.0, abs=1e-6)


def test_periodic_users_differ_on_weekends(ds, log):
    gaps = []
    for u, g in log.groupby("u", sort=False):
        if ds.truth.archetype(u) != "periodic":
            continue
        end, week = g.loc[g["weekend"], "c"].to_numpy(), g.loc[~g["weekend"], "c"].to_numpy()
        if len(end) >= 15 and len(week) >= 15:
            gaps.append(tv(end, week))
    assert len(gaps) > 15 and np.mean(gaps) > 0.45


def test_attributes_and_event_types_follow_the_documented_shares(ds, log):
    per_user = log.groupby("u").size()
    band = ds.users.set_index("user_id")["age_band"]
    activity = per_user.groupby(band.loc[per_user.index].to_numpy()).mean()
    assert activity["18-24"] > 1.5 * activity["55+"]  # younger users are more active
    shares = log["type"].value_counts(normalize=True)
    for name, p in {"view": 0.72, "click": 0.18, "cart": 0.06, "purchase": 0.04}.items():
        assert shares[name] == pytest.approx(p, abs=0.015)


def test_the_truth_saved_beside_the_database_round_trips(tmp_path):
    db = tmp_path / "s.duckdb"
    ds = generate(users=40, items=60, events=2_000, categories=5, seed=4)
    build_synthetic(db, users=40, items=60, events=2_000, categories=5, seed=4)
    truth = load_truth(db)
    assert truth.categories == ds.truth.categories
    np.testing.assert_allclose(truth.mixtures, ds.truth.mixtures)
    np.testing.assert_array_equal(truth.change_points_flat, ds.truth.change_points_flat)
    np.testing.assert_array_equal(truth.n_events, ds.truth.n_events)
    with connect_read(db) as con:  # the stored log is the generated one, event for event
        counts = dict(con.execute("SELECT user_id, count(*) FROM events GROUP BY 1").fetchall())
    assert counts == {str(u): int(n) for u, n in zip(truth.user_ids, truth.n_events, strict=True)}
