"""Trajectory measures and change points on hand-computed examples."""

import math

import numpy as np
import pytest
import torch

from core.trajectory import (
    auto_penalty,
    category_distribution,
    decayed_histogram,
    describe_changes,
    detect_change_points,
    drift_series,
    js_divergence,
    total_variation,
)


def test_distribution_splits_multi_category_items_and_sums_to_one():
    # items 1..3: item 1 in {A}, item 2 in {A, B}, item 3 in {C}; index 0 is padding (-inf)
    w = torch.tensor([[0, 0, 0], [1, 0, 0], [0.5, 0.5, 0], [0, 0, 1]], dtype=torch.float32)
    logits = torch.tensor([[-math.inf, 0.0, math.log(2.0), math.log(5.0)]])  # softmax = 1/8, 2/8, 5/8
    p = category_distribution(logits, w).numpy()[0]
    np.testing.assert_allclose(p, [1 / 8 + 1 / 8, 1 / 8, 5 / 8], atol=1e-6)
    assert p.sum() == pytest.approx(1.0, abs=1e-9)


def test_distribution_renormalises_over_categorised_items():
    w = torch.tensor([[0, 0], [1, 0], [0, 1], [0, 0]], dtype=torch.float32)  # item 3 has no category
    logits = torch.tensor([[-math.inf, 0.0, 0.0, math.log(2.0)]])  # 1/4, 1/4, 1/2 (uncategorised)
    p = category_distribution(logits, w).numpy()[0]
    np.testing.assert_allclose(p, [0.5, 0.5], atol=1e-6)


def test_js_divergence_known_pairs():
    assert js_divergence([1.0, 0.0], [0.0, 1.0]) == pytest.approx(1.0)
    assert js_divergence([0.3, 0.7], [0.3, 0.7]) == pytest.approx(0.0)
    # P = (1, 0), Q = (½, ½), M = (¾, ¼): ½·log2(4/3) + ½·(½·log2(2/3) + ½·log2(2))
    expected = 0.5 * math.log2(4 / 3) + 0.5 * (0.5 * math.log2(2 / 3) + 0.5 * 1.0)
    assert js_divergence([1.0, 0.0], [0.5, 0.5]) == pytest.approx(expected, abs=1e-12)
    assert js_divergence([0.5, 0.5], [1.0, 0.0]) == pytest.approx(expected, abs=1e-12)  # symmetric
    rows = js_divergence(np.array([[1.0, 0.0], [0.5, 0.5]]), np.array([[0.0, 1.0], [0.5, 0.5]]))
    np.testing.assert_allclose(rows, [1.0, 0.0], atol=1e-12)


def test_total_variation_known_pair():
    assert total_variation([0.5, 0.5, 0.0], [0.2, 0.3, 0.5]) == pytest.approx(0.5)


def test_decayed_histogram_by_hand():
    # categories of three events: A, B, then an item in A and B; half-life 1 event (decay ½ per event)
    w = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    h = decayed_histogram(w, half_life=1.0)
    np.testing.assert_allclose(h[0], [1.0, 0.0])
    np.testing.assert_allclose(h[1], [1 / 3, 2 / 3])  # (½, 1) normalised
    np.testing.assert_allclose(h[2], [3 / 7, 4 / 7])  # (¼ + ½, ½ + ½) normalised
    cumulative = decayed_histogram(w, half_life=math.inf)
    np.testing.assert_allclose(cumulative[2], [0.5, 0.5])
    np.testing.assert_allclose(decayed_histogram(np.zeros((2, 4)), 5.0), np.full((2, 4), 0.25))  # nothing seen yet


def test_drift_series_compares_w_steps_back():
    p = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0]])
    np.testing.assert_allclose(drift_series(p, 2), [0.0, 0.0, 1.0, 1.0, 0.0])
    np.testing.assert_allclose(drift_series(p, 1), [0.0, 0.0, 1.0, 0.0, 0.0])
    with pytest.raises(ValueError):
        drift_series(p, 0)


def _steps(levels, lengths, noise, seed=0):
    rng = np.random.default_rng(seed)
    x = np.concatenate([np.tile(lv, (n, 1)) for lv, n in zip(levels, lengths, strict=True)])
    return x + rng.normal(0, noise, x.shape)


def test_change_points_found_on_a_step_signal():
    a, b, c = [0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]
    x = _steps([a, b, c], [40, 30, 50], noise=0.03)
    assert detect_change_points(x) == [40, 70]


def test_no_change_points_on_a_steady_noisy_signal():
    x = _steps([[0.5, 0.3, 0.2]], [150], noise=0.05, seed=3)
    assert detect_change_points(x) == []
    assert detect_change_points(x[:6]) == []  # too short to split


def test_penalty_scales_with_noise():
    quiet = _steps([[0.5, 0.5]], [100], noise=0.01)
    loud = _steps([[0.5, 0.5]], [100], noise=0.1)
    assert auto_penalty(loud) == pytest.approx(100 * auto_penalty(quiet), rel=0.35)


def test_describe_changes_reports_dominant_interests_either_side():
    dist = np.array([[0.8, 0.2]] * 5 + [[0.1, 0.9]] * 5)
    times = np.arange(10).astype("datetime64[D]").astype("datetime64[s]")
    events = np.array([[1.0, 0.0]] * 4 + [[0.0, 1.0]] * 6)  # what the user did: Books, then Music from step 4
    (cp,) = describe_changes(dist, [5], ["Books", "Music"], times, top=1, events=events)
    assert cp.step == 5 and cp.time == np.datetime64("1970-01-06T00:00:00")
    # events before: 4 Books + 1 Music -> (0.8, 0.2); after: all Music
    assert cp.observed_divergence == pytest.approx(float(js_divergence([0.8, 0.2], [0.0, 1.0])))
    assert cp.before == [("Books", pytest.approx(0.8))] and cp.after == [("Music", pytest.approx(0.9))]
    assert cp.divergence == pytest.approx(float(js_divergence([0.8, 0.2], [0.1, 0.9])))


def test_small_changes_are_merged_by_the_minimum_divergence():
    a, b, c = [0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [0.1, 0.2, 0.7]  # a -> b is small, b -> c is large
    x = _steps([a, b, c], [40, 40, 40], noise=0.01, seed=1)
    assert js_divergence(a, b) < 0.05 < 0.3 < js_divergence(b, c)
    assert detect_change_points(x, min_divergence=0.0) == [40, 80]
    assert detect_change_points(x) == [80]  # the default keeps only changes of at least MIN_DIVERGENCE bits
