"""The calibrated category forecast: p_t(c), the probability that the event after step t falls in category c.

The item-softmax marginal Σ_i softmax(s_t)_i · w(i, c) of a next-item model is far too flat (about twice the
planted entropy on synthetic logs): next-item training spreads mass over every plausible item. What an analyst
reads as "interest" is a forecast, so it is built and judged as one (../shared/METRICS.md §2). `InterestForecast`
is a learned mixture fitted on the validation targets:

    mix_t = Σ_k w_k(n_t) · h_k,t  +  w_π(n_t) · π  +  w_m(n_t) · m_t^τ / Z
    p_t   = mix_t^γ / Σ_c mix_t(c)^γ

- h_k,t: the user's own exponentially decayed category histograms, one per half-life in `half_lives` (events);
- π: the category frequency of all training events (add-one smoothed, so no category has zero mass);
- m_t: the model's item-softmax marginal, sharpened or flattened by the exponent τ;
- w(n_t) = softmax(bias + slope · log(1 + n_t)) with n_t the number of categorised events so far, so a short
  history leans on the prior and the model and a long one on the user's own events;
- γ: a final sharpness exponent (temperature calibration of the whole mixture).

Fitting compares three candidates by validation log-loss and keeps the best: the raw marginal (`model`), the
marginal with a fitted temperature (`temperature`), and the mixture (`mixture`).

Multi-category items: an event's target is its item's category weights w(i, ·), which split the item's mass
equally over its categories (`Vocab.category_weights`); log-loss is the cross-entropy −Σ_c w(i, c) log p(c), a
proper score whose optimum is the expected split. Events whose item has no category are not scored.

Shapes: N forecasts, K histograms, C categories; components are [N, K+2, C] (histograms, prior, model).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import torch

from core.trajectory.measures import decayed_counts

__all__ = ["HALF_LIVES", "InterestForecast", "forecast_components", "fit_forecast", "cross_entropy"]

HALF_LIVES: tuple[float, ...] = (1.0, 3.0, 10.0, 30.0, math.inf)  # histogram half-lives (events) the mixture uses
_FLOOR = 1e-12
_L2 = 1e-3  # ridge on the mixture's weight logits: keeps them finite when a component is never useful

Kind = Literal["model", "temperature", "mixture"]


@dataclass(frozen=True)
class InterestForecast:
    """A fitted forecast (see the module docstring); JSON-ready through `to_dict`, stored in the model card."""

    kind: Kind  # which candidate won on validation log-loss
    prior: tuple[float, ...]  # [C] π, category frequency of the training events (add-one smoothed)
    half_lives: tuple[float, ...] = HALF_LIVES  # [K] of the histogram components
    bias: tuple[float, ...] = ()  # [K+2] weight logits of histograms..., prior, model at n = 0
    slope: tuple[float, ...] = ()  # [K+2] change of those logits per unit of log(1 + n)
    model_power: float = 1.0  # τ, exponent on the model's marginal (1 / temperature)
    sharpness: float = 1.0  # γ, exponent on the whole mixture
    valid: dict = field(default_factory=dict)  # validation log-loss of every candidate and the number of targets

    def apply(self, model_dist: np.ndarray, events: np.ndarray) -> np.ndarray:
        """The forecast after every step of one history.

        Parameters
        ----------
        model_dist
            [n, C] the model's item-softmax marginal after each step.
        events
            [n, C] category weights of each event's item (rows sum to 1, or 0 for an item without category).

        Returns
        -------
        [n, C] float64, rows sum to one; row t depends on steps ≤ t only.
        """
        comps, n = forecast_components(model_dist, events, np.asarray(self.prior), self.half_lives)
        return self.apply_components(comps, n)

    def apply_components(self, comps: np.ndarray, n: np.ndarray) -> np.ndarray:
        """The forecast from precomputed components [N, K+2, C] and event counts [N]. [N, C]"""
        if len(comps) == 0:
            return np.zeros((0, comps.shape[-1]))
        with torch.no_grad():
            lp = _log_forecast(self._params(), torch.from_numpy(np.log(np.maximum(comps, _FLOOR))),
                               torch.from_numpy(np.log1p(n.astype(np.float64))), self.kind)
        return lp.exp().numpy()

    def _params(self) -> dict[str, torch.Tensor]:
        k = len(self.half_lives) + 2
        return {
            "bias": torch.tensor(self.bias or (0.0,) * k, dtype=torch.float64),
            "slope": torch.tensor(self.slope or (0.0,) * k, dtype=torch.float64),
            "log_power": torch.tensor(math.log(self.model_power), dtype=torch.float64),
            "log_sharp": torch.tensor(math.log(self.sharpness), dtype=torch.float64),
        }

    def to_dict(self) -> dict:
        d = asdict(self)
        d["half_lives"] = [None if math.isinf(h) else h for h in self.half_lives]  # JSON has no infinity
        return d

    @classmethod
    def from_dict(cls, d: dict) -> InterestForecast:
        return cls(
            kind=d["kind"],
            prior=tuple(float(x) for x in d["prior"]),
            half_lives=tuple(math.inf if h is None else float(h) for h in d.get("half_lives", HALF_LIVES)),
            bias=tuple(float(x) for x in d.get("bias", ())),
            slope=tuple(float(x) for x in d.get("slope", ())),
            model_power=float(d.get("model_power", 1.0)),
            sharpness=float(d.get("sharpness", 1.0)),
            valid=dict(d.get("valid", {})),
        )


def forecast_components(
    model_dist: np.ndarray, events: np.ndarray, prior: np.ndarray, half_lives: tuple[float, ...] = HALF_LIVES
) -> tuple[np.ndarray, np.ndarray]:
    """The mixture's components after every step of one history, and the categorised events so far.

    Returns ([n, K+2, C] histograms per half-life, the prior, the model's marginal; [n] events counted). A
    histogram with no categorised event yet is the prior (the mixture then has nothing of the user's to use).
    """
    ev = np.asarray(events, np.float64)
    n, C = ev.shape
    out = np.empty((n, len(half_lives) + 2, C))
    for k, h in enumerate(half_lives):
        counts = decayed_counts(ev, h)  # [n,C]
        total = counts.sum(axis=1, keepdims=True)
        out[:, k] = np.where(total > _FLOOR, counts / np.maximum(total, _FLOOR), prior[None, :])
    out[:, -2] = prior[None, :]
    out[:, -1] = np.asarray(model_dist, np.float64)
    seen = np.cumsum(ev.sum(axis=1) > 0)  # [n] categorised events up to and including step t
    return out, seen


def _log_forecast(params: dict[str, torch.Tensor], log_comps: torch.Tensor, log_n: torch.Tensor, kind: Kind) -> torch.Tensor:
    """log p for every row: [N, K+2, C] log components, [N] log(1 + n) -> [N, C]."""
    log_model = log_comps[:, -1]  # [N,C]
    if kind == "model":
        return log_model - torch.logsumexp(log_model, -1, keepdim=True)
    tempered = params["log_power"].exp() * log_model
    tempered = tempered - torch.logsumexp(tempered, -1, keepdim=True)
    if kind == "temperature":
        return tempered
    comps = torch.cat([log_comps[:, :-1], tempered[:, None]], dim=1)  # [N,K+2,C]
    logw = (params["bias"][None, :] + params["slope"][None, :] * log_n[:, None]).log_softmax(-1)  # [N,K+2]
    log_mix = torch.logsumexp(logw[..., None] + comps, dim=1)  # [N,C]
    sharp = params["log_sharp"].exp() * log_mix
    return sharp - torch.logsumexp(sharp, -1, keepdim=True)


def cross_entropy(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-row log-loss −Σ_c y(c) · log p(c) (nats) of forecasts p [N, C] for split targets y [N, C]. [N]"""
    return -(np.asarray(y) * np.log(np.maximum(np.asarray(p), _FLOOR))).sum(axis=1)


def fit_forecast(
    comps: np.ndarray, n: np.ndarray, y: np.ndarray, prior: np.ndarray, half_lives: tuple[float, ...] = HALF_LIVES
) -> InterestForecast:
    """Fit the candidates on validation targets and keep the one with the lowest log-loss.

    Parameters
    ----------
    comps
        [N, K+2, C] `forecast_components` at the step before each validation target.
    n
        [N] categorised events before each target.
    y
        [N, C] each target's category weights (rows sum to 1; targets without a category must be left out).
    prior
        [C] the training events' category frequency.
    """
    lc = torch.from_numpy(np.log(np.maximum(comps, _FLOOR)))
    ln = torch.from_numpy(np.log1p(n.astype(np.float64)))
    yt = torch.from_numpy(np.asarray(y, np.float64))
    k = comps.shape[1]
    params = {
        "bias": torch.zeros(k, dtype=torch.float64, requires_grad=True),
        "slope": torch.zeros(k, dtype=torch.float64, requires_grad=True),
        "log_power": torch.zeros((), dtype=torch.float64, requires_grad=True),
        "log_sharp": torch.zeros((), dtype=torch.float64, requires_grad=True),
    }

    def loss_of(kind: Kind) -> torch.Tensor:
        return -(yt * _log_forecast(params, lc, ln, kind)).sum(-1).mean()

    losses = {"model": float(loss_of("model").detach())}
    _minimise(lambda: loss_of("temperature"), [params["log_power"]])
    losses["temperature"] = float(loss_of("temperature").detach())
    temperature_power = float(params["log_power"].detach().exp())

    def mixture_objective() -> torch.Tensor:
        ridge = _L2 * (params["bias"].square().sum() + params["slope"].square().sum())
        return loss_of("mixture") + ridge

    _minimise(mixture_objective, list(params.values()))
    losses["mixture"] = float(loss_of("mixture").detach())
    kind: Kind = min(losses, key=losses.get)  # type: ignore[arg-type]
    power = temperature_power if kind == "temperature" else float(params["log_power"].detach().exp())
    mixture = kind == "mixture"
    return InterestForecast(
        kind=kind,
        prior=tuple(float(x) for x in prior),
        half_lives=tuple(half_lives),
        bias=tuple(float(x) for x in params["bias"].detach()) if mixture else (),
        slope=tuple(float(x) for x in params["slope"].detach()) if mixture else (),
        model_power=power if kind != "model" else 1.0,
        sharpness=float(params["log_sharp"].detach().exp()) if mixture else 1.0,
        valid={"targets": int(len(y)), "log_loss": losses},
    )


def _minimise(objective, tensors: list[torch.Tensor], iterations: int = 200) -> None:
    """L-BFGS with a strong-Wolfe line search; the objectives are smooth and have a handful of parameters."""
    opt = torch.optim.LBFGS(tensors, max_iter=iterations, line_search_fn="strong_wolfe", tolerance_grad=1e-9)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = objective()
        loss.backward()
        return loss

    opt.step(closure)
