"""The stacked forecast candidate: a softmax combiner over log-features whose exponents move with the history.

The product pool of `core.trajectory.forecast` gives every log-feature one exponent for every user. The stacked
candidate lets the exponents depend on where the forecast stands (a multinomial logistic combiner over
log-features, Wolpert-style stacking):

    log p_t(c) = Σ_f β_f(z_t) · log φ_f,t(c) + const,    β(z) = b + Γᵀ · (z − μ_z) / σ_z

- φ: the product's log-features, the user's decayed histograms h_k (one per half-life, each smoothed by α_k
  events' worth of the prior), the catalogue prior π and the model's marginal m;
- z_t: the gates, `GATES`: log(1 + categorised events so far) (history length) and log(1 + events so far in
  the current session, a gap of at least `session_gap` seconds starting one; `core.trajectory.timegrid.sessions`)
  (session position). A history without times is one session.
- b [F], Γ [G, F] and α [K] are fitted by L-BFGS on validation log-loss, ridge on b (weak) and on Γ (stronger, as
  Γ has G times as many weights and only the validation targets to learn from); μ_z, σ_z are the gates' mean
  and spread on the targets it was fitted on, saved with it.

With Γ = 0 this is the product pool exactly. Like every candidate it is fitted on one half of the validation
targets and scored on the other (both ways) in `fit_forecast`, which keeps it only if it wins there.

Shapes: N forecasts, K histograms, F = K + 2 log-features, G gates, C categories.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from core.trajectory.optim import minimise
from core.trajectory.timegrid import SESSION_GAP_S, sessions

__all__ = ["GATES", "StackedFit", "gate_features", "fit_stacked", "stacked_log_forecast"]

GATES: tuple[str, ...] = ("log_history", "log_session")  # the gate features, in column order
_FLOOR = 1e-12
_L2_BASE = 1e-3  # ridge on b, as the product pool's
_L2_GATE = 3e-2  # ridge on Γ: G·F slopes from a few hundred targets per half overfit without it


def gate_features(events: np.ndarray, ts: np.ndarray | None, session_gap: int = SESSION_GAP_S) -> np.ndarray:
    """The gates after every step of one history.

    Parameters
    ----------
    events
        [n, C] category weights of each event's item (a row of zeros: an item without category).
    ts
        [n] unix seconds in history order, or None (then the whole history is one session).

    Returns
    -------
    [n, G] float64: row t = (log(1 + categorised events ≤ t), log(1 + events ≤ t in t's session)); row t depends on
    steps ≤ t only.
    """
    ev = np.asarray(events, np.float64)
    n = len(ev)
    seen = np.cumsum(ev.sum(axis=1) > 0)
    sess = np.zeros(n, np.int64) if ts is None else sessions(np.asarray(ts), session_gap)
    starts = np.concatenate([[0], np.flatnonzero(np.diff(sess) > 0) + 1]) if n else np.zeros(0, np.int64)
    first = starts[sess] if n else np.zeros(0, np.int64)  # [n] index of the session's first event
    position = np.arange(n) - first + 1
    return np.stack([np.log1p(seen), np.log1p(position)], axis=1).astype(np.float64)


def stacked_log_forecast(
    comps: torch.Tensor, z: torch.Tensor, base: torch.Tensor, gate: torch.Tensor, log_alpha: torch.Tensor,
    z_mean: torch.Tensor, z_scale: torch.Tensor,
) -> torch.Tensor:
    """log p [N, C] from components [N, K+2, C] (raw decayed counts, prior, model) and gates z [N, G]."""
    prior = comps[:, -2]  # [N,C]
    alpha = log_alpha.clamp(-10.0, 10.0).exp()[None, :, None]  # [1,K,1]; bounded so the fit stays finite
    counts = comps[:, :-2]  # [N,K,C]
    hist = (counts + alpha * prior[:, None, :]) / (counts.sum(-1, keepdim=True) + alpha)
    log_parts = torch.cat([hist.log(), prior.clamp(min=_FLOOR).log()[:, None], comps[:, -1:].clamp(min=_FLOOR).log()], 1)
    beta = base[None, :] + ((z - z_mean) / z_scale) @ gate  # [N,F]
    logit = (beta[:, :, None] * log_parts).sum(1)
    return logit - torch.logsumexp(logit, -1, keepdim=True)


@dataclass(frozen=True)
class StackedFit:
    """A fitted stacked combiner; JSON-ready through `to_dict` (kept in the forecast's `stacked` field)."""

    base: tuple[float, ...]  # [F] b, the exponents at the gates' mean
    gate: tuple[tuple[float, ...], ...]  # [G][F] Γ, the exponents' change per standard deviation of each gate
    pseudo: tuple[float, ...]  # [K] α_k, events' worth of the prior in each histogram
    z_mean: tuple[float, ...]  # [G] the gates' mean on the fitting targets
    z_scale: tuple[float, ...]  # [G] their standard deviation there (floored at 1e-6)
    session_gap: int = SESSION_GAP_S  # seconds; a gap at least this long starts a session (the session gate)

    def _tensors(self) -> tuple[torch.Tensor, ...]:
        t = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
        return t(self.base), t(self.gate), t(np.log(self.pseudo)), t(self.z_mean), t(self.z_scale)

    def forecast(self, comps: np.ndarray, z: np.ndarray) -> np.ndarray:
        """[N, C] the forecast from components [N, K+2, C] and gates [N, G]; rows sum to one."""
        if len(comps) == 0:
            return np.zeros((0, np.asarray(comps).shape[-1]))
        b, g, la, zm, zs = self._tensors()
        with torch.no_grad():
            lp = stacked_log_forecast(torch.from_numpy(np.asarray(comps, np.float64)),
                                      torch.from_numpy(np.asarray(z, np.float64)), b, g, la, zm, zs)
        return lp.exp().numpy()

    def to_dict(self) -> dict:
        return {"base": list(self.base), "gate": [list(r) for r in self.gate], "pseudo": list(self.pseudo),
                "z_mean": list(self.z_mean), "z_scale": list(self.z_scale), "session_gap": int(self.session_gap)}

    @classmethod
    def from_dict(cls, d: dict) -> StackedFit:
        return cls(
            base=tuple(float(x) for x in d["base"]),
            gate=tuple(tuple(float(x) for x in r) for r in d["gate"]),
            pseudo=tuple(float(x) for x in d["pseudo"]),
            z_mean=tuple(float(x) for x in d["z_mean"]),
            z_scale=tuple(float(x) for x in d["z_scale"]),
            session_gap=int(d.get("session_gap", SESSION_GAP_S)),
        )


def _fit(comps: np.ndarray, z: np.ndarray, y: np.ndarray) -> StackedFit:
    ct, zt, yt = (torch.from_numpy(np.asarray(a, np.float64)) for a in (comps, z, y))
    f, g = comps.shape[1], z.shape[1]
    z_mean = zt.mean(0)
    z_scale = zt.std(0, unbiased=False).clamp(min=1e-6)
    base = torch.zeros(f, dtype=torch.float64)
    base[-1] = 1.0  # starts from the model alone, as the product pool does
    base.requires_grad_(True)
    gate = torch.zeros(g, f, dtype=torch.float64, requires_grad=True)
    log_alpha = torch.zeros(f - 2, dtype=torch.float64, requires_grad=True)

    def objective() -> torch.Tensor:
        lp = stacked_log_forecast(ct, zt, base, gate, log_alpha, z_mean, z_scale)
        return -(yt * lp).sum(-1).mean() + _L2_BASE * base.square().sum() + _L2_GATE * gate.square().sum()

    minimise(objective, [base, gate, log_alpha])
    return StackedFit(
        base=tuple(float(x) for x in base.detach()),
        gate=tuple(tuple(float(x) for x in r) for r in gate.detach()),
        pseudo=tuple(float(x) for x in log_alpha.detach().clamp(-10.0, 10.0).exp()),
        z_mean=tuple(float(x) for x in z_mean),
        z_scale=tuple(float(x) for x in z_scale),
    )


def _loss(fit: StackedFit, comps: np.ndarray, z: np.ndarray, y: np.ndarray) -> float:
    p = fit.forecast(comps, z)
    return float(-(np.asarray(y) * np.log(np.maximum(p, _FLOOR))).sum(axis=1).mean())


def fit_stacked(
    comps: np.ndarray, z: np.ndarray, y: np.ndarray, halves: tuple[np.ndarray, np.ndarray]
) -> tuple[float, float, StackedFit]:
    """(held-out log-loss, in-sample log-loss on all targets, the fit on all targets).

    `comps` [N, K+2, C], `z` [N, G] (`gate_features` at the step before each target), `y` [N, C]; `halves` are
    `fit_forecast`'s two index halves (held-out = the mean of fitting on one and scoring the other, both ways;
    with fewer than 5 targets in a half, the in-sample loss stands in).
    """
    comps, z, y = (np.asarray(a, np.float64) for a in (comps, z, y))
    held = []
    if min(len(h) for h in halves) >= 5:
        for a, b in (halves, halves[::-1]):
            held.append(_loss(_fit(comps[a], z[a], y[a]), comps[b], z[b], y[b]))
    fit = _fit(comps, z, y)
    ins = _loss(fit, comps, z, y)
    return (float(np.mean(held)) if held else ins), ins, fit
