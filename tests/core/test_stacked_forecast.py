"""The stacked forecast candidate: gates, the combiner, its choice in fit_forecast and its saved form
(core.trajectory.stacked, core.trajectory.forecast)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from core.trajectory.forecast import HALF_LIVES, InterestForecast, fit_forecast, forecast_components
from core.trajectory.stacked import StackedFit, fit_stacked, gate_features


def test_gates_count_categorised_events_and_the_position_in_the_session():
    events = np.array([[1, 0], [0, 0], [0, 1], [0.5, 0.5], [1, 0]], np.float64)  # event 1 has no category
    ts = np.array([0, 10, 1810, 1815, 1815])  # a gap of exactly 1,800 s starts a session (the time grid's rule)
    z = gate_features(events, ts)
    assert z[:, 0].tolist() == pytest.approx(np.log1p([1, 1, 2, 3, 4]).tolist())
    assert z[:, 1].tolist() == pytest.approx(np.log1p([1, 2, 1, 2, 3]).tolist())
    assert gate_features(events, None)[:, 1].tolist() == pytest.approx(np.log1p([1, 2, 3, 4, 5]).tolist())
    assert gate_features(np.zeros((0, 2)), np.zeros(0)).shape == (0, 2)


def test_without_gate_slopes_it_is_the_product_pool():
    rng = np.random.default_rng(1)
    C, K = 3, len(HALF_LIVES)
    comps = np.concatenate([rng.gamma(1.0, 2.0, (6, K, C)), np.tile([0.5, 0.3, 0.2], (6, 1, 1)),
                            rng.dirichlet(np.ones(C), 6)[:, None]], axis=1)
    base = (0.2, 0.5, -0.1, 0.3, 0.0, -0.2, 0.9)
    pseudo = (2.0, 1.0, 3.0, 0.5, 1.5)
    fit = StackedFit(base=base, gate=((0.0,) * 7, (0.0,) * 7), pseudo=pseudo, z_mean=(1.0, 2.0), z_scale=(1.0, 1.0))
    product = InterestForecast(kind="product", prior=(0.5, 0.3, 0.2), bias=base, pseudo=pseudo)
    got = fit.forecast(comps, rng.normal(size=(6, 2)))
    np.testing.assert_allclose(got, product.apply_components(comps), rtol=1e-12)
    # by hand for row 0: exponents on log h_k, log π, log m, then normalised
    prior = np.array([0.5, 0.3, 0.2])
    hist = (comps[0, :K] + np.array(pseudo)[:, None] * prior) / (comps[0, :K].sum(1, keepdims=True) + np.array(pseudo)[:, None])
    logit = (np.array(base[:K])[:, None] * np.log(hist)).sum(0) + base[K] * np.log(prior) + base[K + 1] * np.log(comps[0, -1])
    np.testing.assert_allclose(got[0], np.exp(logit) / np.exp(logit).sum(), rtol=1e-12)


def _switching_log(n: int, seed: int):
    """Targets whose truth is the model's marginal early in a session and the last event's category late in it."""
    rng = np.random.default_rng(seed)
    C, K = 4, len(HALF_LIVES)
    last = rng.integers(0, C, n)  # the category of the event just before each target
    model_top = (last + 1 + rng.integers(0, C - 1, n)) % C  # the model always favours another category
    model = np.full((n, C), 0.1 / (C - 1))
    model[np.arange(n), model_top] = 0.9
    comps = np.zeros((n, K + 2, C))
    comps[np.arange(n), 0, last] = 1.0  # the half-life-1 histogram is the last event
    comps[:, 1:K] = 1.0  # the longer ones are flat
    comps[:, K] = 1.0 / C
    comps[:, K + 1] = model
    late = rng.random(n) < 0.5
    position = np.where(late, rng.integers(20, 60, n), rng.integers(1, 3, n))
    z = np.stack([np.log1p(np.full(n, 80.0)), np.log1p(position)], axis=1)
    truth = np.where(late[:, None], np.eye(C)[last] * 0.85 + 0.15 / C, model)
    y = np.eye(C)[[rng.choice(C, p=p / p.sum()) for p in truth]]
    return comps, z, y, late, last, model_top


def test_fit_forecast_picks_the_stacked_combiner_when_the_truth_moves_with_the_session():
    comps, z, y, late, last, model_top = _switching_log(300, 0)
    prior = np.full(4, 0.25)
    f = fit_forecast(comps, y, prior, gates=z)
    assert f.kind == "stacked"
    held = f.valid["heldout_log_loss"]
    assert held["stacked"] < held["product"] - 0.1  # one exponent set cannot follow the switch
    # on fresh targets from the same log it follows the truth: the last event late in a session, the model early
    comps2, z2, _, late2, last2, top2 = _switching_log(200, 1)
    p = f.apply_stacked(comps2, z2)
    rows = np.arange(200)
    assert p[rows[late2], last2[late2]].mean() > 0.7
    assert p[rows[~late2], top2[~late2]].mean() > 0.7
    # without gates the candidate does not compete (the earlier behaviour)
    assert "stacked" not in fit_forecast(comps[:40], y[:40], prior).valid["heldout_log_loss"]


def test_stacked_forecast_round_trips_through_json_and_is_causal():
    comps, z, y, *_ = _switching_log(200, 2)
    perm = np.random.default_rng(0).permutation(200)
    *_, fit = fit_stacked(comps, z, y, (perm[:100], perm[100:]))
    f = InterestForecast(kind="stacked", prior=(0.25,) * 4, stacked=fit.to_dict())
    back = InterestForecast.from_dict(json.loads(json.dumps(f.to_dict())))
    rng = np.random.default_rng(3)
    events = np.eye(4)[rng.integers(0, 4, 30)]
    model_dist = rng.dirichlet(np.ones(4), 30)
    ts = np.cumsum(rng.choice([5, 60, 4000], 30))
    p = back.apply(model_dist, events, ts)
    np.testing.assert_allclose(p, f.apply(model_dist, events, ts), rtol=1e-12)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)
    comps_h, _ = forecast_components(model_dist, events, np.full(4, 0.25))
    np.testing.assert_allclose(p, f.apply_stacked(comps_h, gate_features(events, ts)), rtol=1e-12)
    cut = back.apply(model_dist[:12], events[:12], ts[:12])  # a later event changes nothing earlier
    np.testing.assert_allclose(cut, p[:12], rtol=1e-12)
    with pytest.raises(ValueError, match="session"):
        f.apply_components(comps_h)
    assert all(math.isfinite(v) for v in f.stacked["base"])
