"""Fitting the change-point (BOCPD) candidates of the calibrated forecast on the validation targets.

Three candidates, each scored like the others in `core.trajectory.forecast.fit_forecast` (held-out log-loss over
two halves of the validation targets, then refitted on all of them):
- "bocpd": the filter alone (`core.trajectory.bocpd`), the model's marginal in its base with weight μ;
- "bocpd_mixture": a linear pool (1 − λ)·f_t + λ·m_t^τ / Z of the filter (μ = 0) and the tempered marginal;
- "bocpd_product": a logarithmic pool f_t^β₁ · m_t^β₂ / Z.

The filter's settings are searched coordinate-wise over `GRID` (two sweeps from `BocpdParams()`'s defaults, each
setting scored by its best μ in `MU_GRID`), on validation log-loss only; the pools' weights by L-BFGS.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
import torch

from core.trajectory.bocpd import BocpdParams, BocpdParts, bocpd_parts, new_moments
from core.trajectory.optim import minimise

__all__ = ["GRID", "MU_GRID", "POOLS", "BocpdInputs", "BocpdFit", "fit_bocpd", "pool_log_forecast"]

GRID: dict[str, tuple] = {  # the settings searched (BocpdParams fields)
    "hazard": (0.001, 0.003, 0.01, 0.03, 0.1, 0.3),
    "alpha": (0.5, 1.0, 2.0, 5.0, 10.0, 30.0),
    "long_weight": (0.0, 0.5, 0.8, 0.95),
    "per_session": (False, True),
}
MU_GRID = (0.0, 0.1, 0.2, 0.35, 0.5, 0.7, 0.9)  # weights of the model's marginal in the base
POOLS = ("bocpd_mixture", "bocpd_product")
_FLOOR = 1e-12


@dataclass
class BocpdInputs:
    """The events before each validation (or test) target: what the filter reads."""

    histories: list[np.ndarray]  # N arrays [n_i, C] of category weights
    ts: list[np.ndarray | None]  # N arrays [n_i] of unix seconds (None: no times; per-session moments off)

    def subset(self, idx: np.ndarray) -> BocpdInputs:
        return BocpdInputs([self.histories[i] for i in idx], [self.ts[i] for i in idx])

    def parts(self, prior: np.ndarray, params: BocpdParams) -> BocpdParts:
        moments = [new_moments(t, len(h), params) for h, t in zip(self.histories, self.ts, strict=True)]
        return bocpd_parts(self.histories, moments, prior, params)


@dataclass(frozen=True)
class BocpdFit:
    """One fitted BOCPD candidate."""

    kind: str  # "bocpd" or one of POOLS
    params: BocpdParams
    mu: float = 0.0  # model weight in the base ("bocpd")
    pool: tuple[float, ...] = ()  # pool weights: mixture (logit λ, log τ); product (β₁, β₂)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "params": asdict(self.params), "mu": self.mu, "pool": list(self.pool)}

    @classmethod
    def from_dict(cls, d: dict) -> BocpdFit:
        return cls(d["kind"], BocpdParams(**d["params"]), float(d.get("mu", 0.0)), tuple(float(x) for x in d.get("pool", ())))

    def forecast(self, parts: BocpdParts, model: np.ndarray) -> np.ndarray:
        """[N, C] the candidate's forecast from the filter's parts and the model's marginal [N, C]."""
        if self.kind == "bocpd":
            return parts.forecast(model, self.mu)
        with torch.no_grad():
            lp = pool_log_forecast(self.kind, torch.tensor(self.pool, dtype=torch.float64),
                                   torch.from_numpy(parts.forecast()), torch.from_numpy(np.asarray(model, np.float64)))
        return lp.exp().numpy()


def pool_log_forecast(kind: str, w: torch.Tensor, f: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """log p [N, C] of a pool of the filter's forecast f and the marginal m (both [N, C])."""
    lf = f.clamp(min=_FLOOR).log()
    lm = m.clamp(min=_FLOOR).log()
    if kind == "bocpd_mixture":
        tm = w[1].exp() * lm
        tm = tm - torch.logsumexp(tm, -1, keepdim=True)
        lam = torch.sigmoid(w[0])
        return torch.logaddexp((1 - lam).log() + lf, lam.log() + tm)
    logit = w[0] * lf + w[1] * lm
    return logit - torch.logsumexp(logit, -1, keepdim=True)


def _losses(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    return -(y * np.log(np.maximum(p, _FLOOR))).sum(axis=1)


class _Search:
    """Caches the filter's parts per setting, so every half and candidate reuses them."""

    def __init__(self, inputs: BocpdInputs, y: np.ndarray, model: np.ndarray, prior: np.ndarray):
        self.inputs, self.y, self.model, self.prior = inputs, y, model, prior
        self.cache: dict[BocpdParams, tuple[BocpdParts, np.ndarray]] = {}
        self.sessions = any(t is not None for t in inputs.ts)

    def get(self, params: BocpdParams) -> tuple[BocpdParts, np.ndarray]:
        """(parts, [len(MU_GRID), N] per-target losses at each μ)."""
        if params not in self.cache:
            parts = self.inputs.parts(self.prior, params)
            losses = np.stack([_losses(parts.forecast(self.model, mu), self.y) for mu in MU_GRID])
            self.cache[params] = (parts, losses)
        return self.cache[params]

    def best(self, idx: np.ndarray) -> tuple[BocpdParams, float, float]:
        """Coordinate-wise search on targets idx: (settings, μ, mean loss)."""
        cur = BocpdParams()
        for _ in range(2):
            for name, values in GRID.items():
                if name == "per_session" and not self.sessions:
                    continue
                scored = {v: self.get(replace(cur, **{name: v}))[1][:, idx].mean(axis=1).min() for v in values}
                cur = replace(cur, **{name: min(scored, key=scored.get)})
        losses = self.get(cur)[1][:, idx].mean(axis=1)
        k = int(np.argmin(losses))
        return cur, MU_GRID[k], float(losses[k])


def _fit_pool(kind: str, f: np.ndarray, m: np.ndarray, y: np.ndarray) -> tuple[float, ...]:
    w = torch.tensor([-2.0, 0.0] if kind == "bocpd_mixture" else [1.0, 0.0], dtype=torch.float64, requires_grad=True)
    ft, mt, yt = torch.from_numpy(f), torch.from_numpy(m), torch.from_numpy(y)
    minimise(lambda: -(yt * pool_log_forecast(kind, w, ft, mt)).sum(-1).mean() + 1e-4 * w.square().sum(), [w])
    return tuple(float(x) for x in w.detach())


def fit_bocpd(inputs: BocpdInputs, y: np.ndarray, model: np.ndarray, prior: np.ndarray,
              halves: tuple[np.ndarray, np.ndarray]) -> dict[str, tuple[float, float, BocpdFit]]:
    """Every BOCPD candidate: name -> (held-out log-loss, in-sample log-loss on all targets, fit on all targets).

    `model` [N, C] is the marginal the candidates pool with; `halves` the two index halves of `fit_forecast`.
    """
    y = np.asarray(y, np.float64)
    model = np.asarray(model, np.float64)
    search = _Search(inputs, y, model, prior)
    everyone = np.arange(len(y))

    def fit_on(idx: np.ndarray) -> dict[str, BocpdFit]:
        params, mu, _ = search.best(idx)
        out = {"bocpd": BocpdFit("bocpd", params, mu)}
        f = search.get(params)[0].forecast()
        for kind in POOLS:
            out[kind] = BocpdFit(kind, params, 0.0, _fit_pool(kind, f[idx], model[idx], y[idx]))
        return out

    def loss_on(fit: BocpdFit, idx: np.ndarray) -> float:
        parts = search.get(fit.params)[0]
        return float(_losses(fit.forecast(parts, model), y)[idx].mean())

    held: dict[str, list[float]] = {}
    if min(len(h) for h in halves) >= 5:
        for a, b in (halves, halves[::-1]):
            for name, fit in fit_on(a).items():
                held.setdefault(name, []).append(loss_on(fit, b))
    result = {}
    for name, fit in fit_on(everyone).items():
        ins = loss_on(fit, everyone)
        result[name] = (float(np.mean(held[name])) if name in held else ins, ins, fit)
    return result
