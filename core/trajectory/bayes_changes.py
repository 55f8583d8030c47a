"""Change points by Bayesian model comparison on the grid of moments (`ChangeConfig.method = "bayes"`).

Each segment's categories are scored by their Dirichlet–multinomial marginal likelihood (a symmetric Dirichlet(α)
over the categories the user touched): log ML = log Γ(Cα) − log Γ(Cα + m) + Σ_c [log Γ(α + m_c) − log Γ(α)], which
charges every extra segment for the mixture it must learn, so no hand-set penalty per change is needed. For k = 0
… `max_changes` the best segmentation with k changes between moment starts (every segment holding `min_segment`
events or more) is found exactly by dynamic programming, and the k with the highest marginal likelihood, less
`change_penalty` per change, is kept (the best positions are picked, not averaged over, which flatters every extra
change a little; the penalty is that prior's price, tuned on planted users).

Sudden changes are not the only way a user's mix moves, and an analyst should not be shown a "change" where the
mix moves some other way. Two alternatives are scored and, when either explains the history better than the best
set of changes, no change is reported:
- a weekly rhythm: one mixture on Saturdays and Sundays (UTC), another on the other days (`weekly_penalty` is
  the log-evidence it must win by);
- a gradual drift: the mixture moves linearly from the one before event s to the one after event e, over a ramp
  longer than a step (s, e on a coarse grid; `ramp_penalty` is what it must win by, as its middle is scored with
  plug-in mixtures, which flatters it).

Every reported change is a moment start (a bulk session stays one moment). Counts are fractional for
multi-category items (the equal split); Γ is defined on them. Shapes: n events, G moments, C categories.
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln

__all__ = ["segment_evidence", "best_segmentations", "weekly_evidence", "ramp_evidence", "bayes_changes"]

_EDGE = 5  # events the ramp keeps on each side of it (its end mixtures are learned from them)


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


def best_segmentations(counts: np.ndarray, alpha: float, min_events: float, max_changes: int) -> list[tuple[float, list[int]]]:
    """For k = 0 … max_changes: (log evidence, rows where a new segment starts) of the best k-change segmentation
    of grid rows [G, C], every segment holding at least `min_events` events; (-inf, []) where none fits."""
    evidence, ev = segment_evidence(counts, alpha)
    G = len(counts)
    F = np.full((max_changes + 1, G + 1), -np.inf)  # F[j, t]: best evidence of rows < t with j changes
    arg = np.zeros((max_changes + 1, G + 1), np.int64)
    ends = np.flatnonzero(ev >= min_events)
    F[0, ends] = evidence(np.zeros(len(ends), np.int64), ends)
    for j in range(1, max_changes + 1):
        for t in range(1, G + 1):
            s = np.arange(1, t)
            s = s[(ev[t] - ev[s] >= min_events) & np.isfinite(F[j - 1, s])]
            if len(s) == 0:
                continue
            v = F[j - 1, s] + evidence(s, np.full(len(s), t))
            k = int(np.argmax(v))
            F[j, t], arg[j, t] = v[k], s[k]
    out = []
    for k in range(max_changes + 1):
        if not np.isfinite(F[k, G]):
            out.append((-np.inf, []))
            continue
        rows, t = [], G
        for j in range(k, 0, -1):
            t = int(arg[j, t])
            rows.append(t)
        out.append((float(F[k, G]), sorted(rows)))
    return out


def weekly_evidence(events: np.ndarray, ts: np.ndarray, alpha: float) -> float:
    """Log evidence of one mixture on weekend days (Saturday, Sunday UTC) and another on weekdays. events [n, C],
    ts [n] unix seconds or datetime64."""
    secs = np.asarray(ts).astype("datetime64[s]").astype(np.int64)
    weekend = ((secs // 86_400) + 3) % 7 >= 5  # 1970-01-01 was a Thursday (3 with Monday = 0)
    x = np.asarray(events, np.float64)
    sums = np.stack([x[weekend].sum(axis=0), x[~weekend].sum(axis=0)])  # [2, C]
    evidence, _ = segment_evidence(sums, alpha)
    return float(evidence(np.array([0, 1]), np.array([1, 2])).sum())


def ramp_evidence(events: np.ndarray, alpha: float, min_ramp: int = 6, points: int = 30) -> float:
    """Best log evidence of a linear drift between two mixtures (see the module docstring); -inf when the history
    is too short to hold one. The ramp's start s and end e run over a grid of about `points` positions each."""
    x = np.asarray(events, np.float64)
    n, C = x.shape
    if n < 2 * _EDGE + min_ramp:
        return -np.inf
    step = max(1, (n - 2 * _EDGE) // points)
    evidence, _ = segment_evidence(x, alpha)  # one row per event
    cum = np.vstack([np.zeros((1, C)), np.cumsum(x, axis=0)])
    best = -np.inf
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
            best = max(best, float(outside[k] + middle))
    return best


def _refine(counts: np.ndarray, alpha: float, cut: list[int], block: int, min_events: float) -> list[int]:
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
    """
    x = np.asarray(events, np.float64)
    x = x[:, x.sum(axis=0) > 0]  # the categories the user touched: the Dirichlet is over them
    if x.shape[1] < 2 or len(x) < 2 * min_events:
        return []
    counts = np.add.reduceat(x, starts, axis=0)  # [G, C]
    block = -(-len(counts) // max_rows)  # moments per row of the search grid (1 unless the history is long)
    rows = np.arange(0, len(counts), block)
    options = best_segmentations(np.add.reduceat(counts, rows, axis=0), alpha, min_events, max_changes)
    if block > 1:  # each change found on the coarse grid moves to its best moment within a block either side
        evidence, _ = segment_evidence(counts, alpha)
        refined = [_refine(counts, alpha, [int(rows[g]) for g in cut], block, min_events) for _, cut in options]
        options = [(float(evidence(np.array([0, *cut]), np.array([*cut, len(counts)])).sum()) if np.isfinite(score)
                    else score, cut) for (score, _), cut in zip(options, refined, strict=True)]
    k = int(np.argmax([score - change_penalty * j for j, (score, _) in enumerate(options)]))
    if k == 0:
        return []
    score = options[k][0] - change_penalty * k
    if weekly_evidence(x, ts, alpha) - weekly_penalty > score:
        return []
    if ramp_evidence(x, alpha) - ramp_penalty > score:
        return []
    return options[k][1]
