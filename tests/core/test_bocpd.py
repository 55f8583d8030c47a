"""The change-point (BOCPD) forecast: the recursion against a brute-force sum over every segmentation, the
no-change limit, causality, sessions, and its place among the forecast's candidates."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from core.trajectory.bocpd import BocpdParams, bocpd_parts, bocpd_steps, new_moments
from core.trajectory.bocpd_fit import BocpdInputs
from core.trajectory.forecast import BOCPD_KINDS, InterestForecast, fit_forecast, forecast_components
from core.trajectory.timegrid import SESSION_GAP_S, sessions

PI = np.array([0.4, 0.3, 0.2, 0.1])


def _brute_force(x: np.ndarray, p: BocpdParams, moments: np.ndarray | None = None, h_next: float | None = None) -> np.ndarray:
    """The forecast of the event after x [n, C] by summing over every segmentation whose cuts fall on moments
    (default: every event).

    A segment's mix is Dirichlet(α·b) with b = ω·(counts before the segment + κπ)/(their total + κ) + (1 − ω)π;
    an event's likelihood is Π_c p(c)^y(c); then one more step: a new segment with probability h_next (default h)."""
    n, _ = x.shape
    a, h, om, ka = p.alpha, p.hazard, p.long_weight, p.kappa
    moments = np.ones(n, bool) if moments is None else moments
    h_next = h if h_next is None else h_next

    def base(before: np.ndarray) -> np.ndarray:
        return om * (before + ka * PI) / (before.sum() + ka) + (1 - om) * PI

    num, den = np.zeros(len(PI)), 0.0
    for cuts in itertools.product([0, 1], repeat=n - 1):
        if any(c and not moments[t + 1] for t, c in enumerate(cuts)):
            continue
        starts = [0] + [t + 1 for t, c in enumerate(cuts) if c]
        prior_w = np.prod([(h if c else 1 - h) if moments[t + 1] else 1.0 for t, c in enumerate(cuts)])
        like = 1.0
        for t in range(n):
            s = max(st for st in starts if st <= t)
            seg = x[s:t].sum(axis=0)
            pr = (seg + a * base(x[:s].sum(axis=0))) / (seg.sum() + a)
            like *= np.prod(pr ** x[t])
        s = starts[-1]
        seg = x[s:].sum(axis=0)
        cont = (seg + a * base(x[:s].sum(axis=0))) / (seg.sum() + a)
        new = base(x.sum(axis=0))
        num += prior_w * like * ((1 - h_next) * cont + h_next * new)
        den += prior_w * like
    return num / den


def test_recursion_equals_the_sum_over_segmentations_on_four_events():
    x = np.array([[1, 0, 0, 0], [1, 0, 0, 0], [0, 0.5, 0.5, 0], [0, 0, 0, 1.0]])  # one two-category item
    p = BocpdParams(hazard=0.3, alpha=2.0, long_weight=0.6, kappa=1.5, max_run=10)
    got = bocpd_steps(x, np.ones(4, bool), PI, p).forecast()
    np.testing.assert_allclose(got[-1], _brute_force(x, p), rtol=1e-12)
    np.testing.assert_allclose(got[1], _brute_force(x[:2], p), rtol=1e-12)  # every row, not only the last


def test_no_hazard_is_the_plain_dirichlet_posterior_and_the_model_enters_the_base():
    rng = np.random.default_rng(0)
    x = np.eye(4)[rng.integers(0, 4, 25)]
    p = BocpdParams(hazard=0.0, alpha=3.0, long_weight=0.8, max_run=40)
    parts = bocpd_steps(x, np.ones(25, bool), PI, p)
    cum = np.cumsum(x, axis=0)
    np.testing.assert_allclose(parts.forecast(), (cum + 3.0 * PI) / (cum.sum(1, keepdims=True) + 3.0), atol=1e-14)
    m = np.tile([0.1, 0.1, 0.1, 0.7], (25, 1))
    base = 0.75 * PI + 0.25 * m
    np.testing.assert_allclose(parts.forecast(m, 0.25), (cum + 3.0 * base) / (cum.sum(1, keepdims=True) + 3.0),
                               atol=1e-14)


def test_causal_batched_and_truncated_runs_agree():
    rng = np.random.default_rng(1)
    x = np.eye(4)[rng.integers(0, 4, 40)]
    p = BocpdParams(hazard=0.05, alpha=2.0, max_run=60)
    full = bocpd_steps(x, np.ones(40, bool), PI, p).forecast()
    later = x.copy()
    later[25:] = np.eye(4)[3]
    changed = bocpd_steps(later, np.ones(40, bool), PI, p).forecast()
    np.testing.assert_array_equal(changed[:25], full[:25])  # a later event changes nothing earlier
    assert not np.allclose(changed[25:], full[25:])
    batch = bocpd_parts([x[:k] for k in (40, 7, 19)], [np.ones(k, bool) for k in (40, 7, 19)], PI, p).forecast()
    np.testing.assert_allclose(batch, full[[39, 6, 18]], atol=1e-14)  # each history on its own, in any order
    short = bocpd_steps(x, np.ones(40, bool), PI, BocpdParams(hazard=0.05, alpha=2.0, max_run=41)).forecast()
    np.testing.assert_allclose(short, full, atol=1e-14)  # no run is cut while the history fits


def test_a_bulk_sitting_is_one_moment():
    ts = np.array([0, 60, 120, 10_000, 10_030, 90_000])
    np.testing.assert_array_equal(new_moments(ts, 6, BocpdParams(per_session=True)), [1, 0, 0, 1, 0, 1])
    np.testing.assert_array_equal(new_moments(ts, 6, BocpdParams()), np.ones(6, bool))
    # the boundary follows the time grid: a gap of exactly 30 minutes starts a new sitting, as on the chart
    edge = np.array([0, SESSION_GAP_S - 1, 2 * SESSION_GAP_S - 1, 2 * SESSION_GAP_S + 5])
    np.testing.assert_array_equal(new_moments(edge, 4, BocpdParams(per_session=True)), [1, 0, 1, 0])
    np.testing.assert_array_equal(new_moments(edge, 4, BocpdParams(per_session=True)),
                                  np.r_[True, np.diff(sessions(edge)) > 0])
    x = np.eye(4)[[0, 0, 0, 1, 1, 2]]
    session = BocpdParams(hazard=0.3, alpha=1.0, long_weight=0.5, per_session=True)
    mom = new_moments(ts, 6, session)
    got = bocpd_steps(x, mom, PI, session).forecast()
    # cuts only where a sitting starts; the next event opens one at the user's rate so far, (3 + 1) / (6 + 2)
    np.testing.assert_allclose(got[-1], _brute_force(x, session, mom, 0.3 * 4 / 8), rtol=1e-12)


def test_settings_are_checked():
    with pytest.raises(ValueError):
        BocpdParams(hazard=1.5)
    with pytest.raises(ValueError):
        BocpdParams(max_run=1)


def test_fit_forecast_takes_the_change_point_candidate_on_switching_users_and_round_trips():
    rng = np.random.default_rng(1)
    C = 6
    prior = np.full(C, 1 / C)
    histories, ys, comps = [], [], []
    for _ in range(120):  # sparse tastes, redrawn with probability 0.04 before each event (the filter's own model)
        n = int(rng.integers(30, 50))
        m = rng.dirichlet(np.full(C, 0.3))
        cats = []
        for _t in range(n + 1):
            if rng.random() < 0.04:
                m = rng.dirichlet(np.full(C, 0.3))
            cats.append(rng.choice(C, p=m))
        ev = np.eye(C)[cats]
        histories.append(ev[:n])
        ys.append(ev[n])
        c, _ = forecast_components(np.full((n, C), 1 / C), ev[:n], prior)
        comps.append(c[-1])
    inputs = BocpdInputs(histories, [None] * len(histories))
    f = fit_forecast(np.stack(comps), np.stack(ys), prior, bocpd=inputs)
    assert f.kind in BOCPD_KINDS
    assert f.valid["heldout_log_loss"][f.kind] < f.valid["heldout_log_loss"]["mixture"]
    assert f.valid["heldout_log_loss"][f.kind] == min(f.valid["heldout_log_loss"].values())
    back = InterestForecast.from_dict(f.to_dict())
    assert back == f
    ev = histories[0]
    p = back.apply(np.full((len(ev), C), 1 / C), ev)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    one = back.apply_parts(inputs.subset(np.array([0])).parts(prior, bocpd_params(back)), np.full((1, C), 1 / C))
    np.testing.assert_allclose(p[-1], one[0], atol=1e-12)
    with pytest.raises(ValueError):
        back.apply_components(np.stack(comps))


def bocpd_params(f: InterestForecast) -> BocpdParams:
    from core.trajectory.bocpd_fit import BocpdFit

    return BocpdFit.from_dict(f.bocpd).params
