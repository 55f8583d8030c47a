"""The calibrated category forecast, its scores and the long/short decomposition (core.trajectory.forecast,
core.trajectory.horizons, core.trajectory.interest)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.sequences import Vocab
from core.trajectory import interest as interest_mod
from core.trajectory.forecast import InterestForecast, cross_entropy, fit_forecast, forecast_components
from core.trajectory.horizons import decompose, plain_reading
from core.trajectory.interest import BASELINE_HALF_LIVES, TargetInputs, forecast_scores, tune_histogram
from core.trajectory.planted import switch_change


def test_scores_match_hand_computation():
    p = np.array([[0.5, 0.5], [0.9, 0.1]])
    y = np.array([[1.0, 0.0], [0.0, 1.0]])
    s = forecast_scores(p, y)
    assert s.log_loss == pytest.approx((math.log(2) + math.log(10)) / 2)
    assert s.log_loss_any == pytest.approx(s.log_loss)  # single-category targets: the two readings agree
    assert s.brier == pytest.approx((0.25 + 0.25 + 0.81 + 0.81) / 2)
    # pairs (0.5, 1), (0.5, 0) in bin 5: |0.5 - 0.5| = 0; (0.9, 0) in bin 9 and (0.1, 1) in bin 1: 0.9 each
    assert s.ece == pytest.approx((0.0 * 2 + 0.9 + 0.9) / 4)
    # top label: row 1 picks category 0 (0.5, outcome 1), row 2 category 0 (0.9, outcome 0)
    assert s.ece_top == pytest.approx((0.5 + 0.9) / 2)
    assert s.entropy == pytest.approx((math.log(2) - (0.9 * math.log(0.9) + 0.1 * math.log(0.1))) / 2)
    assert s.entropy_gap == pytest.approx(s.entropy - s.log_loss)
    bins = {b["lo"]: b for b in s.reliability}
    assert bins[0.5]["count"] == 2 and bins[0.9]["observed"] == 0.0 and bins[0.1]["observed"] == 1.0
    assert sum(b["count"] for b in s.reliability) == 4


def test_multi_category_item_counts_as_an_equal_split():
    vocab = Vocab(items=["a", "b"], categories=["x", "y", "z"], event_types=[], item_categories=[[0, 1], [2]])
    w = vocab.category_weights().numpy()
    assert w[1].tolist() == [0.5, 0.5, 0.0] and w[2].tolist() == [0.0, 0.0, 1.0]
    p = np.array([[0.5, 0.25, 0.25]])
    assert cross_entropy(p, w[1:2])[0] == pytest.approx(-(0.5 * math.log(0.5) + 0.5 * math.log(0.25)))
    s = forecast_scores(p, w[1:2])
    assert s.log_loss_any == pytest.approx(-math.log(0.75))  # the mass on x or y
    # a perfectly calibrated forecast of a two-category item is the split itself: it scores best
    assert cross_entropy(w[1:2] * 0.98 + 0.02 / 3, w[1:2])[0] < cross_entropy(p, w[1:2])[0]


def _inputs(y: np.ndarray, best: float, prior: np.ndarray) -> TargetInputs:
    """Targets whose decayed counts at half-life `best` are exactly the target, and the prior at every other."""
    n, C = y.shape
    counts = {h: np.tile(prior * 5, (n, 1)) for h in BASELINE_HALF_LIVES}
    counts[best] = y * 50.0
    return TargetInputs(np.arange(n), np.arange(n), y, np.tile(prior, (n, 1)), np.zeros((n, 7, C)), np.zeros(n), counts)


def test_histogram_half_life_follows_the_targets_it_is_given():
    rng = np.random.default_rng(0)
    y = np.eye(4)[rng.integers(0, 4, 40)]
    prior = np.full(4, 0.25)
    assert tune_histogram(_inputs(y, 3, prior), prior).half_life == 3
    assert tune_histogram(_inputs(y, 50, prior), prior).half_life == 50


def test_report_tunes_on_validation_targets(monkeypatch, trained_model_dir, synthetic_db):
    from core.checkpoint import load_checkpoint
    from core.evaluate import split_from_card
    from core.sequences import load_sequences
    from core.store import connect_read

    loaded = load_checkpoint(trained_model_dir)
    with connect_read(synthetic_db) as con:
        seqs = load_sequences(con, loaded.vocab)
    split = split_from_card(seqs, loaded.card.get("split"))
    seen = []
    real = interest_mod.tune_histogram
    monkeypatch.setattr(interest_mod, "tune_histogram", lambda inputs, pr: seen.append(inputs) or real(inputs, pr))
    report = interest_mod.interest_report(loaded, seqs, split)
    valid_targets = set(split.targets("valid")[1].tolist())
    assert len(seen) == 1 and set(seen[0].targets.tolist()) <= valid_targets
    assert not set(seen[0].targets.tolist()) & set(split.targets("test")[1].tolist())
    assert report["forecast"]["targets"] > 0 and report["histogram"]["targets"] == report["forecast"]["targets"]


def test_fitted_mixture_beats_a_flat_model_and_is_causal():
    rng = np.random.default_rng(1)
    C, prior = 5, np.full(5, 0.2)
    comps, seen, ys = [], [], []
    for _ in range(300):  # users with one favourite category; the "model" knows nothing (uniform)
        fav = rng.integers(0, C)
        cats = np.where(rng.random(30) < 0.8, fav, rng.integers(0, C, 30))
        ev = np.eye(C)[cats]
        c, s = forecast_components(np.full((30, C), 0.2), ev, prior)
        t = rng.integers(5, 29)
        comps.append(c[t])
        seen.append(s[t])
        ys.append(ev[t + 1])
    fc = fit_forecast(np.stack(comps), np.stack(ys), prior)
    assert fc.kind in ("mixture", "product")  # a pool of the user's histograms, not the flat model
    assert fc.valid["log_loss"][fc.kind] < fc.valid["log_loss"]["model"] - 0.3
    assert fc.valid["log_loss"][fc.kind] == min(fc.valid["log_loss"].values())
    ev = np.eye(C)[rng.integers(0, C, 20)]
    p = fc.apply(np.full((20, C), 0.2), ev)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    ev2 = ev.copy()
    ev2[12:] = np.eye(C)[0]
    p2 = fc.apply(np.full((20, C), 0.2), ev2)
    np.testing.assert_array_equal(p[:12], p2[:12])
    assert not np.allclose(p[12:], p2[12:])
    back = InterestForecast.from_dict(fc.to_dict())
    np.testing.assert_allclose(back.apply(np.full((20, C), 0.2), ev), p)


def test_short_weight_rises_after_a_planted_switch_and_stays_low_when_stable():
    rng = np.random.default_rng(2)
    C, prior = 6, np.full(6, 1 / 6)
    switched, stable, cps = [], [], []
    for _ in range(30):
        a, b = rng.choice(C, 2, replace=False)
        cats = np.concatenate([np.where(rng.random(30) < 0.9, a, rng.integers(0, C, 30)),
                               np.where(rng.random(30) < 0.9, b, rng.integers(0, C, 30))])
        switched.append(decompose(np.eye(C)[cats], prior).short_weight)
        cps.append([30])
        cats = np.where(rng.random(60) < 0.9, a, rng.integers(0, C, 60))
        stable.append(decompose(np.eye(C)[cats], prior).short_weight)
    change = switch_change(switched, cps)
    assert change["switches"] == 30 and change["mean_change"] > 0.3 and change["ci95"][0] > 0.2
    assert np.mean([s[10:].mean() for s in stable]) < 0.35
    # causality: a different future leaves every earlier share unchanged
    ev = np.eye(C)[np.zeros(40, int)]
    ev2 = ev.copy()
    ev2[25:] = np.eye(C)[3]
    np.testing.assert_array_equal(decompose(ev, prior).short_weight[:25], decompose(ev2, prior).short_weight[:25])


def test_plain_reading():
    s = np.r_[np.full(20, 0.3), 0.62]
    assert plain_reading(s) == "Recent events weigh 62% against the long-term profile — higher than this user's usual (30%)."
    assert "lower than" in plain_reading(np.r_[np.full(20, 0.6), 0.2])
    assert "about this user's usual" in plain_reading(np.full(20, 0.4))
    assert "too few events" in plain_reading(np.array([0.5, 0.5]))
    assert plain_reading(np.array([])).startswith("No events")
