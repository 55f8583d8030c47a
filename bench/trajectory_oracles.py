"""Oracle figures for the interest section of bench/trajectory.py (`--interest`)."""

from __future__ import annotations

import time

import numpy as np


def oracle_figures(name: str, loaded, seqs, split, truth, report: dict, spec: dict) -> dict:
    """Every oracle that applies to this log: the Bayes posterior predictive on single-category planted logs
    (`bayes_oracle`), the stable-user floor on `planted`, the split oracle on the synthetic generator's logs."""
    out = {}
    if name in ("planted", "synthetic-single"):
        out["bayes_oracle"] = bayes_oracle_figures(loaded, seqs, split, truth, report)
    if name == "planted":
        out["oracle_stable"] = planted_oracle(seqs, truth, loaded.vocab, spec)
    else:
        out["split_oracle"] = split_oracle(truth, loaded.vocab)
    return out



def split_oracle(truth, vocab) -> dict:
    """What a forecaster that knows every step's planted mixture q exactly, and forecasts the split target it is
    scored on (q pushed through the item→category split, `projection`), gets on the literal comparison: its TV
    against q and its entropy against q's. On a multi-category log this bounds how close to the truth's entropy
    any forecast of the split target can be (synthetic generator logs only)."""
    from bench.trajectory import projection

    order, M = projection(truth, vocab)
    qs = [truth.user_mixtures(str(u))[:, order][1:] for u in truth.user_ids]
    q = np.concatenate(qs)
    p = q @ M

    def ent(x: np.ndarray) -> float:
        return float(-(x * np.log(np.maximum(x, 1e-12))).sum(axis=1).mean())

    return {"steps": int(len(q)), "tv": float(0.5 * np.abs(p - q).sum(axis=1).mean()), "entropy": ent(p),
            "entropy_truth": ent(q), "entropy_ratio": ent(p) / ent(q)}


# ---- the Bayes oracle: the generator's own posterior predictive (bench/bayes_filter.py) ----------------------

def planted_hazard(n: int, lo: int = 8):
    """The planted generator's switch hazard h(k, j, s, t) for a user with n events: one switch uniform on
    [lo, n − lo]; two switches uniform over the pairs ≥ lo apart (the first at t has n − 2·lo + 1 − t partners)."""

    def hazard(k, j, s, t):
        start = np.where(j == 0, lo, s + lo)  # the last switch ≥ lo events after the previous one
        m = n - 2 * lo + 1 - t  # for k = 2, j = 0: pairs whose first switch is at t
        h = np.where((t >= start) & (t <= n - lo), 1.0 / max(n - lo - t + 1, 1), 0.0)
        h[(k == 2) & (j == 0)] = 2.0 / (m + 1) if t >= lo and m >= 1 else 0.0
        return h

    return hazard


def _planted_families(n: int, spec: dict, C: int, weekend: np.ndarray) -> list:
    """Hypotheses and priors of `core.datasets.planted.generate_planted` for a user with n events."""
    from bench.bayes_filter import Ramp, Segments, ramp_grid

    A = np.full(C, float(spec.get("sparsity", 0.15)))
    sw_share, gr_share = spec.get("shares", (0.45, 0.20))
    lo = 8  # the generator's minimum segment
    hazard = planted_hazard(n, lo)
    switch = sw_share if n >= 3 * lo else 0.0
    two = 0.35 if n >= 4 * lo else 0.0
    roots = [(0, 1.0 - sw_share - gr_share + (sw_share - switch)), (1, switch * (1 - two)), (2, switch * two)]
    a, e, prob = ramp_grid(n, (0.15, 0.45), (0.55, 0.9))
    return [Segments(A, 0.02, roots, hazard), Ramp(A, 0.02, a, e, gr_share * prob)]


def _synthetic_families(n: int, A: np.ndarray, weekend: np.ndarray) -> list:
    """Hypotheses and priors of `core.datasets.synthetic.generate` for a user with n events and taste prior
    Dirichlet(A) (the user's attribute-driven prior; the 'new taste ≥ 0.5 TV from the last' rejection is not
    modelled)."""
    from bench.bayes_filter import Periodic, Ramp, Segments, ramp_grid

    seg = 10

    def hazard(k, j, s, t):
        E = n - (k + 1) * seg  # slack spread over the k switches
        gprev = np.where(j == 0, 0, s - seg * j)
        g = t - seg * (j + 1)
        left = np.maximum(E - g, 0).astype(np.float64)
        valid = (g >= gprev) & (g <= E)
        return np.where(valid, 1.0 - (left / (left + 1.0)) ** (k - j), 0.0)

    switch = 0.40 if n >= 2 * seg else 0.0
    kmax = max(n // seg - 1, 0)
    roots = [(0, 0.25 + 0.40 - switch)]
    for k in (1, 2, 3):  # k = min(U{1,2,3}, n // 10 − 1)
        kk = min(k, kmax)
        if kk >= 1:
            roots.append((kk, switch / 3))
    merged: dict[int, float] = {}
    for k, p in roots:
        merged[k] = merged.get(k, 0.0) + p
    a, e, prob = ramp_grid(n, (0.1, 0.4), (0.6, 0.9))
    return [Segments(A, 0.03, sorted(merged.items()), hazard), Ramp(A, 0.03, a, e, 0.20 * prob),
            Periodic(A, 0.03, 0.15, weekend)]


def _synthetic_taste_priors(truth) -> np.ndarray:
    """[U, C_truth] each user's Dirichlet parameters conc·prior, by replaying the generator's user draws."""
    from core.datasets.names import category_names
    from core.datasets.synthetic import _make_items, _make_users

    p = truth.meta["params"]
    r_items, r_users = (np.random.default_rng(s) for s in np.random.SeedSequence(p["seed"]).spawn(5)[:2])
    _make_items(p["items"], p["categories"], category_names(p["categories"]), r_items)
    _, _, conc, prior, _ = _make_users(p["users"], p["events"], p["categories"], r_users)
    return np.maximum(conc[:, None] * prior, 1e-3)


def bayes_oracle(seqs, truth, vocab, baseline, prior: np.ndarray, draws: int = 128) -> dict:
    """The Bayes-optimal causal forecast of a single-category planted log (planted or synthetic-single): the
    posterior-predictive next-event mix given the user's past events, under the generator's exact process
    (bench/bayes_filter.py; it also knows the user's history length and each event's weekday, which only makes it
    stronger). Its TV to the planted mixture and entropy, over every step of every user (as
    `core.trajectory.planted`), against the tuned histogram `baseline` on the same steps; per archetype too."""
    from bench.bayes_filter import run_filter
    from core.datasets.timeline import is_weekend
    from core.trajectory.measures import decayed_counts, total_variation

    w = vocab.category_weights().numpy().astype(np.float64)
    if np.any((w > 0).sum(axis=1) > 1):
        raise ValueError("the Bayes oracle needs single-category items")
    cols = np.array([truth.categories.index(c) for c in vocab.categories])
    planted = truth.meta.get("generator") == "planted"
    tastes = None if planted else _synthetic_taste_priors(truth)
    C = len(cols)
    tv: dict[str, list] = {"oracle": [], "oracle_tv_act": [], "histogram": []}
    ent: dict[str, list] = {"oracle": [], "oracle_tv_act": [], "histogram": [], "truth": []}
    rng = np.random.default_rng(0)
    arch, evid = [], []
    for r, u in enumerate(seqs.user_ids):
        h = seqs.history(r)
        q = truth.user_mixtures(str(u))[:, cols]
        ev = w[h.items]
        n = len(ev)
        if n < 2 or len(q) != n:
            continue
        cats = ev.argmax(axis=1)
        weekend = is_weekend(np.asarray(h.ts, np.int64))
        if planted:
            fams = _planted_families(n, truth.meta["params"], C, weekend)
        else:
            fams = _synthetic_families(n, tastes[truth.row(str(u))][cols], weekend)
        p, lp, act = run_filter(cats, fams, draws, rng)
        hist = baseline.forecast(decayed_counts(ev, baseline.half_life), prior)
        for name, x in (("oracle", p), ("oracle_tv_act", act), ("histogram", hist)):
            tv[name].append(total_variation(x[:-1], q[1:]))
            ent[name].append(_row_entropy(x[:-1]))
        ent["truth"].append(_row_entropy(q[1:]))
        arch.append(truth.archetype(str(u)))
        evid.append(-lp[1:])
    a = np.asarray(arch)
    mean = {k: float(np.concatenate(v).mean()) for k, v in tv.items()}
    ents = {k: float(np.concatenate(v).mean()) for k, v in ent.items()}
    by_arch = {}
    for kind in sorted(set(arch)):
        sel = np.flatnonzero(a == kind)
        m = {k: float(np.concatenate([v[i] for i in sel]).mean()) for k, v in tv.items()}
        e = {k: float(np.concatenate([v[i] for i in sel]).mean()) for k, v in ent.items()}
        by_arch[kind] = {"users": int(len(sel)), "tv": m, "tv_ratio": m["oracle"] / m["histogram"],
                         "tv_ratio_act": m["oracle_tv_act"] / m["histogram"], "entropy": e}
    return {
        "users": len(arch), "steps": int(sum(len(v) for v in tv["oracle"])),
        "tv": mean, "tv_ratio": mean["oracle"] / mean["histogram"],
        "tv_ratio_act": mean["oracle_tv_act"] / mean["histogram"], "draws": draws,
        "entropy": ents, "entropy_ratio": ents["oracle"] / ents["truth"],
        "entropy_ratio_act": ents["oracle_tv_act"] / ents["truth"],
        "log_loss_next_event": float(np.concatenate(evid).mean()),
        "by_archetype": by_arch,
        "histogram": {"half_life": None if np.isinf(baseline.half_life) else baseline.half_life,
                      "pseudo_count": baseline.pseudo_count},
    }


def _row_entropy(p: np.ndarray) -> np.ndarray:
    return -(p * np.log(np.maximum(p, 1e-12))).sum(axis=1)


def planted_oracle(seqs, truth, vocab, spec: dict) -> dict:
    """A floor for TV on the planted log's stable users: the posterior mean of a forecaster that knows the
    generator (a stable user's mixture is Dirichlet(sparsity) and never changes), beside the tuned-looking
    histogram (half-life 10, 3 events of a uniform prior) on the same steps."""
    from core.trajectory.measures import decayed_counts, total_variation

    a = spec.get("sparsity", 0.15)
    w = vocab.category_weights().numpy().astype(np.float64)
    cols = np.array([truth.categories.index(c) for c in vocab.categories])
    oracle, hist = [], []
    for r, u in enumerate(seqs.user_ids):
        if truth.archetype(u) != "stable":
            continue
        q = truth.user_mixtures(u)[:, cols]
        ev = w[seqs.history(r).items]
        cnt = np.cumsum(ev, axis=0)
        post = (cnt + a) / (cnt.sum(1, keepdims=True) + a * ev.shape[1])
        h = decayed_counts(ev, 10.0)
        hh = (h + 3.0 / ev.shape[1]) / (h.sum(1, keepdims=True) + 3.0)
        oracle.append(total_variation(post[:-1], q[1:]))
        hist.append(total_variation(hh[:-1], q[1:]))
    o, h = float(np.concatenate(oracle).mean()), float(np.concatenate(hist).mean())
    return {"users": len(oracle), "oracle_tv": o, "histogram_tv": h, "ratio": o / h}


def bayes_oracle_figures(loaded, seqs, split, truth, report: dict) -> dict:
    """The generator's Bayes posterior predictive against the same tuned histogram (bench/trajectory_oracles.py)."""
    import math
    import os

    from core.trajectory.forecast import HistogramBaseline
    from core.trajectory.interest import category_prior

    w = loaded.vocab.category_weights().numpy().astype(np.float64)
    hl = report["histogram_half_life"]
    base = HistogramBaseline(math.inf if hl is None else float(hl), float(report["histogram_pseudo_count"]), math.nan)
    t0 = time.process_time()
    out = bayes_oracle(seqs, truth, loaded.vocab, base, category_prior(seqs, split, w))
    return {**out, "cpu_s": time.process_time() - t0, "load_1min": os.getloadavg()[0]}
