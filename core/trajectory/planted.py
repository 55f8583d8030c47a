"""The interest forecast and the long/short share against planted truth (synthetic logs with `<db>.truth/`).

- TV: mean ½·Σ_c |p_t(c) − q_{t+1}(c)| over every step of every user but the last, where p_t is the forecast after
  the first t+1 events and q_{t+1} the planted mixture that drew the next event — the literal comparison, no
  projection of q through the item→category split. Beside it: the tuned histogram (half-life and pseudo-count
  chosen on validation log-loss, `core.trajectory.interest.tune_histogram`), the plain decayed histogram at that
  half-life (no prior), and the model's raw item-softmax marginal.
- Entropy: mean entropy of each forecast over the same steps, and of the planted mixtures themselves
  (`entropy_ratio`). A forecast is fitted to, and scored on, the next event's split target (an item of several
  categories counts 1/k in each), so what it should match is the planted mixture pushed through the split,
  q·M with M = `split_projection` (row c: the expected split of an item drawn under category c); `truth_split`
  and `entropy_ratio_split` compare like with like. With single-category items M is the identity and the two
  readings agree; on a multi-category log the literal ratio counts the split's own spread as the forecast's.
- Share at switches: for every planted switch at event k with 10 events either side, the mean short-term weight
  over steps k..k+9 minus its mean over steps k−10..k−1 (step t = after event t), with a bootstrap 95 % interval
  over switches; beside it, the mean short-term weight of stable users. The same for the model's learned gate
  (its short-term weight is 1 − gate).
"""

from __future__ import annotations

import numpy as np

from core.checkpoint import LoadedModel
from core.datasets.truth import SyntheticTruth
from core.sequences import Sequences
from core.trajectory.engine import encode_steps
from core.trajectory.forecast import HistogramBaseline, InterestForecast
from core.trajectory.horizons import HorizonConfig, decompose
from core.trajectory.measures import decayed_counts, decayed_histogram, total_variation

__all__ = ["SWITCH_SPAN", "planted_report", "split_projection", "switch_change"]

SWITCH_SPAN = 10  # steps either side of a planted switch


def switch_change(series: list[np.ndarray], switches: list[list[int]], span: int = SWITCH_SPAN,
                  n_boot: int = 2000, seed: int = 0) -> dict:
    """Mean of (mean over steps k..k+span−1) − (mean over k−span..k−1) over every switch k with room on both
    sides, and its bootstrap 95 % interval (switches resampled with replacement)."""
    diffs = []
    for s, ks in zip(series, switches, strict=True):
        for k in ks:
            if k - span >= 0 and k + span <= len(s):
                diffs.append(float(np.nanmean(s[k:k + span]) - np.nanmean(s[k - span:k])))
    d = np.asarray(diffs)
    d = d[np.isfinite(d)]
    if len(d) == 0:
        return {"switches": 0, "mean_change": None, "ci95": None}
    rng = np.random.default_rng(seed)
    boot = d[rng.integers(0, len(d), (n_boot, len(d)))].mean(axis=1)
    lo, hi = np.quantile(boot, [0.025, 0.975])
    return {"switches": int(len(d)), "mean_change": float(d.mean()), "ci95": [float(lo), float(hi)]}


def planted_report(
    loaded: LoadedModel, seqs: Sequences, truth: SyntheticTruth, forecast: InterestForecast,
    baseline: HistogramBaseline, prior: np.ndarray, horizons: HorizonConfig | None = None,
) -> dict:
    """TV, entropy and the long/short share against the planted truth, over all users the truth knows."""
    w = loaded.vocab.category_weights()
    wn = w.numpy().astype(np.float64)
    cats = list(loaded.vocab.categories)
    cols = np.array([truth.categories.index(c) if c in truth.categories else -1 for c in cats])
    known = {str(u) for u in truth.user_ids}
    rows = [r for r, u in enumerate(seqs.user_ids) if str(u) in known]
    outs = encode_steps(loaded.model.eval(), [seqs.history(r) for r in rows], w, components=False)
    names = ("forecast", "histogram", "histogram_plain", "model_marginal")
    if outs and outs[0].head is not None:  # a model with a category head: its raw forecast too
        names += ("category_head",)
    tv: dict[str, list[np.ndarray]] = {k: [] for k in names}
    ent: dict[str, list[np.ndarray]] = {k: [] for k in (*tv, "truth", "truth_split")}
    M = split_projection(truth, cats)
    arch, share, gate_short, switches = [], [], [], []
    for r, out in zip(rows, outs, strict=True):
        uid = str(seqs.user_ids[r])
        q_full = truth.user_mixtures(uid)  # [n, C_truth]
        q = np.where(cols[None, :] >= 0, q_full[:, np.maximum(cols, 0)], 0.0)  # [n, C] in the model's order
        ev = wn[seqs.history(r).items]
        if len(ev) < 2 or len(q) != len(ev):
            continue
        series = {
            "forecast": forecast.apply(forecast.model_input(out.distribution, out.head), ev, seqs.history(r).ts),
            "histogram": baseline.forecast(decayed_counts(ev, baseline.half_life), prior),
            "histogram_plain": decayed_histogram(ev, baseline.half_life),
            "model_marginal": out.distribution,
        }
        if out.head is not None:
            series["category_head"] = out.head
        for k, p in series.items():
            tv[k].append(total_variation(p[:-1], q[1:]))
            ent[k].append(_entropy(p[:-1]))
        ent["truth"].append(_entropy(q[1:]))
        if M is not None:
            ent["truth_split"].append(_entropy(q[1:] @ M))
        arch.append(truth.archetype(uid))
        share.append(decompose(ev, prior, horizons).short_weight)
        gate_short.append(1.0 - out.gate)
        switches.append(truth.change_points(uid))
    means = {k: float(np.concatenate(v).mean()) for k, v in tv.items()}
    a = np.asarray(arch)
    stable = [s[SWITCH_SPAN:] for s, kind in zip(share, arch, strict=True) if kind == "stable" and len(s) > SWITCH_SPAN]
    stable_gate = [g[SWITCH_SPAN:] for g, kind in zip(gate_short, arch, strict=True) if kind == "stable" and len(g) > SWITCH_SPAN]
    return {
        "users": len(arch),
        "steps": int(sum(len(v) for v in tv["forecast"])),
        "tv": means,
        "tv_ratio": means["forecast"] / means["histogram"] if means["histogram"] > 0 else None,
        "tv_ratio_plain": means["forecast"] / means["histogram_plain"] if means["histogram_plain"] > 0 else None,
        "tv_by_archetype": {
            kind: {k: float(np.concatenate([v[i] for i in np.flatnonzero(a == kind)]).mean()) for k, v in tv.items()}
            for kind in sorted(set(arch))
        },
        "entropy": {k: float(np.concatenate(v).mean()) for k, v in ent.items() if v},
        "entropy_ratio": float(np.concatenate(ent["forecast"]).mean() / max(np.concatenate(ent["truth"]).mean(), 1e-12)),
        "entropy_ratio_split": (float(np.concatenate(ent["forecast"]).mean() / max(np.concatenate(ent["truth_split"]).mean(), 1e-12))
                                if M is not None and ent["truth_split"] else None),
        "short_weight": {
            "at_switches": switch_change(share, switches),
            "stable_mean": float(np.concatenate(stable).mean()) if stable else None,
            "all_mean": float(np.concatenate(share).mean()),
            "by_archetype": {kind: float(np.concatenate([share[i] for i in np.flatnonzero(a == kind)]).mean())
                             for kind in sorted(set(arch))},
        },
        "model_gate_short_weight": {
            "at_switches": switch_change(gate_short, switches),
            "stable_mean": float(np.nanmean(np.concatenate(stable_gate))) if stable_gate else None,
        },
    }


def split_projection(truth: SyntheticTruth, categories: list[str]) -> np.ndarray | None:
    """[C, C] in `categories`' order: row c = the expected category weights of an item drawn when the planted
    mixture is all on category c (the generators draw an item of primary category c by its popularity within c;
    its weight splits equally over its categories). The identity when every item has one category (the planted
    generator, `single_category`); rebuilt from the synthetic generator's parameters otherwise (deterministic,
    the same catalogue the log was built from); None when the catalogue is unknown (categories missing).
    """
    params = dict(truth.meta.get("params", {}))
    index = {c: n for n, c in enumerate(categories)}
    if truth.meta.get("generator") == "planted" or params.get("single_category"):
        return np.eye(len(categories))
    if truth.meta.get("generator") not in (None, "synthetic") or not params:
        return None
    from core.datasets.synthetic import generate

    items = generate(**params).items
    M = np.zeros((len(categories), len(categories)))
    for prim, cs, pop in zip(items["primary_category"], items["categories"], items["popularity"], strict=True):
        for c in cs:
            if prim in index and c in index:  # a category the log never shows has no column (q is 0 there too)
                M[index[prim], index[c]] += float(pop) / len(cs)
    return M


def _entropy(p: np.ndarray) -> np.ndarray:
    return -(p * np.log(np.maximum(p, 1e-12))).sum(axis=1)
