"""The Bayes oracle's filter (bench/bayes_filter.py): exact where the model is conjugate (no browsing noise),
against hand-built posteriors, and the TV-optimal point against a linear program."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linprog

from bench.bayes_filter import Ramp, Segments, ramp_grid, run_filter, tv_optimal
from bench.trajectory_oracles import planted_hazard


def _dirmult(x: np.ndarray, A: np.ndarray) -> float:
    """Sequential likelihood of categories x under one Dirichlet(A) taste."""
    counts, like = np.zeros_like(A), 1.0
    for c in x:
        like *= (counts[c] + A[c]) / (counts.sum() + A.sum())
        counts[c] += 1
    return like


def test_stable_users_get_the_dirichlet_posterior_mean():
    A = np.array([0.5, 0.2, 0.3])
    cats = np.array([0, 0, 2, 1, 0])
    p, lp, _ = run_filter(cats, [Segments(A, 0.0, [(0, 1.0)], planted_hazard(5))])
    counts = np.cumsum(np.eye(3)[cats], axis=0)
    np.testing.assert_allclose(p, (counts + A) / (counts.sum(1, keepdims=True) + A.sum()), atol=1e-14)
    assert np.isclose(np.exp(lp.sum()), _dirmult(cats, A))


def test_one_switch_posterior_equals_enumerating_its_positions():
    """n = 24 events: stable (0.35) or one switch uniform on 8..16 (0.45), the planted generator's law."""
    n, A = 24, np.full(3, 0.4)
    rng = np.random.default_rng(0)
    cats = np.concatenate([np.zeros(10, int), np.full(14, 2)])
    cats[rng.random(n) < 0.2] = 1
    p, _, _ = run_filter(cats, [Segments(A, 0.0, [(0, 0.35), (1, 0.45)], planted_hazard(n))])
    for t in (5, 9, 12, 20):  # the forecast of event t + 1 from events 0..t
        seen = cats[: t + 1]
        hyps = [(0.35, None)] + [(0.45 / 9, s) for s in range(8, 17)]
        num, den = np.zeros(3), 0.0
        for prior, s in hyps:
            if s is None or s > t + 1:  # event t + 1 still in the first segment
                w = prior * _dirmult(seen, A)
                seg = seen
            else:
                w = prior * _dirmult(seen[:s], A) * _dirmult(seen[s:], A)
                seg = seen[s:]
            counts = np.bincount(seg, minlength=3)
            num += w * (counts + A) / (counts.sum() + A.sum())
            den += w
        np.testing.assert_allclose(p[t], num / den, rtol=1e-10)


def test_ramp_grid_and_state_weights_are_laws():
    a, e, prob = ramp_grid(40, (0.15, 0.45), (0.55, 0.9))
    assert np.isclose(prob.sum(), 1.0) and np.all(e > a) and a.min() == 6 and e.max() == 35
    big = ramp_grid(2000, (0.15, 0.45), (0.55, 0.9), max_grid=30)
    assert len(big[0]) == 900 and np.isclose(big[2].sum(), 1.0)
    A = np.full(3, 0.5)
    cats = np.array([0, 0, 0, 1, 1, 1])
    p, _, _ = run_filter(cats, [Ramp(A, 0.0, np.array([2.0]), np.array([4.0]), np.array([1.0]))])
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    assert p[-1, 1] > p[-1, 0]  # after the ramp every event comes from the second taste


def test_tv_optimal_point_solves_the_linear_program():
    rng = np.random.default_rng(2)
    for S, C in ((7, 3), (40, 5)):
        q = rng.dirichlet(np.full(C, 0.4), S)
        p = tv_optimal(q)
        ours = np.abs(p[None, :] - q).sum()
        # variables p (C) and t (S·C): min Σ t s.t. t ≥ ±(p − q), Σ p = 1, p ≥ 0
        cost = np.concatenate([np.zeros(C), np.ones(S * C)])
        eye = np.kron(np.ones((S, 1)), np.eye(C))
        a_ub = np.vstack([np.hstack([eye, -np.eye(S * C)]), np.hstack([-eye, -np.eye(S * C)])])
        b_ub = np.concatenate([q.reshape(-1), -q.reshape(-1)])
        lp = linprog(cost, A_ub=a_ub, b_ub=b_ub, A_eq=np.concatenate([np.ones(C), np.zeros(S * C)])[None, :],
                     b_eq=[1.0], bounds=[(0, None)] * (C + S * C))
        assert np.isclose(p.sum(), 1.0) and np.all(p >= 0)
        assert np.isclose(ours, lp.fun, rtol=1e-9)
