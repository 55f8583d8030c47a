"""The calibrated category forecast: p_t(c), the probability that the event after step t falls in category c.

The item-softmax marginal Σ_i softmax(s_t)_i · w(i, c) of a next-item model is far too flat (about twice the
planted entropy on synthetic logs): next-item training spreads mass over every plausible item. What an analyst
reads as "interest" is a forecast, so it is built and judged as one (../shared/METRICS.md §2). `InterestForecast`
pools three kinds of components, with weights fitted on the validation targets:

- h_k,t: the user's own exponentially decayed category counts H_k,t, one per half-life in `half_lives` (events),
  each smoothed towards the prior by α_k events' worth of it: h_k,t = (H_k,t + α_k·π) / (Σ_c H_k,t(c) + α_k), so
  a short history leans on the prior by construction, with no weight that has to extrapolate from the long
  histories validation targets sit at;
- π: the category frequency of all training events (add-one smoothed, so no category has zero mass);
- m_t: the model's own forecast, sharpened or flattened by an exponent τ: its item-softmax marginal
  (`source` "marginal"), or, for a model trained with a category head (`ModelConfig.category_loss`), the head's
  softmax (`source` "head"), which is trained on the next event's category itself.

Candidates, compared by held-out validation log-loss (two halves of the validation targets, each fitted on one
and scored on the other; the best is refitted on all of them): the raw marginal (`model`); the marginal with a
fitted temperature (`temperature`); a linear mixture p_t = (Σ_k w_k·h_k,t + w_π·π + w_m·m_t^τ/Z)^γ / Z' with
weights w = softmax(bias) and a final sharpness γ (`mixture`); a logarithmic pool log p_t = Σ_k β_k·log h_k,t +
β_π·log π + β_m·log m_t + const with β = bias (`product`), which can be sharper than any of its parts where they
agree. With a category head, every candidate is fitted twice, once on each source, and the best of the eight is
kept: the head alone (raw or tempered), or pooled with the decayed histograms. Given the events before each
target (`BocpdInputs`), three change-point candidates compete too (`core.trajectory.bocpd_fit`): Bayesian online
change-point filtering with a Dirichlet-categorical segment model, alone ("bocpd") or pooled with the marginal
("bocpd_mixture", "bocpd_product"); they read the whole history, not the components. Given the gates at each
target (history length and session position, `core.trajectory.stacked`), a stacked combiner competes too: the
product pool with exponents that move with the gates ("stacked").

Multi-category items: an event's target is its item's category weights w(i, ·), which split the item's mass
equally over its categories (`Vocab.category_weights`); log-loss is the cross-entropy −Σ_c w(i, c) log p(c), a
proper score whose optimum is the expected split. Events whose item has no category are not scored.

Shapes: N forecasts, K histograms, C categories; components are [N, K+2, C] (raw decayed counts per half-life,
the prior, the model's marginal).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import torch

from core.trajectory.bocpd import BocpdParts, bocpd_steps, new_moments
from core.trajectory.bocpd_fit import BocpdFit, BocpdInputs, fit_bocpd
from core.trajectory.measures import decayed_counts
from core.trajectory.optim import minimise as _minimise
from core.trajectory.stacked import StackedFit, fit_stacked, gate_features

__all__ = ["HALF_LIVES", "KINDS", "HistogramBaseline", "InterestForecast", "forecast_components", "fit_forecast", "cross_entropy"]

HALF_LIVES: tuple[float, ...] = (1.0, 3.0, 10.0, 30.0, math.inf)  # histogram half-lives (events) the mixture uses
_FLOOR = 1e-12
_L2 = 1e-3  # ridge on the mixture's weight logits: keeps them finite when a component is never useful

Kind = Literal["model", "temperature", "mixture", "product", "bocpd", "bocpd_mixture", "bocpd_product", "stacked"]
Source = Literal["marginal", "head"]
KINDS: tuple[Kind, ...] = ("model", "temperature", "mixture", "product")  # the candidates read from components
BOCPD_KINDS: tuple[Kind, ...] = ("bocpd", "bocpd_mixture", "bocpd_product")  # the ones that read the history


@dataclass(frozen=True)
class InterestForecast:
    """A fitted forecast (see the module docstring); JSON-ready through `to_dict`, stored in the model card."""

    kind: Kind  # which candidate won on validation log-loss
    prior: tuple[float, ...]  # [C] π, category frequency of the training events (add-one smoothed)
    half_lives: tuple[float, ...] = HALF_LIVES  # [K] of the histogram components
    bias: tuple[float, ...] = ()  # [K+2] mixture weight logits / product exponents of histograms..., prior, model
    pseudo: tuple[float, ...] = ()  # [K] α_k, events' worth of the prior in each histogram
    model_power: float = 1.0  # τ, exponent on the model's marginal (1 / temperature)
    sharpness: float = 1.0  # γ, exponent on the whole mixture
    valid: dict = field(default_factory=dict)  # validation log-loss of every candidate and the number of targets
    source: Source = "marginal"  # which model output is m_t: the item-softmax marginal or the category head
    bocpd: dict = field(default_factory=dict)  # a BOCPD kind's filter settings and pool (`BocpdFit.to_dict`)
    stacked: dict = field(default_factory=dict)  # the stacked kind's combiner (`StackedFit.to_dict`)

    def model_input(self, marginal: np.ndarray, head: np.ndarray | None) -> np.ndarray:
        """The model output this forecast reads: [n, C] `marginal` or `head` (ValueError when it needs the head
        and the model has none)."""
        if self.source == "marginal":
            return marginal
        if head is None:
            raise ValueError("This forecast reads the model's category head, and the model has none.")
        return head

    def apply(self, model_dist: np.ndarray, events: np.ndarray, ts: np.ndarray | None = None) -> np.ndarray:
        """The forecast after every step of one history.

        Parameters
        ----------
        model_dist
            [n, C] the model's item-softmax marginal after each step.
        events
            [n, C] category weights of each event's item (rows sum to 1, or 0 for an item without category).
        ts
            [n] unix seconds of the events: a BOCPD forecast fitted per session needs them (without them, every
            event is a moment).

        Returns
        -------
        [n, C] float64, rows sum to one; row t depends on steps ≤ t only.
        """
        if self.kind in BOCPD_KINDS:
            fit = BocpdFit.from_dict(self.bocpd)
            ev = np.asarray(events, np.float64)
            parts = bocpd_steps(ev, new_moments(ts, len(ev), fit.params), np.asarray(self.prior), fit.params)
            return self.apply_parts(parts, model_dist)
        comps, _ = forecast_components(model_dist, events, np.asarray(self.prior), self.half_lives)
        if self.kind == "stacked":
            return self.apply_stacked(comps, gate_features(events, ts, StackedFit.from_dict(self.stacked).session_gap))
        return self.apply_components(comps)

    def apply_stacked(self, comps: np.ndarray, gates: np.ndarray) -> np.ndarray:
        """The stacked kind's forecast from components [N, K+2, C] and gates [N, G] (`gate_features`). [N, C]"""
        return StackedFit.from_dict(self.stacked).forecast(comps, gates)

    def apply_parts(self, parts: BocpdParts, model: np.ndarray) -> np.ndarray:
        """A BOCPD kind's forecast from the filter's parts (`BocpdInputs.parts`) and the model's input [N, C]."""
        return BocpdFit.from_dict(self.bocpd).forecast(parts, model)

    def apply_components(self, comps: np.ndarray) -> np.ndarray:
        """The forecast from precomputed components [N, K+2, C] (`forecast_components`). [N, C] (not for the
        BOCPD kinds, which read the whole history: `apply` / `apply_parts`; nor for the stacked kind, which also
        reads the gates: `apply` / `apply_stacked`)."""
        if self.kind in BOCPD_KINDS:
            raise ValueError("A change-point forecast reads the whole history; use apply or apply_parts.")
        if self.kind == "stacked":
            raise ValueError("A stacked forecast also reads the history's length and session; use apply or apply_stacked.")
        if len(comps) == 0:
            return np.zeros((0, comps.shape[-1]))
        with torch.no_grad():
            lp = _log_forecast(self._params(), torch.from_numpy(np.asarray(comps, np.float64)), self.kind)
        return lp.exp().numpy()

    def _params(self) -> dict[str, torch.Tensor]:
        k = len(self.half_lives) + 2
        return {
            "bias": torch.tensor(self.bias or (0.0,) * k, dtype=torch.float64),
            "log_alpha": torch.tensor(np.log(self.pseudo or (1.0,) * (k - 2)), dtype=torch.float64),  # [K]
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
            pseudo=tuple(float(x) for x in d.get("pseudo", ())),
            model_power=float(d.get("model_power", 1.0)),
            sharpness=float(d.get("sharpness", 1.0)),
            valid=dict(d.get("valid", {})),
            source=d.get("source", "marginal"),
            bocpd=dict(d.get("bocpd", {})),
            stacked=dict(d.get("stacked", {})),
        )


def forecast_components(
    model_dist: np.ndarray, events: np.ndarray, prior: np.ndarray, half_lives: tuple[float, ...] = HALF_LIVES
) -> tuple[np.ndarray, np.ndarray]:
    """The forecast's components after every step of one history, and the categorised events so far.

    Returns ([n, K+2, C] raw decayed counts per half-life, the prior, the model's marginal; [n] events counted).
    """
    ev = np.asarray(events, np.float64)
    n, C = ev.shape
    out = np.empty((n, len(half_lives) + 2, C))
    for k, h in enumerate(half_lives):
        out[:, k] = decayed_counts(ev, h)  # [n,C]
    out[:, -2] = prior[None, :]
    out[:, -1] = np.asarray(model_dist, np.float64)
    seen = np.cumsum(ev.sum(axis=1) > 0)  # [n] categorised events up to and including step t
    return out, seen


def _log_forecast(params: dict[str, torch.Tensor], comps: torch.Tensor, kind: Kind) -> torch.Tensor:
    """log p for every row from components [N, K+2, C] (raw counts, prior, model) -> [N, C]."""
    log_model = comps[:, -1].clamp(min=_FLOOR).log()  # [N,C]
    if kind == "model":
        return log_model - torch.logsumexp(log_model, -1, keepdim=True)
    tempered = params["log_power"].exp() * log_model
    tempered = tempered - torch.logsumexp(tempered, -1, keepdim=True)
    if kind == "temperature":
        return tempered
    prior = comps[:, -2]  # [N,C]
    alpha = params["log_alpha"].clamp(-10.0, 10.0).exp()[None, :, None]  # [1,K,1]; bounded so the fit stays finite
    counts = comps[:, :-2]  # [N,K,C]
    hist = (counts + alpha * prior[:, None, :]) / (counts.sum(-1, keepdim=True) + alpha)  # [N,K,C], positive
    log_parts = torch.cat([hist.log(), prior.clamp(min=_FLOOR).log()[:, None], tempered[:, None]], dim=1)  # [N,K+2,C]
    if kind == "product":
        logit = (params["bias"][None, :, None] * log_parts).sum(1)  # [N,C]
        return logit - torch.logsumexp(logit, -1, keepdim=True)
    logw = params["bias"].log_softmax(-1)[None, :, None]  # [1,K+2,1]
    log_mix = torch.logsumexp(logw + log_parts, dim=1)  # [N,C]
    sharp = params["log_sharp"].exp() * log_mix
    return sharp - torch.logsumexp(sharp, -1, keepdim=True)


def cross_entropy(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-row log-loss −Σ_c y(c) · log p(c) (nats) of forecasts p [N, C] for split targets y [N, C]. [N]"""
    return -(np.asarray(y) * np.log(np.maximum(np.asarray(p), _FLOOR))).sum(axis=1)


def fit_forecast(
    comps: np.ndarray, y: np.ndarray, prior: np.ndarray, half_lives: tuple[float, ...] = HALF_LIVES,
    head: np.ndarray | None = None, bocpd: BocpdInputs | None = None, gates: np.ndarray | None = None,
) -> InterestForecast:
    """Choose the candidate by held-out log-loss on the validation targets, then refit it on all of them.

    The validation targets are split in two halves (a fixed permutation); each candidate is fitted on one half and
    scored on the other, both ways. The candidate with the lowest held-out log-loss (mean of the two) is refitted
    on every target; its in-sample and held-out losses are kept in `valid`. Choosing on held-out loss keeps a
    flexible pool from winning by fitting the validation targets' noise.

    Parameters
    ----------
    comps
        [N, K+2, C] `forecast_components` at the step before each validation target.
    y
        [N, C] each target's category weights (rows sum to 1; targets without a category must be left out).
    prior
        [C] the training events' category frequency.
    head
        [N, C] the category head's forecast at the same steps, or None (no head): with it, every candidate is
        also fitted with the head in the model's slot, and candidates of both sources compete (keys "head_<kind>"
        in `valid`).
    bocpd
        the events before each target (rows aligned with y), or None: with them, the BOCPD candidates (pooled with
        the item-softmax marginal) compete too.
    gates
        [N, G] `core.trajectory.stacked.gate_features` at the step before each target, or None: with them, the
        stacked candidate (over the item-softmax marginal's components) competes too.
    """
    comps = np.asarray(comps, np.float64)
    y = np.asarray(y, np.float64)
    sources: dict[str, np.ndarray] = {"marginal": comps}
    if head is not None:
        with_head = comps.copy()
        with_head[:, -1] = np.asarray(head, np.float64)
        sources["head"] = with_head
    perm = np.random.default_rng(0).permutation(len(y))
    halves = (perm[: len(y) // 2], perm[len(y) // 2 :])
    losses: dict[str, float] = {}
    score: dict[str, float] = {}
    fitted: dict[str, tuple[Source, Kind, dict[str, torch.Tensor]]] = {}
    for source, c in sources.items():
        name = (lambda k: k) if source == "marginal" else (lambda k: f"head_{k}")
        heldout: dict[Kind, list[float]] = {k: [] for k in KINDS}
        if min(len(h) for h in halves) >= 5:
            for a, b in (halves, halves[::-1]):
                for kind, params in _fit_all(c[a], y[a]).items():
                    heldout[kind].append(_loss(params, c[b], y[b], kind))
        for kind, params in _fit_all(c, y).items():
            losses[name(kind)] = _loss(params, c, y, kind)
            score[name(kind)] = float(np.mean(heldout[kind])) if heldout[kind] else losses[name(kind)]
            fitted[name(kind)] = (source, kind, params)  # type: ignore[assignment]
    bocpd_fits: dict[str, BocpdFit] = {}
    if bocpd is not None and len(y):
        for name, (held, ins, fit) in fit_bocpd(bocpd, y, comps[:, -1], np.asarray(prior, np.float64), halves).items():
            score[name], losses[name], bocpd_fits[name] = held, ins, fit
    stacked_fit: StackedFit | None = None
    if gates is not None and len(y):
        score["stacked"], losses["stacked"], stacked_fit = fit_stacked(comps, gates, y, halves)
    # a candidate whose fit diverged (non-finite loss) is never chosen; the raw marginal always stands
    best_name = min((k for k in score if math.isfinite(score[k])), key=score.get)  # type: ignore[arg-type]
    if best_name in bocpd_fits:
        return InterestForecast(
            kind=best_name,  # type: ignore[arg-type]
            prior=tuple(float(x) for x in prior),
            half_lives=tuple(half_lives),
            valid={"targets": int(len(y)), "log_loss": losses, "heldout_log_loss": score},
            bocpd=bocpd_fits[best_name].to_dict(),
        )
    if best_name == "stacked" and stacked_fit is not None:
        return InterestForecast(
            kind="stacked",
            prior=tuple(float(x) for x in prior),
            half_lives=tuple(half_lives),
            valid={"targets": int(len(y)), "log_loss": losses, "heldout_log_loss": score},
            stacked=stacked_fit.to_dict(),
        )
    source, kind, best = fitted[best_name]
    pooled = kind in ("mixture", "product")
    return InterestForecast(
        kind=kind,
        prior=tuple(float(x) for x in prior),
        half_lives=tuple(half_lives),
        bias=tuple(float(x) for x in best["bias"]) if pooled else (),
        pseudo=tuple(float(x) for x in best["log_alpha"].clamp(-10.0, 10.0).exp()) if pooled else (),
        model_power=1.0 if kind in ("model", "product") else float(best["log_power"].exp()),
        sharpness=float(best["log_sharp"].exp()) if kind == "mixture" else 1.0,
        valid={"targets": int(len(y)), "log_loss": losses, "heldout_log_loss": score},
        source=source,
    )


def _loss(params: dict[str, torch.Tensor], comps: np.ndarray, y: np.ndarray, kind: Kind) -> float:
    """Mean log-loss of one fitted candidate on these targets."""
    with torch.no_grad():
        lp = _log_forecast(params, torch.from_numpy(comps), kind)
    return float(-(torch.from_numpy(y) * lp).sum(-1).mean())


def _fit_all(comps: np.ndarray, y: np.ndarray) -> dict[str, dict[str, torch.Tensor]]:
    """Every candidate fitted on these targets by L-BFGS on log-loss: kind -> its parameters."""
    ct = torch.from_numpy(comps)
    yt = torch.from_numpy(y)
    k = comps.shape[1]
    params = {
        "bias": torch.zeros(k, dtype=torch.float64, requires_grad=True),
        "log_alpha": torch.zeros(k - 2, dtype=torch.float64, requires_grad=True),
        "log_power": torch.zeros((), dtype=torch.float64, requires_grad=True),
        "log_sharp": torch.zeros((), dtype=torch.float64, requires_grad=True),
    }

    def loss_of(kind: Kind) -> torch.Tensor:
        return -(yt * _log_forecast(params, ct, kind)).sum(-1).mean()

    def ridged(kind: Kind):  # keeps the weights finite when a component is never useful
        return lambda: loss_of(kind) + _L2 * params["bias"].square().sum()

    def snapshot() -> dict[str, torch.Tensor]:
        return {name: v.detach().clone() for name, v in params.items()}

    fitted = {"model": snapshot()}
    _minimise(lambda: loss_of("temperature"), [params["log_power"]])
    fitted["temperature"] = snapshot()
    _minimise(ridged("mixture"), list(params.values()))
    fitted["mixture"] = snapshot()
    with torch.no_grad():  # the product starts from the model alone: exponent 1 on it, 0 elsewhere
        params["bias"].zero_()
        params["bias"][-1] = 1.0
        params["log_alpha"].zero_()
        params["log_power"].zero_()
    _minimise(ridged("product"), [params["bias"], params["log_alpha"]])
    fitted["product"] = snapshot()
    return fitted


@dataclass(frozen=True)
class HistogramBaseline:
    """The decayed histogram with prior smoothing: p = (H_t + α·π) / (Σ H_t + α)."""

    half_life: float  # events
    pseudo_count: float  # α
    valid_log_loss: float  # what chose it

    def forecast(self, counts: np.ndarray, prior: np.ndarray) -> np.ndarray:
        p = counts + self.pseudo_count * prior[None, :]
        return p / p.sum(axis=1, keepdims=True)
