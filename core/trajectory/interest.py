"""The interest forecast judged as a forecast: log-loss, Brier, calibration and sharpness on held-out events,
beside the user's own decayed category histogram with its half-life tuned on validation (../shared/METRICS.md §2).

Protocol. The forecast for a held-out target is the one after the events before it: the model's item-softmax
marginal read exactly as recommendations read it (the latest `max_len` events before the target), and the user's
histograms over all the events before it. The forecast (`core.trajectory.forecast`) and the baseline's half-life
and prior pseudo-count are fitted on the validation targets; the figures are on the test targets, touched once.
Targets whose item has no category, or that the model does not know, are not scored.

Definitions (N scored targets, C categories, y the target's category weights, equal split over a multi-category
item's categories):
- log_loss: mean −Σ_c y(c) · log p(c), nats.
- log_loss_any: mean −log Σ_{c: y(c) > 0} p(c), the mass on any of the target item's categories (METRICS §2's
  reading; the same as log_loss for single-category items, lower for multi-category ones). Not a proper score
  for the split, so forecasts are fitted on log_loss and this is reported beside it.
- brier: mean Σ_c (p(c) − y(c))².
- ece: all N·C (forecast, outcome) pairs put in 10 equal-width bins of the forecast probability [0, 0.1), …,
  [0.9, 1.0]; Σ_b (n_b / NC) · |mean forecast_b − mean outcome_b|. The outcome of a pair is y(c), so a
  two-category item counts one half in each of its categories. `reliability` lists the bins (the diagram).
- ece_top: the same with one pair per target, its most probable category (top-label ECE).
- entropy: mean −Σ_c p(c) log p(c), nats; `entropy_gap` = entropy − log_loss, 0 when the forecast is as sure as
  the surprise it meets (negative: overconfident, positive: too flat).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from core.checkpoint import LoadedModel, read_json
from core.evaluate.split import Split
from core.friends.context import SocialContext
from core.sequences import Sequences, make_batch
from core.trajectory.bocpd_fit import BocpdInputs
from core.trajectory.forecast import (
    BOCPD_KINDS,
    HALF_LIVES,
    HistogramBaseline,
    InterestForecast,
    cross_entropy,
    fit_forecast,
    forecast_components,
)
from core.trajectory.measures import category_distribution, decayed_counts
from core.trajectory.planted import planted_report
from core.trajectory.stacked import GATES, gate_features

__all__ = [
    "N_BINS",
    "PSEUDO_COUNTS",
    "BASELINE_HALF_LIVES",
    "ForecastScores",
    "HistogramBaseline",
    "TargetInputs",
    "forecast_scores",
    "category_prior",
    "target_inputs",
    "tune_histogram",
    "fit_interest",
    "saved_forecast",
    "interest_report",
    "store_interest",
    "evaluate_interest",
]

N_BINS = 10
BASELINE_HALF_LIVES = (1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 75, 100, 150, math.inf)
PSEUDO_COUNTS = (0.01, 0.1, 0.3, 1.0, 3.0)  # events' worth of the prior the baseline may add (tuned with the half-life)
_FLOOR = 1e-12


@dataclass
class ForecastScores:
    """How one forecast fared on a set of targets (definitions in the module docstring)."""

    targets: int
    log_loss: float
    log_loss_any: float
    brier: float
    ece: float
    ece_top: float
    entropy: float
    entropy_gap: float
    reliability: list[dict] = field(default_factory=list)  # per bin: lo, hi, count, forecast, observed


def forecast_scores(p: np.ndarray, y: np.ndarray, bins: int = N_BINS) -> ForecastScores:
    """Score forecasts p [N, C] against split targets y [N, C] (rows of both sum to one)."""
    p = np.asarray(p, np.float64)
    y = np.asarray(y, np.float64)
    ll = float(cross_entropy(p, y).mean())
    ent = float(-(p * np.log(np.maximum(p, _FLOOR))).sum(axis=1).mean())
    diagram = _reliability(p.reshape(-1), y.reshape(-1), bins)
    top = p.argmax(axis=1)
    rows = np.arange(len(p))
    top_bins = _reliability(p[rows, top], y[rows, top], bins)
    return ForecastScores(
        targets=int(len(p)),
        log_loss=ll,
        log_loss_any=float(-np.log(np.maximum((p * (y > 0)).sum(axis=1), _FLOOR)).mean()),
        brier=float(((p - y) ** 2).sum(axis=1).mean()),
        ece=_ece(diagram),
        ece_top=_ece(top_bins),
        entropy=ent,
        entropy_gap=ent - ll,
        reliability=diagram,
    )


def _reliability(f: np.ndarray, o: np.ndarray, bins: int) -> list[dict]:
    b = np.minimum((f * bins).astype(np.int64), bins - 1)  # [0, 1/bins) … [(bins−1)/bins, 1]
    out = []
    for k in range(bins):
        sel = b == k
        n = int(sel.sum())
        out.append({"lo": k / bins, "hi": (k + 1) / bins, "count": n,
                    "forecast": float(f[sel].mean()) if n else None, "observed": float(o[sel].mean()) if n else None})
    return out


def _ece(diagram: list[dict]) -> float:
    total = sum(d["count"] for d in diagram)
    return float(sum(d["count"] * abs(d["forecast"] - d["observed"]) for d in diagram if d["count"]) / max(total, 1))


def category_prior(seqs: Sequences, split: Split, weights: np.ndarray) -> np.ndarray:
    """[C] category frequency of the training events, add-one smoothed (every category keeps some mass)."""
    starts = seqs.offsets[:-1]
    idx = np.concatenate([np.arange(a, b) for a, b in zip(starts, split.train_end, strict=True)]) if len(starts) else []
    counts = weights[seqs.items[np.asarray(idx, np.int64)]].sum(axis=0) + 1.0
    return counts / counts.sum()


@dataclass
class TargetInputs:
    """Everything a forecast of the scored targets needs (rows aligned)."""

    rows: np.ndarray  # [N] user rows
    targets: np.ndarray  # [N] absolute event indices of the targets
    y: np.ndarray  # [N, C] the targets' category weights
    model: np.ndarray  # [N, C] the model's marginal after the events before each target
    comps: np.ndarray  # [N, K+2, C] the forecast's components there
    seen: np.ndarray  # [N] categorised events before each target
    counts: dict  # half-life -> [N, C] decayed category counts before each target (the baseline's input)
    head: np.ndarray | None = None  # [N, C] the category head's forecast there (None: the model has no head)
    history: BocpdInputs | None = None  # the events (and times) before each target, for the change-point candidates
    gates: np.ndarray | None = None  # [N, G] history length and session position before each target (stacked)


def target_inputs(
    loaded: LoadedModel, seqs: Sequences, rows: np.ndarray, targets: np.ndarray, prior: np.ndarray,
    half_lives: tuple[float, ...] = HALF_LIVES, batch_size: int = 512, social: SocialContext | None = None,
) -> TargetInputs:
    """Forecast inputs for the targets (rows, absolute indices) whose item is known and has a category; with
    `social` (a social model's friend context over `seqs`), the model's marginal is read with friends, as
    trajectories read it."""
    w = loaded.vocab.category_weights().numpy().astype(np.float64)  # [I+1,C]
    y = w[seqs.items[targets]]
    keep = y.sum(axis=1) > 0
    rows, targets, y = rows[keep], targets[keep], y[keep]
    L = loaded.config.max_len
    model = loaded.model.eval()
    wt = torch.from_numpy(w).to(loaded.device)
    with_head = getattr(model, "cat_head", None) is not None
    marg, heads = [], []
    with torch.inference_mode():
        for lo in range(0, len(rows), batch_size):
            hs = [seqs.history(int(r), t - seqs.offsets[r] - L, t - seqs.offsets[r])
                  for r, t in zip(rows[lo:lo + batch_size], targets[lo:lo + batch_size], strict=True)]
            batch = make_batch(hs, L)
            if social is not None and getattr(model, "social", None) is not None:
                batch = social.history_hook(rows[lo:lo + batch_size])(batch, np.arange(len(hs)))
            batch = batch.to(loaded.device)
            enc = model.encode(batch)
            states = model.readout(enc, batch)  # [B,D], as the model's forward reads it
            marg.append(category_distribution(model.scores(enc, batch), wt).cpu().numpy())
            if with_head:
                heads.append(model.category_forecast(states).double().cpu().numpy())
    m = np.concatenate(marg) if marg else np.zeros((0, w.shape[1]))
    head = (np.concatenate(heads) if heads else np.zeros((0, w.shape[1]))) if with_head else None
    comps, seen, before, times, gates = [], [], [], [], []
    counts: dict = {h: [] for h in BASELINE_HALF_LIVES}
    for k, (r, t) in enumerate(zip(rows, targets, strict=True)):
        ev = w[seqs.items[seqs.offsets[r]:t]]  # [j,C] the events before the target
        before.append(ev)
        times.append(seqs.ts[seqs.offsets[r]:t])
        c, s = forecast_components(np.tile(m[k], (len(ev), 1)), ev, prior, half_lives)
        comps.append(c[-1])
        gates.append(gate_features(ev, times[-1])[-1])
        seen.append(s[-1])
        for h in BASELINE_HALF_LIVES:
            counts[h].append(decayed_counts(ev, h)[-1])
    C = w.shape[1]
    return TargetInputs(
        rows, targets, y, m,
        np.stack(comps) if comps else np.zeros((0, len(half_lives) + 2, C)),
        np.asarray(seen, np.int64),
        {h: np.stack(v) if v else np.zeros((0, C)) for h, v in counts.items()},
        head,
        BocpdInputs(before, times),
        np.stack(gates) if gates else np.zeros((0, len(GATES))),
    )


def tune_histogram(valid: TargetInputs, prior: np.ndarray) -> HistogramBaseline:
    """The half-life and pseudo-count with the lowest validation log-loss (never the test targets)."""
    best = None
    for h in BASELINE_HALF_LIVES:
        for a in PSEUDO_COUNTS:
            cand = HistogramBaseline(h, a, math.nan)
            ll = float(cross_entropy(cand.forecast(valid.counts[h], prior), valid.y).mean())
            if best is None or ll < best.valid_log_loss:
                best = HistogramBaseline(h, a, ll)
    assert best is not None
    return best


def fit_interest(loaded: LoadedModel, seqs: Sequences, split: Split) -> tuple[InterestForecast, np.ndarray]:
    """Fit the category forecast on the split's validation targets. Returns (forecast, prior [C])."""
    w = loaded.vocab.category_weights().numpy().astype(np.float64)
    prior = category_prior(seqs, split, w)
    rows, targets = split.targets("valid")
    valid = target_inputs(loaded, seqs, rows, targets, prior)
    return fit_forecast(valid.comps, valid.y, prior, head=valid.head, bocpd=valid.history, gates=valid.gates), prior


def saved_forecast(loaded: LoadedModel) -> InterestForecast | None:
    """The forecast fitted after training and kept in the model card, or None (older models, too few targets)."""
    d = loaded.card.get("interest", {}).get("forecast_params")
    return InterestForecast.from_dict(d) if d else None


def interest_report(
    loaded: LoadedModel, seqs: Sequences, split: Split, forecast: InterestForecast | None = None, truth=None,
    social: SocialContext | None = None,
) -> dict:
    """The `interest` section of `interestlens evaluate`: test scores of the calibrated forecast, the raw model
    marginal and the tuned histogram, the histogram's tuned settings, and the reliability diagram; with the
    planted `truth` of a synthetic log (`core.datasets.load_truth`), also TV, entropy and the long/short share
    against it (`core.trajectory.planted`). The forecast is the card's, else fitted here on validation."""
    w = loaded.vocab.category_weights().numpy().astype(np.float64)
    prior = category_prior(seqs, split, w)
    valid = target_inputs(loaded, seqs, *split.targets("valid"), prior, social=social)
    test = target_inputs(loaded, seqs, *split.targets("test"), prior, social=social)
    if len(valid.y) == 0 or len(test.y) == 0:
        raise ValueError("no validation or test target has a category")
    forecast = forecast or saved_forecast(loaded)
    if forecast is None:
        forecast = fit_forecast(valid.comps, valid.y, prior, head=valid.head, bocpd=valid.history, gates=valid.gates)
    base = tune_histogram(valid, prior)
    test_comps = test.comps
    if forecast.source == "head":
        test_comps = test.comps.copy()
        test_comps[:, -1] = forecast.model_input(test.model, test.head)
    if forecast.kind in BOCPD_KINDS and test.history is not None:
        from core.trajectory.bocpd_fit import BocpdFit

        parts = test.history.parts(prior, BocpdFit.from_dict(forecast.bocpd).params)
        p_test = forecast.apply_parts(parts, forecast.model_input(test.model, test.head))
    elif forecast.kind == "stacked":
        p_test = forecast.apply_stacked(test_comps, test.gates)
    else:
        p_test = forecast.apply_components(test_comps)
    scores = {
        "forecast": forecast_scores(p_test, test.y),
        "model_marginal": forecast_scores(test.model, test.y),
        "histogram": forecast_scores(base.forecast(test.counts[base.half_life], prior), test.y),
    }
    if test.head is not None:
        scores["category_head"] = forecast_scores(test.head, test.y)
    out = {name: {k: v for k, v in asdict(s).items() if k != "reliability"} for name, s in scores.items()}
    hist_ll = scores["histogram"].log_loss
    planted = None
    if truth is not None:

        planted = planted_report(loaded, seqs, truth, forecast, base, prior)
    return {
        "protocol": "next-event category on the test targets; forecast and histogram tuned on validation",
        "split": split.kind,
        **out,
        "log_loss_ratio": scores["forecast"].log_loss / hist_ll if hist_ll > 0 else None,
        "forecast_kind": forecast.kind,
        "forecast_source": forecast.source,
        "forecast_valid_log_loss": forecast.valid.get("log_loss", {}),
        "histogram_half_life": None if math.isinf(base.half_life) else base.half_life,
        "histogram_pseudo_count": base.pseudo_count,
        "reliability": scores["forecast"].reliability,
        **({"planted": planted} if planted is not None else {}),
        "forecast_fitted": forecast.to_dict(),
    }


def store_interest(model_dir: str | os.PathLike, section: dict) -> None:
    """Put `section` under the card's `interest` key (metrics.json, written to a temporary name and renamed)."""
    import json

    path = Path(model_dir) / "metrics.json"
    card = read_json(path, {})
    card["interest"] = {**card.get("interest", {}), **section}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(card, indent=2, default=str))
    os.replace(tmp, path)


def evaluate_interest(loaded: LoadedModel, seqs: Sequences, db: str | os.PathLike | None) -> dict | None:
    """`interestlens evaluate`'s `interest` section (planted truth too when `<db>.truth/` exists), also written
    into the card's `interest` section (the reliability diagram the dashboard draws). None without categories."""
    from core.datasets.truth import load_truth, truth_dir
    from core.evaluate.split import split_from_card
    from core.store import default_db_path

    if not loaded.vocab.categories:
        return None
    folder = truth_dir(default_db_path(db))
    truth = load_truth(folder) if (folder / "truth.parquet").exists() else None
    try:
        report = interest_report(loaded, seqs, split_from_card(seqs, loaded.card.get("split")), truth=truth)
    except ValueError:
        return None
    fitted = report.pop("forecast_fitted")
    if (loaded.path / "metrics.json").exists():
        keep = {} if loaded.card.get("interest", {}).get("forecast_params") else {"forecast_params": fitted}
        store_interest(loaded.path, {**keep, **{k: v for k, v in report.items() if k != "planted"}})
    return report
