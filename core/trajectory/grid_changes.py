"""Change points and drift on the time grid: a burst of entries in one sitting is one moment, never twelve.

The signal is the categories of the events themselves (each event's item→category weights, [n, C]). The grid is a
history's *moments*: a bulk session (`core.trajectory.timegrid.bulk_sessions`: 20 or more events about a minute or
less apart in one sitting, a list rated or imported at once, whose order of entry means nothing) is one moment; in
any other session each event is its own moment (each a choice made after the last). On that grid:

- **Contrast** (the drift line): at the start of each moment, the Jensen–Shannon divergence (bits, in [0, 1]) between
  the category mix of the `window` events before it and of the `window` events from it on. Both sides hold the same
  number of events (fewer only at the ends of the history), so the value means the same for a user with 40 events
  and one with 4,000: one scale across users.
- **Segmentation** (`method` "bayes", the default): Bayesian model comparison of change sets against a weekly
  rhythm and a gradual drift, then the snapping, (optional) one-per-session and contrast rules below. With `evidence`
  "one_of" (the default) a multi-category item counts as one of its categories and changes are reported by their
  posterior probability (core/trajectory/coarse_evidence.py, change_posterior.py); with "shared" its weight is
  shared by its neighbours' mix and the best number of changes is kept (core/trajectory/bayes_changes.py).
- **Segmentation** (`method` "pelt"): PELT (Killick et al., 2012) with the l2 cost over moment starts only (never inside a bulk
  session), every segment holding at least `min_segment` events, with the noise-scaled penalty
  `core.trajectory.changes.auto_penalty`. Then each change moves to the moment of highest contrast within `snap`
  moments (so every mark sits on a peak of the drift line the chart shows), with `one_per_session` a session keeps
  at most one change (the one of highest contrast), changes whose contrast is below `min_contrast` are dropped, and so, weakest first, are
  changes between segments whose mixes are less than `min_divergence` bits apart beyond what sampling noise gives
  segments of their sizes (`noise_factor`; a 15-event segment needs far more than a 500-event one).

The defaults are chosen on the "tune" half of planted users and reported on the held-out half (bench/changepoints.py).
Shapes: n events, G moments, C categories.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from core.trajectory.bayes_changes import bayes_changes
from core.trajectory.change_posterior import posterior_changes
from core.trajectory.changes import auto_penalty
from core.trajectory.measures import js_divergence
from core.trajectory.timegrid import bulk_sessions

__all__ = ["ChangeConfig", "Changes", "moment_starts", "contrast", "pelt", "detect_changes"]


@dataclass(frozen=True)
class ChangeConfig:
    """How change points are found on the grid of moments (defaults tuned in bench/changepoints.py)."""

    scale: float = 0.6  # multiplier of the noise-scaled PELT penalty s²·log n (higher = fewer changes)
    min_segment: int = 10  # fewest events between two changes (and before the first, after the last)
    min_divergence: float = 0.2  # smallest JS (bits) between the segment mixes either side of a change, beyond noise
    noise_factor: float = 0.5  # … plus this many times the JS that sampling noise alone gives segments of their sizes
    window: int = 20  # events on each side of a moment that the contrast (the drift line) compares
    snap: int = 2  # moments a change may move to sit on the contrast's local peak (0: never moved; see bench)
    min_contrast: float = 0.1  # smallest contrast (bits) at a reported change
    # True: of several changes in one session only the one of highest contrast stays (the rule of the PELT and
    # best-k detectors). False (default since the fifth session): two changes may share a long sitting, found
    # `min_segment` events apart; a bulk session is one moment either way (on the tune half the rule dropped 17
    # planted switches that shared a 14-28-event session with another)
    one_per_session: bool = False
    # how the segmentation is chosen: "bayes" = Dirichlet-multinomial evidence with weekly-rhythm and gradual-drift
    # alternatives (core.trajectory.bayes_changes; scale, min_divergence and noise_factor unused), "pelt" = the
    # l2 PELT with the noise-scaled penalty and divergence filter of this module
    method: Literal["bayes", "pelt"] = "bayes"
    # bayes: how a multi-category item counts and how the number of changes is chosen. "one_of" = the item says
    # the choice was one of its categories (core.trajectory.coarse_evidence), and changes are reported where their
    # posterior probability exceeds `threshold` (core.trajectory.change_posterior); "shared" = the item's weight
    # shared by its neighbours' mix and the best-scoring number of changes (the third session's detector, with
    # alpha 0.5, weekly_penalty 0 and change_penalty -1)
    evidence: Literal["one_of", "shared"] = "one_of"
    alpha: float = 0.1  # bayes: Dirichlet concentration per category the user touched (the symmetric part)
    # bayes, one_of: weight of the user's overall category mix added to alpha (Dirichlet α + w·mix: a segment's mix
    # is drawn around the user's usual categories; 0 = symmetric α, the fourth session's prior)
    base_weight: float = 1.0
    max_changes: int = 4  # bayes: most changes one history may hold
    # bayes: log prior odds against a weekly rhythm ("shared": the log evidence it must win by)
    weekly_penalty: float = 1.0
    ramp_penalty: float = 1.0  # bayes: log prior odds against a gradual drift (as above)
    # bayes: log prior odds against each further change (the positions are already paid for by averaging)
    change_penalty: float = 0.5
    threshold: float = 0.5  # bayes, one_of: posterior probability of a change within 2 moments needed to report it
    ramp_min_span: float = 0.1  # bayes, one_of: shortest gradual drift scored, as a share of the history
    # bayes, shared: True = each model's evidence averaged over its change (or ramp) positions, its marginal
    # likelihood; False = the best positions' evidence (the detector of the second session)
    summed: bool = True
    tag_window: int = 5  # bayes, shared: neighbours each side whose mix shares a multi-category item's weight
    tag_prior: float = 1.0  # bayes, shared: weight of the user's overall mix beside the neighbours' in that sharing

    def __post_init__(self) -> None:
        if self.min_segment < 1 or self.window < 1 or self.snap < 0:
            raise ValueError("min_segment and window must be at least 1 and snap at least 0")
        if not self.scale > 0 or not 0 <= self.min_divergence <= 1 or not 0 <= self.min_contrast <= 1 \
                or self.noise_factor < 0:
            raise ValueError("scale must be positive, min_divergence and min_contrast between 0 and 1 bit, "
                             "noise_factor not negative")
        if self.method not in ("bayes", "pelt") or not self.alpha > 0 or self.max_changes < 1:
            raise ValueError("method must be bayes or pelt, alpha positive and max_changes at least 1")
        if self.tag_window < 0 or not self.tag_prior > 0 or self.base_weight < 0:
            raise ValueError("tag_window and base_weight must not be negative and tag_prior must be positive")
        if self.evidence not in ("one_of", "shared") or not 0 < self.threshold < 1 or not 0 <= self.ramp_min_span < 1:
            raise ValueError("evidence must be one_of or shared, threshold strictly between 0 and 1 and "
                             "ramp_min_span in [0, 1)")


@dataclass(frozen=True)
class Changes:
    """One history's change points and drift line on its grid of moments."""

    steps: list[int]  # event index where each new segment starts (the first event of a moment), ascending
    starts: np.ndarray  # [G] first event of each moment
    contrast: np.ndarray  # [G] JS (bits) between the `window` events before and from each moment start
    session: np.ndarray  # [n] session number of each event


def moment_starts(ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """([G] first event of each moment, [n] session of each event): a bulk session is one moment, every event of
    another session its own."""
    sid, bulk_session = bulk_sessions(ts)
    n = len(sid)
    if n == 0:
        return np.zeros(0, np.int64), sid
    first = np.concatenate([[True], np.diff(sid) != 0])
    bulk = bulk_session[sid]  # [n] the event is in a bulk session
    return np.flatnonzero(first | ~bulk).astype(np.int64), sid


def _normalise(m: np.ndarray) -> np.ndarray:
    total = m.sum(axis=-1, keepdims=True)
    return np.where(total > 0, m / np.where(total > 0, total, 1.0), 1.0 / m.shape[-1])


def contrast(events: np.ndarray, starts: np.ndarray, window: int) -> np.ndarray:
    """[len(starts)] JS divergence (bits) between the mix of the `window` events before each start and of the
    `window` events from it on; 0 at a start with no categorised event before it or none after."""
    x = np.asarray(events, dtype=np.float64)
    n = len(x)
    cum = np.vstack([np.zeros((1, x.shape[1])), np.cumsum(x, axis=0)])  # [n+1, C]
    s = np.asarray(starts, dtype=np.int64)
    lo, hi = np.maximum(s - window, 0), np.minimum(s + window, n)
    before, after = cum[s] - cum[lo], cum[hi] - cum[s]  # [G, C]
    out = js_divergence(_normalise(before), _normalise(after))
    empty = (before.sum(axis=1) <= 0) | (after.sum(axis=1) <= 0)
    return np.where(empty, 0.0, out)


def pelt(counts: np.ndarray, squares: np.ndarray, sizes: np.ndarray, penalty: float, min_events: float) -> list[int]:
    """Optimal segmentation of G grid rows under the l2 cost plus `penalty` per change (PELT's pruning keeps the
    exact optimum), every segment holding at least `min_events` events.

    `counts` [G, C] sums the event rows of each grid cell, `squares` [G] their squared norms, `sizes` [G] their
    events; a segment costs Σ‖x_t‖² − ‖Σx_t‖²/m over its m events. Returns the rows where a new segment starts.
    """
    c = np.asarray(counts, dtype=np.float64)
    G = len(c)
    cum = np.vstack([np.zeros((1, c.shape[1])), np.cumsum(c, axis=0)])  # [G+1, C]
    sq = np.concatenate([[0.0], np.cumsum(np.asarray(squares, dtype=np.float64))])  # [G+1]
    ev = np.concatenate([[0.0], np.cumsum(np.asarray(sizes, dtype=np.float64))])  # [G+1]
    F = np.full(G + 1, np.inf)
    F[0] = -penalty
    last = np.zeros(G + 1, np.int64)
    cand = np.array([0], np.int64)
    for t in range(1, G + 1):
        ok = ev[t] - ev[cand] >= min_events
        if ok.any():
            s = cand[ok]
            tot = cum[t] - cum[s]  # [S, C]
            vals = F[s] + (sq[t] - sq[s]) - (tot**2).sum(axis=1) / (ev[t] - ev[s]) + penalty
            k = int(np.argmin(vals))
            F[t], last[t] = vals[k], s[k]
            keep = np.ones(len(cand), bool)
            keep[np.flatnonzero(ok)] = vals - penalty <= F[t]  # a start that cannot win later is dropped
            cand = cand[keep]
        if np.isfinite(F[t]):
            cand = np.append(cand, t)
    if not np.isfinite(F[G]):
        return []
    cps, t = [], G
    while t > 0:
        t = int(last[t])
        if t > 0:
            cps.append(t)
    return sorted(cps)


def _snap(cut: list[int], drift: np.ndarray, reach: int) -> list[int]:
    """Move each change (a grid row) to the highest-contrast row within `reach`, keeping the order."""
    out: list[int] = []
    for k, g in enumerate(cut):
        lo = max(g - reach, out[-1] + 1 if out else 1)
        hi = min(g + reach, cut[k + 1] - 1 if k + 1 < len(cut) else len(drift) - 1)
        out.append(g if lo > hi else lo + int(np.argmax(drift[lo : hi + 1])))
    return out


def _one_per_session(cut: list[int], drift: np.ndarray, session_of_row: np.ndarray) -> list[int]:
    """At most one change per session: of several in one session, the one of highest contrast stays."""
    best: dict[int, int] = {}
    for g in cut:
        s = int(session_of_row[g])
        if s not in best or drift[g] > drift[best[s]]:
            best[s] = g
    return sorted(best.values())


def _margins(x: np.ndarray, steps: list[int], noise_factor: float) -> np.ndarray:
    """Per change: the JS (bits) between the mixes of the segments either side, less `noise_factor` times what
    sampling noise alone gives two segments of those sizes from one mix, E[JS] ≈ (C_u − 1)·(1/m₁ + 1/m₂)/(8 ln 2)
    (second-order expansion of JS; C_u = categories the user touched). Short segments need a larger divergence
    than long ones, whose mixes are known precisely."""
    bounds = [0, *steps, len(x)]
    sums = np.stack([x[a:b].sum(axis=0) for a, b in zip(bounds[:-1], bounds[1:], strict=True)])
    sizes = np.maximum(sums.sum(axis=1), 1e-9)
    used = max(int((x.sum(axis=0) > 0).sum()), 2)
    noise = (used - 1) * (1 / sizes[:-1] + 1 / sizes[1:]) / (8 * np.log(2))
    return js_divergence(_normalise(sums[:-1]), _normalise(sums[1:])) - noise_factor * noise


def detect_changes(events: np.ndarray, ts: np.ndarray, config: ChangeConfig | None = None) -> Changes:
    """Change points of one history on its grid of moments (see the module docstring).

    Parameters
    ----------
    events
        [n, C] category weights of each event's item (rows sum to 1; 0 for an item without a category).
    ts
        [n] event times in history order (datetime64 or unix seconds).

    Guarantees: every change step is a moment start, never inside a bulk session; segments between changes hold at
    least `min_segment` events before snapping moves a change by ≤ `snap` moments; with `one_per_session` a session
    holds at most one.
    """
    cfg = config or ChangeConfig()
    x = np.asarray(events, dtype=np.float64)
    starts, sid = moment_starts(ts)
    drift = contrast(x, starts, cfg.window)
    n = len(x)
    if n < 2 * cfg.min_segment or len(starts) < 2:
        return Changes([], starts, drift, sid)
    if cfg.method == "bayes":
        if cfg.evidence == "one_of":
            cut = posterior_changes(x, ts, starts, cfg.alpha, cfg.min_segment, cfg.max_changes, cfg.change_penalty,
                                    cfg.ramp_penalty, cfg.weekly_penalty, cfg.ramp_min_span, cfg.threshold,
                                    base_weight=cfg.base_weight)
        else:
            cut = bayes_changes(x, ts, starts, cfg.alpha, cfg.min_segment, cfg.max_changes, cfg.weekly_penalty,
                                cfg.ramp_penalty, cfg.change_penalty, summed=cfg.summed, tag_window=cfg.tag_window,
                                tag_prior=cfg.tag_prior)
        if cfg.snap:
            cut = _snap(cut, drift, cfg.snap)
        if cfg.one_per_session:
            cut = _one_per_session(cut, drift, sid[starts])
        cut = [g for g in cut if drift[g] >= cfg.min_contrast]
        return Changes([int(starts[g]) for g in cut], starts, drift, sid)
    bounds = np.append(starts, n)
    counts = np.add.reduceat(x, starts, axis=0)  # [G, C]
    squares = np.add.reduceat((x**2).sum(axis=1), starts)  # [G]
    cut = pelt(counts, squares, np.diff(bounds), auto_penalty(x, cfg.scale), cfg.min_segment)
    if cfg.snap:
        cut = _snap(cut, drift, cfg.snap)
    if cfg.one_per_session:
        cut = _one_per_session(cut, drift, sid[starts])
    cut = [g for g in cut if drift[g] >= cfg.min_contrast]
    while cut:
        margin = _margins(x, [int(starts[g]) for g in cut], cfg.noise_factor)
        k = int(np.argmin(margin))
        if margin[k] >= cfg.min_divergence:
            break
        cut.pop(k)
    return Changes([int(starts[g]) for g in cut], starts, drift, sid)
