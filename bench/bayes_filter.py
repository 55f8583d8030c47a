"""A Bayes filter over a planted generator's hidden taste process: the posterior-predictive next-event category
mix of one user, given that user's past events and the generator's exact process (the oracle of
`bench/trajectory_oracles.py`).

Hypotheses (each a family of states with a log weight, filtered jointly, so the archetype is inferred too):
- segments (`Segments`): stable users and users with k sudden switches. A state is (k, j, s): k switches in all,
  j of them before now, the current segment starting at event s. Each segment's taste is a fresh draw
  m ~ Dirichlet(A); the state's taste posterior is Dirichlet(A + counts of its segment). Before event t a state
  with j < k switches there with the generator's hazard h(k, j, s, t) (the conditional probability of the next
  switch position given the last one, from the generator's position law); new states with the same (k, j + 1)
  all start empty, so they merge into one. Exact enumeration of switch positions, in O(n) states.
- ramps (`Ramp`): users who drift linearly from taste m1 to m2 between events a and e (λ_t = clip((t − a) /
  (e − a), 0, 1)); one state per (a, e) of the generator's grid (coarsened to at most `max_grid` values each), two
  Dirichlet posteriors per state.
- periodic (`Periodic`): a weekday and a weekend taste, each its own Dirichlet posterior; the event's weekend
  flag is read from its timestamp.

Every mixture is (1 − ε)·taste + ε/C (uniform browsing). That noise breaks conjugacy; each observed event adds to
a state's counts its responsibility r = (1 − ε)·taste(c) / q(c) (for ramps split between m1 and m2), the
assumed-density (moment-matched) update, and its likelihood q(c) to the state's weight exactly. With ε = 0 the
filter is exact (tested against hand-computed Dirichlet posteriors and run-length recursions).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["Segments", "Ramp", "Periodic", "run_filter", "ramp_grid"]

_PRUNE = 30.0  # states whose weight is below e^−30 of the best state are dropped (their mass is negligible)

Hazard = Callable[[np.ndarray, np.ndarray, np.ndarray, int], np.ndarray]  # (k, j, s, t) -> h [S]


def _taste(counts: np.ndarray, A: np.ndarray) -> np.ndarray:
    """Posterior mean of Dirichlet(A + counts), rows of counts [S, C]."""
    x = counts + A[None, :]
    return x / x.sum(axis=1, keepdims=True)


class Segments:
    """Stable and switch hypotheses (module docstring). `roots`: (k, prior probability) for each number of
    switches, k = 0 for stable."""

    def __init__(self, A: np.ndarray, eps: float, roots: list[tuple[int, float]], hazard: Hazard):
        self.A, self.eps, self.hazard = A, eps, hazard
        roots = [(k, p) for k, p in roots if p > 0]
        self.k = np.array([k for k, _ in roots], np.int64)
        self.j = np.zeros(len(roots), np.int64)
        self.s = np.zeros(len(roots), np.int64)
        self.logw = np.log(np.array([p for _, p in roots], np.float64))
        self.counts = np.zeros((len(roots), len(A)))

    def transition(self, t: int) -> None:
        """Before event t: each live state switches with its hazard; new states of one (k, j + 1) merge."""
        live = np.flatnonzero(self.j < self.k)
        if len(live) == 0:
            return
        h = np.clip(self.hazard(self.k[live], self.j[live], self.s[live], t), 0.0, 1.0)
        go = h > 0
        if not go.any():
            return
        idx, hz = live[go], h[go]
        with np.errstate(divide="ignore"):
            moved = self.logw[idx] + np.log(hz)
            self.logw[idx] = self.logw[idx] + np.log1p(-hz)
        keys = self.k[idx] * 64 + self.j[idx] + 1
        new_k, new_j, new_w = [], [], []
        for key in np.unique(keys):
            sel = keys == key
            new_k.append(key // 64)
            new_j.append(key % 64)
            new_w.append(np.logaddexp.reduce(moved[sel]))
        m = len(new_k)
        self.k = np.concatenate([self.k, new_k])
        self.j = np.concatenate([self.j, new_j])
        self.s = np.concatenate([self.s, np.full(m, t)])
        self.logw = np.concatenate([self.logw, new_w])
        self.counts = np.concatenate([self.counts, np.zeros((m, self.counts.shape[1]))])

    def predict(self, t: int) -> np.ndarray:
        """[S, C] each state's next-event mix for event t."""
        C = self.counts.shape[1]
        return (1 - self.eps) * _taste(self.counts, self.A) + self.eps / C

    def update(self, t: int, c: int, q: np.ndarray) -> None:
        """Observe event t = category c, with `q` = predict(t)."""
        tc = _taste(self.counts, self.A)[:, c]
        self.logw = self.logw + np.log(q[:, c])
        self.counts[:, c] += (1 - self.eps) * tc / q[:, c]

    def sample(self, t: int, idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """[len(idx), C] draws of the mixture of event t from states idx' posteriors."""
        return _draw(self.counts[idx], self.A, rng) * (1 - self.eps) + self.eps / len(self.A)

    def prune(self, floor: float) -> None:
        keep = self.logw > floor
        if not keep.all():
            self.k, self.j, self.s = self.k[keep], self.j[keep], self.s[keep]
            self.logw, self.counts = self.logw[keep], self.counts[keep]


class Ramp:
    """Linear drift between two tastes over events a..e, one state per (a, e) with its prior probability."""

    def __init__(self, A: np.ndarray, eps: float, a: np.ndarray, e: np.ndarray, prob: np.ndarray):
        self.A, self.eps = A, eps
        self.a, self.e = np.asarray(a, np.float64), np.asarray(e, np.float64)
        with np.errstate(divide="ignore"):
            self.logw = np.log(np.asarray(prob, np.float64))
        self.c1 = np.zeros((len(self.a), len(A)))
        self.c2 = np.zeros((len(self.a), len(A)))

    def _lam(self, t: int) -> np.ndarray:
        return np.clip((t - self.a) / np.maximum(self.e - self.a, 1.0), 0.0, 1.0)[:, None]  # [S,1]

    def predict(self, t: int) -> np.ndarray:
        lam = self._lam(t)
        C = self.c1.shape[1]
        return (1 - self.eps) * ((1 - lam) * _taste(self.c1, self.A) + lam * _taste(self.c2, self.A)) + self.eps / C

    def update(self, t: int, c: int, q: np.ndarray) -> None:
        lam = self._lam(t)[:, 0]
        t1, t2 = _taste(self.c1, self.A)[:, c], _taste(self.c2, self.A)[:, c]
        self.logw = self.logw + np.log(q[:, c])
        self.c1[:, c] += (1 - self.eps) * (1 - lam) * t1 / q[:, c]
        self.c2[:, c] += (1 - self.eps) * lam * t2 / q[:, c]

    def transition(self, t: int) -> None:
        return None

    def sample(self, t: int, idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        lam = self._lam(t)[idx]
        m = (1 - lam) * _draw(self.c1[idx], self.A, rng) + lam * _draw(self.c2[idx], self.A, rng)
        return m * (1 - self.eps) + self.eps / len(self.A)

    def prune(self, floor: float) -> None:
        keep = self.logw > floor
        if not keep.all():
            self.a, self.e, self.logw = self.a[keep], self.e[keep], self.logw[keep]
            self.c1, self.c2 = self.c1[keep], self.c2[keep]


class Periodic:
    """A weekday and a weekend taste; `weekend` [n] is each event's flag (read from its timestamp)."""

    def __init__(self, A: np.ndarray, eps: float, prob: float, weekend: np.ndarray):
        self.A, self.eps, self.weekend = A, eps, np.asarray(weekend, bool)
        self.logw = np.array([np.log(prob)])
        self.c = np.zeros((2, len(A)))

    def predict(self, t: int) -> np.ndarray:
        C = self.c.shape[1]
        return (1 - self.eps) * _taste(self.c[int(self.weekend[t])][None, :], self.A) + self.eps / C

    def update(self, t: int, c: int, q: np.ndarray) -> None:
        w = int(self.weekend[t])
        tc = _taste(self.c[w][None, :], self.A)[0, c]
        self.logw = self.logw + np.log(q[:, c])
        self.c[w, c] += (1 - self.eps) * tc / q[0, c]

    def transition(self, t: int) -> None:
        return None

    def sample(self, t: int, idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        counts = np.repeat(self.c[int(self.weekend[min(t, len(self.weekend) - 1)])][None, :], len(idx), axis=0)
        return _draw(counts, self.A, rng) * (1 - self.eps) + self.eps / len(self.A)

    def prune(self, floor: float) -> None:
        return None


def _draw(counts: np.ndarray, A: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One Dirichlet(A + counts) draw per row. [S, C]"""
    g = rng.gamma(counts + A[None, :]) + 1e-300
    return g / g.sum(axis=1, keepdims=True)


def tv_optimal(samples: np.ndarray) -> np.ndarray:
    """The point p of the simplex minimising the mean TV Σ_i ½‖p − q_i‖₁ to the draws q_i [S, C].

    The objective is separable but for Σ p = 1; its KKT condition puts every p(c) at the same order statistic
    of its column (the subgradient 2k + 2 − S is then equal across c), so p is the column-wise sorted draws at
    the one fractional rank where they sum to one. [C]
    """
    s = np.sort(samples, axis=0)  # [S,C]
    tot = s.sum(axis=1)  # [S] non-decreasing in the rank
    k = int(np.clip(np.searchsorted(tot, 1.0) - 1, 0, len(s) - 2))
    lo, hi = tot[k], tot[k + 1]
    th = 0.0 if hi <= lo else float(np.clip((1.0 - lo) / (hi - lo), 0.0, 1.0))
    p = (1 - th) * s[k] + th * s[k + 1]
    return p / p.sum()


def run_filter(cats: np.ndarray, families: list, draws: int = 0,
               rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Filter one user's events through every hypothesis family.

    Parameters
    ----------
    cats
        [n] category index of each event.
    families
        `Segments` / `Ramp` / `Periodic` states with their prior log weights (summing to one over all families).

    Returns
    -------
    ([n, C] forecast: row t is the posterior-predictive mix of event t + 1 given events 0..t, row n − 1 that of
    a hypothetical event n; [n] log evidence increments log p(event t | events < t); with `draws` > 0, [n, C]
    the TV-optimal point forecast (`tv_optimal` over that many posterior draws of the next mixture), else None).
    Row t depends on events ≤ t.
    """
    n = len(cats)
    C = len(families[0].A)
    out = np.zeros((n, C))
    act = np.zeros((n, C)) if draws else None
    rng = rng or np.random.default_rng(0)
    evidence = np.zeros(n)
    for t in range(n + 1):
        if t > 0:
            for f in families:
                f.transition(t)
        preds = [f.predict(min(t, n - 1) if isinstance(f, Periodic) else t) for f in families]
        logw = np.concatenate([f.logw for f in families])
        top = logw.max()
        w = np.exp(logw - top)
        w /= w.sum()
        p = w @ np.concatenate(preds)  # [C]
        if t > 0:
            out[t - 1] = p
            if act is not None:
                act[t - 1] = _act(families, w, t, draws, rng)
        if t == n:
            break
        c = int(cats[t])
        evidence[t] = np.log(p[c])
        for f, q in zip(families, preds, strict=True):
            f.update(t, c, q)
        top = max(f.logw.max() for f in families if len(f.logw))
        for f in families:
            f.logw = f.logw - top
            f.prune(-_PRUNE)
    return out, evidence, act


def _act(families: list, w: np.ndarray, t: int, draws: int, rng: np.random.Generator) -> np.ndarray:
    """The TV-optimal forecast of event t from `draws` posterior draws (states drawn by weight w)."""
    pick = rng.choice(len(w), draws, p=w)
    parts, lo = [], 0
    for f in families:
        k = len(f.logw)
        sel = pick[(pick >= lo) & (pick < lo + k)] - lo
        if len(sel):
            parts.append(f.sample(t, sel, rng))
        lo += k
    return tv_optimal(np.concatenate(parts))


@dataclass(frozen=True)
class Grid:
    """Integer values of int(n·U(lo, hi)) and their probabilities."""

    values: np.ndarray  # [V]
    prob: np.ndarray  # [V], sums to one


def _int_uniform(n: int, lo: float, hi: float, max_grid: int) -> Grid:
    """The law of int(n·u) (or floor) for u ~ U(lo, hi), coarsened to at most max_grid values (probability-weighted
    mean value per bin, rounded)."""
    vals = np.arange(int(np.floor(n * lo)), int(np.floor(n * hi)) + 1)
    left = np.maximum(vals / n, lo)
    right = np.minimum((vals + 1) / n, hi)
    prob = np.maximum(right - left, 0.0) / (hi - lo)
    keep = prob > 0
    vals, prob = vals[keep], prob[keep]
    if len(vals) > max_grid:
        bins = np.array_split(np.arange(len(vals)), max_grid)
        vals = np.array([int(round((vals[b] * prob[b]).sum() / prob[b].sum())) for b in bins])
        prob = np.array([prob[b].sum() for b in bins])
    return Grid(vals, prob / prob.sum())


def ramp_grid(n: int, start: tuple[float, float], end: tuple[float, float], max_grid: int = 30) -> tuple[np.ndarray, ...]:
    """(a [G], e [G], prob [G]) for a = floor(n·U(start)), e = max(floor(n·U(end)), a + 1), independent draws."""
    ga = _int_uniform(n, *start, max_grid)
    ge = _int_uniform(n, *end, max_grid)
    a = np.repeat(ga.values, len(ge.values))
    e = np.maximum(np.tile(ge.values, len(ga.values)), a + 1)
    prob = np.outer(ga.prob, ge.prob).reshape(-1)
    return a, e, prob
