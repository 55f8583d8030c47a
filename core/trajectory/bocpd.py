"""Bayesian online change-point filtering of a user's category sequence (Adams & MacKay 2007), the segment model a
Dirichlet-categorical: a candidate of the calibrated forecast (`core.trajectory.forecast`, kinds "bocpd*").

Model. A user's events fall into segments; each segment's category mix is a draw from Dirichlet(α·b). Before each
moment a new segment starts with probability h (the hazard): per event, or per session (`session_gap` seconds
between two events start a new moment, so a bulk sitting is one moment and can hold no change). The filter keeps
the posterior over the run length r (the current segment is the last r events), r = 0 … R − 1 exactly, the last
state standing for "R − 1 or more" (its counts are those of the last R − 1 events, a sliding window: that keeps a
2,700-event user at O(n·R·C)).

Base. b_r = ω·L_r + (1 − ω)·π: L_r is the user's long-run mix before the current segment, (counts before it +
κ·π) / (their total + κ), so a taste the user had before is expected back; π is the catalogue prior (training
category frequency). At the forecast the model's marginal m_t joins the base with weight μ:
b = (1 − μ)·b_r + μ·m_t. Because the forecast is linear in b, it splits into parts the filter computes without
the model — p_t = U_t + α·((1 − μ)·V_t + μ·s_t·m_t) with U_t = Σ_r P(r)·n_r / (N_r + α),
V_t = Σ_r P(r)·b_r / (N_r + α), s_t = Σ_r P(r) / (N_r + α) — so μ is fitted without rerunning the filter, and the
filter's run-length posterior never depends on the model (it uses μ = 0).

Multi-category items count as their equal split (as everywhere in the forecast): the split y is added to the
counts and the event's likelihood under a run is exp Σ_c y(c)·log p_r(c), the score the forecast is judged by.
Events without a category are not moments and change nothing.

Forecast for the next event after event t: the transition to it uses h times the user's share of events so far
that opened a moment (the next event's time is not known yet), so a bulk-rating user is rarely expected to change.

Shapes: B histories, R run lengths, C categories.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.trajectory.timegrid import SESSION_GAP_S, sessions

__all__ = ["BocpdParams", "BocpdParts", "bocpd_parts", "bocpd_steps", "new_moments"]



@dataclass(frozen=True)
class BocpdParams:
    """The filter's settings (chosen on validation log-loss by `core.trajectory.forecast.fit_forecast`)."""

    hazard: float = 0.01  # h, probability that a moment opens a new segment
    alpha: float = 5.0  # events' worth of the base in each segment's Dirichlet prior
    long_weight: float = 0.5  # ω, weight of the user's long-run mix (before the segment) in the base; the rest π
    kappa: float = 1.0  # events' worth of π smoothing the long-run mix
    per_session: bool = False  # True: only the first event of a session (gap of at least `session_gap`, as `timegrid.sessions`) is a moment
    session_gap: float = float(SESSION_GAP_S)  # seconds: the time grid's session rule (30 minutes)
    max_run: int = 100  # R, run-length states kept

    def __post_init__(self) -> None:
        if not (0.0 <= self.hazard <= 1.0 and self.alpha > 0 and 0.0 <= self.long_weight <= 1.0 and self.kappa > 0
                and self.max_run >= 2):
            raise ValueError("BOCPD needs 0 ≤ hazard ≤ 1, alpha > 0, 0 ≤ long_weight ≤ 1, kappa > 0 and max_run ≥ 2.")


@dataclass(frozen=True)
class BocpdParts:
    """The model-free parts of the forecast (module docstring): p = U + α·((1 − μ)·V + μ·s·m)."""

    U: np.ndarray  # [N, C]
    V: np.ndarray  # [N, C]
    s: np.ndarray  # [N]
    alpha: float

    def forecast(self, model: np.ndarray | None = None, mu: float = 0.0) -> np.ndarray:
        """[N, C] the forecast with the model's marginal `model` [N, C] at weight μ in the base (rows sum to 1)."""
        p = self.U + self.alpha * (1.0 - mu) * self.V
        if mu > 0 and model is not None:
            p = p + self.alpha * mu * self.s[:, None] * np.asarray(model, np.float64)
        return p / p.sum(axis=1, keepdims=True)


def new_moments(ts: np.ndarray | None, n: int, params: BocpdParams) -> np.ndarray:
    """[n] bool: which events are moments (may open a segment). Every event without `per_session` or times."""
    if not params.per_session or ts is None:
        return np.ones(n, bool)
    if not n:
        return np.zeros(0, bool)
    # the time grid's own session rule (a gap of at least `session_gap` starts a sitting), so a BOCPD moment is
    # exactly a session of the trajectory chart
    s = sessions(np.asarray(ts), int(params.session_gap))
    return np.concatenate([[True], np.diff(s) > 0])


def bocpd_parts(histories: list[np.ndarray], moments: list[np.ndarray], prior: np.ndarray,
                params: BocpdParams) -> BocpdParts:
    """The forecast parts after the last event of each history (for the event after it).

    Parameters
    ----------
    histories
        B arrays [n_b, C] of category weights (rows sum to 1, or 0 for an event without category); n_b may be 0.
    moments
        B arrays [n_b] bool (`new_moments`).
    prior
        [C] π.

    Returns
    -------
    `BocpdParts` with N = B rows; row b depends on histories[b] only.
    """
    return _run(histories, moments, prior, params, every_step=False)


def bocpd_steps(events: np.ndarray, moments: np.ndarray, prior: np.ndarray, params: BocpdParams) -> BocpdParts:
    """The parts after every event of one history ([n, C] events): row t forecasts event t + 1 from events ≤ t."""
    return _run([np.asarray(events, np.float64)], [np.asarray(moments, bool)], prior, params, every_step=True)


def _run(histories, moments, prior, params: BocpdParams, every_step: bool) -> BocpdParts:
    prior = np.asarray(prior, np.float64)
    C = len(prior)
    R = params.max_run
    a, h, om, ka = params.alpha, params.hazard, params.long_weight, params.kappa
    lengths = np.array([len(x) for x in histories], np.int64)
    order = np.argsort(-lengths, kind="stable")  # longest first: the histories still running are a prefix
    B = len(histories)
    n_max = int(lengths.max()) if B else 0
    P = np.zeros((B, R))  # run-length posterior after the events so far
    P[:, 0] = 1.0  # no event yet: an empty segment
    # run r's counts are S_τ − S_(τ−r) (S: cumulative counts, τ: categorised events so far), so only the last R
    # cumulative vectors are kept, in a ring (slot τ mod R); no [B,R,C] array is shifted per event
    ring = np.zeros((B, R, C))  # [B,R,C]
    ring_n = np.zeros((B, R))  # their totals
    tau = np.zeros(B, np.int64)
    total = np.zeros((B, C))  # S_τ
    opened = np.zeros(B)  # moments so far
    steps_out = []
    ev_sorted = [np.asarray(histories[i], np.float64) for i in order]
    mo_sorted = [np.asarray(moments[i], bool) for i in order]
    len_sorted = lengths[order]
    # each event's categories, at most m of them: the likelihood reads only those columns ([k,R,m], not [k,R,C])
    m = max([int((e > 0).sum(axis=1).max()) for e in ev_sorted if len(e)] + [1])
    cat_sorted = [np.argsort(-e, axis=1, kind="stable")[:, :m] for e in ev_sorted]  # [n,m]
    lags = np.arange(R)
    for t in range(n_max):
        k = int((len_sorted > t).sum())  # histories with more than t events (a prefix: longest first)
        x = np.stack([ev_sorted[i][t] for i in range(k)])  # [k,C]
        ci = np.stack([cat_sorted[i][t] for i in range(k)])  # [k,m]
        cw = np.take_along_axis(x, ci, axis=1)  # [k,m] their weights (0 for padding)
        xs = x.sum(axis=1)
        has = xs > 0  # [k] an event without category changes nothing
        mom = np.array([mo_sorted[i][t] for i in range(k)]) & has
        hz = np.where(mom, h, 0.0)[:, None]  # [k,1]
        Q = P[:k] * (1 - hz)  # [k,R] continuing runs ...
        Q[:, 0] += (P[:k] * hz).sum(axis=1)  # ... and a new segment, which has run 0's empty counts
        slot = (tau[:k, None] - lags[None, :]) % R  # [k,R] where S_(τ−r) sits
        rows = np.arange(k)[:, None]
        before = ring[rows[:, :, None], slot[:, :, None], ci[:, None, :]]  # [k,R,m] S_(τ−r) at the categories
        n_before = ring_n[rows, slot]  # [k,R]
        cg = np.take_along_axis(total[:k], ci, axis=1)[:, None, :] - before  # [k,R,m] the segment's counts
        n_run = total[:k].sum(axis=1, keepdims=True) - n_before  # [k,R]
        pg = prior[ci][:, None, :]  # [k,1,m]
        base = om * (before + ka * pg) / (n_before + ka)[:, :, None] + (1 - om) * pg
        pr = (cg + a * base) / (n_run + a)[:, :, None]  # [k,R,m] each run's predictive at the event's categories
        logl = (cw[:, None, :] * np.log(np.maximum(pr, 1e-300))).sum(-1)  # [k,R] log-likelihood of the split
        lw = np.log(np.maximum(Q, 1e-300)) + logl
        g = np.exp(lw - lw.max(axis=1, keepdims=True)) * (Q > 0)
        grown = np.zeros_like(g)  # run r → r + 1; the last state absorbs the one before it (a window of R − 1)
        grown[:, 1:] = g[:, :-1]
        grown[:, -1] += g[:, -1]
        grown /= grown.sum(axis=1, keepdims=True)
        P[:k] = np.where(has[:, None], grown, P[:k])
        total[:k] += x
        tau[:k] += has
        upd = np.flatnonzero(has)
        ring[upd, tau[upd] % R] = total[upd]
        ring_n[upd, tau[upd] % R] = total[upd].sum(axis=1)
        opened[:k] += mom
        if every_step:
            steps_out.append(_parts(P[:1], _counts(ring[:1], total[:1], tau[:1]), total[:1], opened[:1],
                                    tau[:1].astype(np.float64), prior, params))
    if every_step:
        if not steps_out:
            return BocpdParts(np.zeros((0, C)), np.zeros((0, C)), np.zeros(0), a)
        return BocpdParts(*(np.concatenate([s[i] for s in steps_out]) for i in range(3)), a)
    U, V, s = _parts(P, _counts(ring, total, tau), total, opened, tau.astype(np.float64), prior, params)
    inv = np.empty(B, np.int64)
    inv[order] = np.arange(B)
    return BocpdParts(U[inv], V[inv], s[inv], a)


def _base(before: np.ndarray, prior: np.ndarray, om: float, ka: float) -> np.ndarray:
    """b = ω·(before + κπ) / (Σ before + κ) + (1 − ω)·π for counts `before` [..., C]."""
    long = (before + ka * prior) / (before.sum(-1, keepdims=True) + ka)
    return om * long + (1 - om) * prior


def _counts(ring: np.ndarray, total: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """[B,R,C] each run's segment counts S_τ − S_(τ−r) from the ring."""
    R = ring.shape[1]
    slot = (tau[:, None] - np.arange(R)[None, :]) % R  # [B,R]
    return total[:, None, :] - ring[np.arange(len(tau))[:, None], slot]


def _parts(P, counts, total, opened, seen, prior, params: BocpdParams):
    """U, V, s for the next event: one more transition with hazard h·(share of events that opened a moment)."""
    a = params.alpha
    rate = (opened + 1.0) / (seen + 2.0) if params.per_session else np.ones(len(P))
    hz = (params.hazard * rate)[:, None]  # [B,1]
    Pn = P * (1 - hz)
    Pn[:, 0] += hz[:, 0] * P.sum(axis=1)  # a new segment: run 0, empty counts, base from everything so far
    N = counts.sum(-1)  # [B,R]; run 0 is empty
    b = _base(total[:, None, :] - counts, prior, params.long_weight, params.kappa)  # [B,R,C]
    inv = Pn / (N + a)  # [B,R]
    U = (inv[:, :, None] * counts).sum(1)
    V = (inv[:, :, None] * b).sum(1)
    return U, V, inv.sum(1)
