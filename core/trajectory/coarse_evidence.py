"""Evidence of segmentations, ramps and a weekly rhythm when an item has several categories: "one of them".

An event on an item tagged {Comedy, Horror} says the user's choice was Comedy *or* Horror, not half of each. Its
likelihood under a category mix p is therefore p(Comedy) + p(Horror) (coarse data: the item's other factors are the
same under every model compared and cancel). Under a Dirichlet(α) prior this has no closed form, so each model is
scored prequentially, the product of one-step-ahead predictive probabilities, each a proper probability of what
was seen given what came before: event i has probability Σ_{c ∈ tags_i} p̂_i(c), and the Dirichlet's counts are
then updated by the posterior share of each of its tags, p̂_i(c) / Σ_{c' ∈ tags_i} p̂_i(c') (assumed-density
filtering). For a single-category item this is exactly the Dirichlet–multinomial evidence.

The same rule scores each model the detector compares, so they stand on one scale:
- `coarse_segments`: every segment of grid rows (the `segment_evidence` interface);
- `coarse_ramp_scores`: a linear drift from mix a to mix b between events s and e, whose predictive at event i is
  (1 − λ_i)·â + λ_i·b̂ (λ_i the share of the way through, 0 before s, 1 from e), each tag's posterior share split
  between a and b in proportion to their terms; with e = s + 1 it is the step at e;
- `coarse_weekly`: one mix at weekends (UTC), another on weekdays.

The Dirichlet prior may be a vector (`dirichlet_prior`): α + w·m, m the user's overall category mix, so a
segment's mix is drawn around the user's usual categories rather than uniformly over every category the user
touched (empirical Bayes: the segments of one history share a base measure). A scalar α is the symmetric prior.

Shapes: n events, C categories, G grid rows, P ramp positions.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from core.trajectory.bayes_changes import weekend_mask

__all__ = ["dirichlet_prior", "row_events", "coarse_segments", "coarse_ramp_scores", "coarse_ramp_evidence", "coarse_weekly"]


def _tags(events: np.ndarray) -> np.ndarray:
    return (np.asarray(events, np.float64) > 0).astype(np.float64)


def _concentration(alpha: float | np.ndarray, C: int) -> tuple[np.ndarray, float]:
    """([C] the Dirichlet's concentration per category, its total) from a scalar (symmetric) or a [C] vector."""
    a = np.broadcast_to(np.asarray(alpha, np.float64), (C,))
    return a, float(a.sum())


def dirichlet_prior(events: np.ndarray, alpha: float, base_weight: float) -> np.ndarray:
    """[C] concentration α + `base_weight`·m, m the history's overall category mix (each event's weights summed,
    then normalised; the uniform mix for a history without any). events [n, C] category weights. Every entry is
    at least α > 0; `base_weight` = 0 gives the symmetric Dirichlet(α)."""
    x = np.asarray(events, np.float64)
    total = x.sum(axis=0)
    mix = total / total.sum() if total.sum() > 0 else np.full(x.shape[1], 1.0 / x.shape[1])
    return alpha + base_weight * mix


def row_events(events: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """[G+1] cumulative events with a category per grid row (0 first). events [n, C], starts [G] first event of
    each row, starts[0] = 0; an event without any category does not count."""
    t = _tags(events)
    row = np.searchsorted(np.asarray(starts, np.int64), np.arange(len(t)), side="right") - 1  # [n] row of each event
    per_row = np.bincount(row, weights=(t.sum(axis=1) > 0).astype(np.float64), minlength=len(starts))
    return np.concatenate([[0.0], np.cumsum(per_row)])


def coarse_segments(events: np.ndarray, starts: np.ndarray, alpha: float | np.ndarray):
    """A function (a [S] rows, b [S] rows) -> [S] log evidence of grid rows a..b-1 (their events in order), and
    [G+1] cumulative events per row. events [n, C] (an event's categories are its positive entries; an event
    without any is skipped), starts [G] first event of each row, starts[0] = 0; alpha a scalar or [C]."""
    t = _tags(events)
    n, C = t.shape
    a_c, a_sum = _concentration(alpha, C)
    s = np.asarray(starts, np.int64)
    G = len(s)
    row = np.searchsorted(s, np.arange(n), side="right") - 1  # [n] row of each event
    counts = np.zeros((G, C))  # per segment start a: its Dirichlet's counts so far
    seen = np.zeros(G)  # per segment start a: counts.sum(axis=1), its tagged events so far (each adds 1 in all)
    logev = np.zeros(G)  # per segment start a: log evidence so far
    table = np.zeros((G, G + 1))  # table[a, b]: log evidence of rows a..b-1
    for i in range(n):
        if i > 0 and row[i] != row[i - 1]:
            table[:, row[i]] = logev
        cols = np.flatnonzero(t[i])  # only the event's own tags have a term: [a, tags], not [a, C]
        if not len(cols):
            continue
        live = row[i] + 1  # segments that have started by event i
        hit = (counts[:live, cols] + a_c[cols]) / (seen[:live] + a_sum)[:, None]  # [a, tags]
        lik = hit.sum(axis=1)
        logev[:live] += np.log(lik)
        counts[:live, cols] += hit / lik[:, None]
        seen[:live] += 1.0
    table[:, G] = logev
    ev = row_events(t, s)

    def evidence(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        # a segment starting at row a is scored from its first event on, so table[a, b] counts rows a..b-1 only
        return table[np.asarray(a, np.int64), np.asarray(b, np.int64)]

    return evidence, ev


def coarse_ramp_scores(
    events: np.ndarray, alpha: float | np.ndarray, points: int = 30,
) -> tuple[np.ndarray, np.ndarray]:
    """([P, 2] the (s, e) grid, 0 ≤ s < e ≤ n in steps of about n / `points`; [P] the log evidence of the ramp from
    s to e). events [n, C]; alpha a scalar or [C] (each end mix's Dirichlet)."""
    t = _tags(events)
    n, C = t.shape
    a_c, a_sum = _concentration(alpha, C)
    step = max(1, n // points)
    grid = np.array([(s, e) for s in range(0, n, step) for e in range(s + 1, n + 1, step)], np.int64).reshape(-1, 2)
    P = len(grid)
    a = np.zeros((C, P))  # each ramp's counts for its start mix, category-major: an event reads whole rows
    b = np.zeros((C, P))  # and for its end mix
    a_den = np.full(P, a_sum)  # a.sum(axis=0) + Σα, kept as it grows
    b_den = np.full(P, a_sum)
    logev = np.zeros(P)
    span = (grid[:, 1] - grid[:, 0]).astype(np.float64)
    # Only an event's own tags (one to three of C) have a non-zero term, so each step touches [tags, P], not [C, P]:
    # this loop was most of a user switch's CPU on ML-100k (bench/dashboard_ab.py, docs/dashboard.md).
    for i in range(n):
        cols = np.flatnonzero(t[i])
        if not len(cols):
            continue
        lam = np.clip((i - grid[:, 0]) / span, 0.0, 1.0)  # [P] share of the way through each ramp
        pa = (a[cols] + a_c[cols, None]) * ((1 - lam) / a_den)  # [tags, P]
        pb = (b[cols] + a_c[cols, None]) * (lam / b_den)
        lik = pa.sum(axis=0) + pb.sum(axis=0)
        logev += np.log(lik)
        pa /= lik
        pb /= lik
        a[cols] += pa
        b[cols] += pb
        a_den += pa.sum(axis=0)
        b_den += pb.sum(axis=0)
    return grid, logev


def coarse_ramp_evidence(events: np.ndarray, alpha: float | np.ndarray, points: int = 30, min_span: float = 0.0) -> float:
    """Log marginal likelihood of a drift whose start and end are integrated out: the log-mean-exp of
    `coarse_ramp_scores` over the ramps spanning at least `min_span` of the history (0: down to a step)."""
    grid, scores = coarse_ramp_scores(events, alpha, points)
    keep = grid[:, 1] - grid[:, 0] >= max(1.0, min_span * len(events))
    return float(logsumexp(scores[keep]) - np.log(keep.sum())) if keep.any() else -np.inf


def coarse_weekly(events: np.ndarray, ts: np.ndarray, alpha: float | np.ndarray) -> float:
    """Log evidence of one mix on weekend days (Saturday, Sunday UTC) and another on weekdays, each group's events
    scored in order. events [n, C], ts [n] unix seconds or datetime64."""
    weekend = weekend_mask(ts)
    x = np.asarray(events, np.float64)
    total = 0.0
    for part in (x[weekend], x[~weekend]):
        if len(part):
            evidence, _ = coarse_segments(part, np.array([0]), alpha)
            total += float(evidence(np.array([0]), np.array([1]))[0])
    return total
