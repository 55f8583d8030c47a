"""Change points by Bayesian model comparison on the grid of moments (`ChangeConfig.method = "bayes"`).

Each segment's categories are scored by their Dirichlet–multinomial marginal likelihood (a symmetric Dirichlet(α)
over the categories the user touched): log ML = log Γ(Cα) − log Γ(Cα + m) + Σ_c [log Γ(α + m_c) − log Γ(α)], which
charges every extra segment for the mixture it must learn, so no hand-set penalty per change is needed. For k = 0
… `max_changes` the best segmentation with k changes between moment starts (every segment holding `min_segment`
events or more) is found exactly by dynamic programming, and the k with the highest marginal likelihood, less
`change_penalty` per change, is kept. With `summed` evidence (the default) a k-change model is scored by its
marginal likelihood proper: the evidence averaged over every admissible set of k change positions (a uniform prior
over them), so an extra change pays for the positions it could have taken instead of being credited with the best
of them; the reported positions are still the best set. `change_penalty` is then the log prior odds against one
more change (tuned on planted users; negative values favour changes).

A multi-category item is evidence that the event's category is *one of* its categories, not a little of each.
Before scoring, each event's weight is shared among its categories in proportion to the mix of its `tag_window`
neighbours on each side (the event itself left out) plus `tag_prior` times the user's overall mix: a
"Comedy | Horror" item chosen among Comedy items counts mostly as Comedy. A single-category item is unchanged, and
`tag_window = 0` keeps the equal split.

Sudden changes are not the only way a user's mix moves, and an analyst should not be shown a "change" where the
mix moves some other way. Two alternatives are scored and, when either explains the history better than the best
set of changes, no change is reported:
- a weekly rhythm: one mixture on Saturdays and Sundays (UTC), another on the other days (`weekly_penalty` is
  the log-evidence it must win by);
- a gradual drift: the mixture moves linearly from the one before event s to the one after event e, over a ramp
  longer than a step (s, e on a coarse grid; `ramp_penalty` is what it must win by, as its middle is scored with
  plug-in mixtures, which flatters it). With `summed` evidence it too is averaged over its (s, e) grid.

Every reported change is a moment start (a bulk session stays one moment). Counts are fractional for
multi-category items (the equal split); Γ is defined on them. Shapes: n events, G moments, C categories.
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln

__all__ = [
    "share_tags", "segment_evidence", "best_segmentations", "weekend_mask", "weekly_evidence", "ramp_evidence", "refine_changes", "bayes_changes",
]

_EDGE = 5  # events the ramp keeps on each side of it (its end mixtures are learned from them)


def _logmeanexp(v: np.ndarray) -> float:
    m = float(np.max(v))
    return m + float(np.log(np.mean(np.exp(v - m)))) if np.isfinite(m) else m


def share_tags(events: np.ndarray, window: int, prior: float) -> np.ndarray:
    """[n, C] each event's weight shared among its item's categories in proportion to the category mix of its
    `window` neighbours on each side (itself left out) plus `prior` times the user's overall mix (posterior mean
    under a Dirichlet(½)). Rows keep their totals' support: a row of zeros stays zero, a single category stays one.
    `window = 0` returns the events unchanged (the equal split)."""
    x = np.asarray(events, np.float64)
    if window <= 0 or len(x) == 0:
        return x
    n, C = x.shape
    tags = (x > 0).astype(np.float64)
    overall = (x.sum(axis=0) + 0.5) / (x.sum() + 0.5 * C)  # [C]
    cum = np.vstack([np.zeros((1, C)), np.cumsum(x, axis=0)])
    i = np.arange(n)
    near = cum[np.minimum(i + window + 1, n)] - cum[np.maximum(i - window, 0)] - x  # [n, C] neighbours only
    w = tags * (near + prior * overall)
    total = w.sum(axis=1, keepdims=True)
    return np.where(total > 0, w / np.where(total > 0, total, 1.0), 0.0) * x.sum(axis=1, keepdims=True)


def segment_evidence(counts: np.ndarray, alpha: float):
    """A function (a [S] rows, b [S] rows) -> [S] log marginal likelihood of grid rows a..b-1 of `counts`
    [G, C], and [G+1] cumulative events per row."""
    c = np.asarray(counts, np.float64)
    C = c.shape[1]
    cum = np.vstack([np.zeros((1, C)), np.cumsum(c, axis=0)])  # [G+1, C]
    events = cum.sum(axis=1)

    def evidence(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        tot = cum[b] - cum[a]  # [S, C]
        return gammaln(C * alpha) - gammaln(C * alpha + tot.sum(-1)) + (gammaln(alpha + tot) - gammaln(alpha)).sum(-1)

    return evidence, events


def best_segmentations(
    counts: np.ndarray, alpha: float, min_events: float, max_changes: int, summed: bool = False, scorer=None,
) -> list[tuple[float, list[int]]]:
    """For k = 0 … max_changes: (log evidence, rows where a new segment starts) of the best k-change segmentation
    of grid rows [G, C], every segment holding at least `min_events` events; (-inf, []) where none fits.

    With `summed` the log evidence is that of the k-change model, the mean of exp(evidence) over every admissible
    set of k change rows (a uniform prior over them); the rows are still the best set's. `scorer`: an (evidence,
    cumulative events) pair with the interface of `segment_evidence`, which it replaces (e.g.
    `core.trajectory.coarse_evidence.coarse_segments`)."""
    evidence, ev = scorer or segment_evidence(counts, alpha)
    G = len(ev) - 1
    F = np.full((max_changes + 1, G + 1), -np.inf)  # F[j, t]: best evidence of rows < t with j changes
    S = np.full((max_changes + 1, G + 1), -np.inf)  # S[j, t]: log Σ over those segmentations of exp(evidence)
    N = np.full((max_changes + 1, G + 1), -np.inf)  # N[j, t]: log of their number
    arg = np.zeros((max_changes + 1, G + 1), np.int64)
    ends = np.flatnonzero(ev >= min_events)
    F[0, ends] = S[0, ends] = evidence(np.zeros(len(ends), np.int64), ends)
    N[0, ends] = 0.0
    for j in range(1, max_changes + 1):
        for t in range(1, G + 1):
            s = np.arange(1, t)
            s = s[(ev[t] - ev[s] >= min_events) & np.isfinite(F[j - 1, s])]
            if len(s) == 0:
                continue
            e = evidence(s, np.full(len(s), t))
            v = F[j - 1, s] + e
            k = int(np.argmax(v))
            F[j, t], arg[j, t] = v[k], s[k]
            if summed:
                S[j, t] = _logmeanexp(S[j - 1, s] + e) + np.log(len(s))
                N[j, t] = _logmeanexp(N[j - 1, s]) + np.log(len(s))
    out = []
    for k in range(max_changes + 1):
        if not np.isfinite(F[k, G]):
            out.append((-np.inf, []))
            continue
        rows, t = [], G
        for j in range(k, 0, -1):
            t = int(arg[j, t])
            rows.append(t)
        out.append((float(S[k, G] - N[k, G]) if summed else float(F[k, G]), sorted(rows)))
    return out


def weekend_mask(ts: np.ndarray) -> np.ndarray:
    """[n] True for times on a Saturday or Sunday (UTC); ts [n] unix seconds or datetime64."""
    secs = np.asarray(ts).astype("datetime64[s]").astype(np.int64)
    return ((secs // 86_400) + 3) % 7 >= 5  # 1970-01-01 was a Thursday (3 with Monday = 0)


def weekly_evidence(events: np.ndarray, ts: np.ndarray, alpha: float) -> float:
    """Log evidence of one mixture on weekend days (Saturday, Sunday UTC) and another on weekdays. events [n, C],
    ts [n] unix seconds or datetime64."""
    weekend = weekend_mask(ts)
    x = np.asarray(events, np.float64)
    sums = np.stack([x[weekend].sum(axis=0), x[~weekend].sum(axis=0)])  # [2, C]
    evidence, _ = segment_evidence(sums, alpha)
    return float(evidence(np.array([0, 1]), np.array([1, 2])).sum())


def ramp_evidence(events: np.ndarray, alpha: float, min_ramp: int = 6, points: int = 30, summed: bool = False) -> float:
    """Best log evidence of a linear drift between two mixtures (see the module docstring); -inf when the history
    is too short to hold one. The ramp's start s and end e run over a grid of about `points` positions each; with
    `summed`, the log of the mean over that grid of exp(evidence) instead of the best."""
    x = np.asarray(events, np.float64)
    n, C = x.shape
    if n < 2 * _EDGE + min_ramp:
        return -np.inf
    step = max(1, (n - 2 * _EDGE) // points)
    evidence, _ = segment_evidence(x, alpha)  # one row per event
    cum = np.vstack([np.zeros((1, C)), np.cumsum(x, axis=0)])
    scores: list[float] = []
    for s in range(_EDGE, n - _EDGE - min_ramp + 1, step):
        ends = np.arange(s + min_ramp, n - _EDGE + 1, step)
        a = (cum[s] + alpha) / (cum[s].sum() + C * alpha)  # [C] posterior mean before the ramp
        tail = cum[n] - cum[ends]  # [E, C]
        b = (tail + alpha) / (tail.sum(axis=1, keepdims=True) + C * alpha)  # [E, C] after it
        outside = evidence(np.array([0]), np.array([s]))[0] + evidence(ends, np.full(len(ends), n))  # [E]
        for k, e in enumerate(ends):
            lam = (np.arange(s, e) - s + 0.5) / (e - s)  # [e-s] share of the way through the ramp
            p = (1 - lam)[:, None] * a + lam[:, None] * b[k]  # [e-s, C]
            # the split likelihood Σ_c x(c)·log p(c), the one the fractional counts of the segment evidence use
            middle = float((x[s:e] * np.log(p)).sum())
            scores.append(float(outside[k] + middle))
    return _logmeanexp(np.array(scores)) if summed else max(scores)


def refine_changes(counts: np.ndarray, alpha: float, cut: list[int], block: int, min_events: float) -> list[int]:
    """Each change (a moment row) moved, one at a time with its neighbours fixed, to the moment within `block` rows
    either side that maximises the evidence of the two segments around it, both keeping `min_events` events."""
    evidence, ev = segment_evidence(counts, alpha)
    bounds = [0, *cut, len(counts)]
    for j in range(1, len(bounds) - 1):
        lo, hi = max(bounds[j - 1] + 1, bounds[j] - block), min(bounds[j + 1] - 1, bounds[j] + block)
        tau = np.arange(lo, hi + 1)
        tau = tau[(ev[tau] - ev[bounds[j - 1]] >= min_events) & (ev[bounds[j + 1]] - ev[tau] >= min_events)]
        if len(tau) == 0:  # the coarse position already satisfies the sizes; keep it
            continue
        v = evidence(np.full(len(tau), bounds[j - 1]), tau) + evidence(tau, np.full(len(tau), bounds[j + 1]))
        bounds[j] = int(tau[int(np.argmax(v))])
    return bounds[1:-1]


def bayes_changes(
    events: np.ndarray, ts: np.ndarray, starts: np.ndarray, alpha: float, min_events: float, max_changes: int,
    weekly_penalty: float, ramp_penalty: float, change_penalty: float = 0.0, max_rows: int = 300,
    summed: bool = False, tag_window: int = 0, tag_prior: float = 1.0,
) -> list[int]:
    """Grid rows (indices into `starts`) where a change is reported (see the module docstring).

    Parameters
    ----------
    events
        [n, C] category weights of each event's item.
    ts
        [n] event times.
    starts
        [G] first event of each moment (`core.trajectory.grid_changes.moment_starts`).
    max_rows
        The exact search runs on at most this many rows: a longer history's moments are taken in blocks, and each
        change found is then moved to its best moment within a block either side (the search is quadratic in
        rows: a 2,200-event history took 10 s at one row per moment, about a second at 300 rows).
    summed, tag_window, tag_prior
        Marginal likelihoods averaged over positions, and the sharing of a multi-category item's weight (module
        docstring).
    """
    x = np.asarray(events, np.float64)
    # the categories the user touched: the Dirichlet is over them
    x = share_tags(x, tag_window, tag_prior)[:, x.sum(axis=0) > 0]
    if x.shape[1] < 2 or len(x) < 2 * min_events:
        return []
    counts = np.add.reduceat(x, starts, axis=0)  # [G, C]
    block = -(-len(counts) // max_rows)  # moments per row of the search grid (1 unless the history is long)
    rows = np.arange(0, len(counts), block)
    options = best_segmentations(np.add.reduceat(counts, rows, axis=0), alpha, min_events, max_changes, summed)
    if block > 1:  # each change found on the coarse grid moves to its best moment within a block either side
        evidence, _ = segment_evidence(counts, alpha)
        refined = [refine_changes(counts, alpha, [int(rows[g]) for g in cut], block, min_events) for _, cut in options]
        # the best set is rescored at its refined moments; a summed evidence stays the coarse grid's average
        options = [(float(evidence(np.array([0, *cut]), np.array([*cut, len(counts)])).sum())
                    if np.isfinite(score) and not summed else score, cut)
                   for (score, _), cut in zip(options, refined, strict=True)]
    k = int(np.argmax([score - change_penalty * j for j, (score, _) in enumerate(options)]))
    if k == 0:
        return []
    score = options[k][0] - change_penalty * k
    if weekly_evidence(x, ts, alpha) - weekly_penalty > score:
        return []
    if ramp_evidence(x, alpha, summed=summed) - ramp_penalty > score:
        return []
    return options[k][1]
