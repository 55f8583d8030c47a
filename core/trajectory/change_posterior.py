"""Change points by posterior probability: the detector's default decision (`ChangeConfig.evidence = "one_of"`).

The Bayesian detector (core/trajectory/bayes_changes.py) loses on planted users in deciding *how many* changes a
history holds, not where (told each user's true number of changes, the same search places them with F1 0.94; the
best-k rule reaches 0.76). This module decides differently:

- every model is scored by its marginal likelihood under the "one of its categories" reading of a multi-category
  item (core/trajectory/coarse_evidence.py), every mix with the Dirichlet prior α + w·(the user's overall mix): k = 0 … K changes between grid rows (averaged over every admissible
  set of k cut rows, a uniform prior over them), a gradual drift whose start and end are integrated out (ramps
  spanning at least `ramp_min_span` of the history), and a weekly rhythm;
- `cut_marginals`: a forward–backward sum over every admissible cut set gives, for each k, the posterior
  probability that a segment starts at each row;
- `posterior_changes`: mixed over the models by their posterior probabilities (log prior odds: −change_penalty per
  change, −ramp_penalty, −weekly_penalty), this is P(a change at row g | history); a change is reported where the
  probability of one within `REACH` rows either side exceeds `threshold`, the most probable first, each taking out
  the rows closer than `min_events` events to it. A ramp or a rhythm that explains the history well takes its
  posterior mass away from every change, so no threshold is needed per model.

Shapes: G grid rows, C categories, K the most changes, n events.
"""

from __future__ import annotations

import numpy as np

from core.trajectory.bayes_changes import refine_changes, segment_evidence, share_tags
from core.trajectory.coarse_evidence import (
    coarse_ramp_evidence,
    coarse_segments,
    coarse_weekly,
    dirichlet_prior,
    row_events,
)

__all__ = ["REACH", "cut_marginals", "evidences", "change_probability", "pick", "posterior_changes"]

def _lse(v: np.ndarray, axis: int | None = None) -> np.ndarray:
    """log Σ exp(v) (along `axis`); -inf for an empty or all -inf sum. scipy's logsumexp costs ~0.7 ms a call,
    which the forward–backward sums call thousands of times."""
    m = np.max(v, axis=axis, keepdims=True) if np.size(v) else np.full((1,) * max(np.ndim(v), 1), -np.inf)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        out = np.log(np.sum(np.exp(v - m), axis=axis, keepdims=True)) + m
    return out.squeeze(axis) if axis is not None else out.reshape(())


REACH = 2  # rows each side whose change probability counts towards "a change here" (chosen on the tune half)


def cut_marginals(
    counts: np.ndarray, alpha: float, min_events: float, max_changes: int, scorer=None,
) -> tuple[np.ndarray, np.ndarray]:
    """([K+1] log marginal likelihood of each k-change model, -inf where none fits; [K+1, G] posterior probability
    that a segment starts at each row given k changes, row 0 always 0, each row k summing to k).

    counts [G, C] category weights per grid row; every segment holds at least `min_events` events. `scorer`: an
    (evidence, cumulative events) pair as `segment_evidence` returns (e.g. `core.trajectory.coarse_evidence.coarse_segments`); by default the
    Dirichlet–multinomial evidence of the rows' counts."""
    evidence, ev = scorer or segment_evidence(counts, alpha)
    G, K = len(ev) - 1, max_changes
    fwd = np.full((K + 1, G + 1), -np.inf)  # fwd[j, t]: log Σ over segmentations of rows < t with j changes
    bwd = np.full((K + 1, G + 1), -np.inf)  # bwd[j, a]: log Σ over segmentations of rows ≥ a with j changes
    nf = np.full((K + 1, G + 1), -np.inf)  # log of the number of those segmentations (for the uniform prior)
    ends = np.flatnonzero(ev >= min_events)
    fwd[0, ends] = evidence(np.zeros(len(ends), np.int64), ends)
    nf[0, ends] = 0.0
    heads = np.flatnonzero(ev[G] - ev >= min_events)
    bwd[0, heads] = evidence(heads, np.full(len(heads), G))
    for j in range(1, K + 1):
        for t in range(1, G + 1):
            s = np.arange(1, t)
            s = s[(ev[t] - ev[s] >= min_events) & np.isfinite(fwd[j - 1, s])]
            if len(s):
                fwd[j, t] = _lse(fwd[j - 1, s] + evidence(s, np.full(len(s), t)))
                nf[j, t] = _lse(nf[j - 1, s])
        for a in range(G - 1, -1, -1):
            b = np.arange(a + 1, G)
            b = b[(ev[b] - ev[a] >= min_events) & np.isfinite(bwd[j - 1, b])]
            if len(b):
                bwd[j, a] = _lse(evidence(np.full(len(b), a), b) + bwd[j - 1, b])
    model = np.where(np.isfinite(fwd[:, G]), fwd[:, G] - np.where(np.isfinite(nf[:, G]), nf[:, G], 0.0), -np.inf)
    marg = np.zeros((K + 1, G))
    for k in range(1, K + 1):
        if not np.isfinite(fwd[k, G]):
            continue
        # a cut at g as the j-th change: j − 1 changes before it, k − j after it (rows ≥ g start a segment)
        terms = np.stack([fwd[j - 1, :G] + bwd[k - j, :G] for j in range(1, k + 1)])  # [k, G]
        with np.errstate(invalid="ignore"):
            marg[k] = np.exp(_lse(terms, axis=0) - fwd[k, G])
        marg[k, 0] = 0.0
    return model, np.nan_to_num(marg)


def evidences(
    tags: np.ndarray, ts: np.ndarray, rows: np.ndarray, alpha: float, min_events: float, max_changes: int,
    ramp_min_span: float, base_weight: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Every model's log marginal likelihood under the one_of reading: ([K+1] k changes, [K+1, G] their cut
    marginals (`cut_marginals`), the ramp, the weekly rhythm). tags [n, C] category weights (an event's categories
    are its positive entries), ts [n], rows [G] first event of each grid row (rows[0] = 0). Every mix has the
    Dirichlet prior α + `base_weight`·(the history's overall mix) (`dirichlet_prior`; 0: symmetric α)."""
    prior = dirichlet_prior(tags, alpha, base_weight)  # [C]
    model, marg = cut_marginals(None, alpha, min_events, max_changes, scorer=coarse_segments(tags, rows, prior))
    return model, marg, coarse_ramp_evidence(tags, prior, min_span=ramp_min_span), coarse_weekly(tags, ts, prior)


def change_probability(
    tags: np.ndarray, ts: np.ndarray, rows: np.ndarray, alpha: float, min_events: float, max_changes: int,
    change_penalty: float, ramp_penalty: float, weekly_penalty: float, ramp_min_span: float, base_weight: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """([G] P(a segment starts at row g | history), [K+3] posterior probability of each model: k = 0 … K changes,
    the ramp, the weekly rhythm), the models' log prior odds being −change_penalty per change, −ramp_penalty and
    −weekly_penalty. Arguments as `evidences`."""
    model, marg, ramp, weekly = evidences(tags, ts, rows, alpha, min_events, max_changes, ramp_min_span, base_weight)
    logw = np.concatenate([
        np.where(np.isfinite(model), model, -np.inf) - change_penalty * np.arange(max_changes + 1),
        [ramp - ramp_penalty, weekly - weekly_penalty],
    ])
    post = np.exp(logw - _lse(logw))
    return (post[: max_changes + 1, None] * marg).sum(axis=0), post


def pick(prob: np.ndarray, ev: np.ndarray, threshold: float, min_events: float) -> list[int]:
    """Rows where a change is reported: while some row's probability of a change within `REACH` rows exceeds
    `threshold`, the most probable such window's most probable row, after which that window and the rows closer
    than `min_events` events (or `REACH` rows) to it are out. prob [G], ev [G+1] cumulative events per row."""
    G = len(prob)
    cum = np.concatenate([[0.0], np.cumsum(prob)])
    g = np.arange(G)
    window = cum[np.minimum(g + REACH + 1, G)] - cum[np.maximum(g - REACH, 0)]  # [G]
    out: list[int] = []
    while G and window.max() > threshold:
        j = int(np.argmax(window))
        lo, hi = max(j - REACH, 1), min(j + REACH, G - 1)
        best = lo + int(np.argmax(prob[lo : hi + 1]))
        out.append(best)
        # out: the rows closer than min_events events to it, and the window that chose it (a bulk moment can hold
        # more than min_events events, so the event rule alone may leave that window standing)
        window[(np.abs(ev[:G] - ev[best]) < min_events) | (np.abs(g - best) <= REACH)] = -np.inf
        window[j] = -np.inf
    return sorted(out)


def posterior_changes(
    events: np.ndarray, ts: np.ndarray, starts: np.ndarray, alpha: float, min_events: float, max_changes: int,
    change_penalty: float, ramp_penalty: float, weekly_penalty: float, ramp_min_span: float, threshold: float,
    max_rows: int = 300, base_weight: float = 0.0,
) -> list[int]:
    """Moment rows (indices into `starts`) where a change is reported (module docstring). events [n, C] category
    weights of each event's item; ts [n] event times; starts [G] first event of each moment. A history of more
    than `max_rows` moments is searched on blocks of moments, and each change found then moves to its best moment
    within a block either side (Dirichlet–multinomial evidence of the neighbours' shared category weights)."""
    x = np.asarray(events, np.float64)
    used = x.sum(axis=0) > 0  # the categories the user touched: the Dirichlet is over them
    tags = x[:, used]
    if tags.shape[1] < 2 or len(x) < 2 * min_events:
        return []
    block = -(-len(starts) // max_rows)  # moments per row of the search grid (1 unless the history is long)
    rows = np.arange(0, len(starts), block)
    prob, _ = change_probability(tags, ts, np.asarray(starts)[rows], alpha, min_events, max_changes, change_penalty,
                                 ramp_penalty, weekly_penalty, ramp_min_span, base_weight)
    ev = row_events(tags, np.asarray(starts)[rows])
    cut = [int(rows[g]) for g in pick(prob, ev, threshold, min_events)]
    if block > 1 and cut:
        counts = np.add.reduceat(share_tags(x, 5, 1.0)[:, used], starts, axis=0)  # [G, C]
        cut = refine_changes(counts, alpha, cut, block, min_events)
    return cut
