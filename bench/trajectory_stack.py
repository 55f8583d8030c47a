"""How far a category forecaster gets on ML-100k: the candidates `fit_forecast` lacks, measured on its protocol.

    OMP_NUM_THREADS=1 python bench/trajectory_stack.py --db data/ml100k.duckdb --model data/models/ml-s0 --json

Same protocol as `bench/trajectory.py --interest ml100k` (`core.trajectory.interest`): next-event category of the
leave-one-out validation and test targets; every weight fitted on validation (two halves, each fitted on one and
scored on the other, then refitted on all of them, as `fit_forecast` does), test touched once per candidate;
ratios against the same tuned decayed histogram, with a 95 % paired bootstrap interval over the test targets.
Candidates, each a log-linear pool (softmax combiner) of log-features, one exponent per feature:

- `product`: the product pool's features (user histograms at half-lives 1, 3, 10, 30, ∞ events, prior, model
  marginal), the candidate `fit_forecast` picks today;
- `+trend`: plus the global trend, what every OTHER user rated strictly before the forecast's moment (the time of
  the user's last event), decayed in time with half-lives 1 h, 1 day and 30 days (`global_trend`), each smoothed
  by one event's worth of the prior. Causal: a live system knows these events at that moment;
- `+item_temperature`: the model's item softmax at temperature T (T chosen on validation from `TEMPERATURES`)
  marginalised over categories, in the model's slot;
- `+own_time`: plus the user's own histogram decayed in time (half-lives 1 min, 1 h, 1 day): ML-100k's bulk
  sittings put many events in the same minute;
- `all`: every feature above;
- `stacked`: `core.trajectory.stacked` (gates: history length, session position), as `fit_forecast` fits it;
- `ensemble` (with `--extra-models`): the product's features plus the marginal of every other ML-100k model given
  (each read exactly as the first model's, on the same targets), and `ensemble+all` with the features above too.

Ceiling of the history features (`ceiling`): the same log-linear pool of the model-free features (histograms, prior,
trend, own time histograms) fitted on up to `--ceiling-targets` TRAINING positions (each user's next event inside
the training part: 100 times more targets than validation), then pooled with the model's marginal on validation.
The model's marginal is not a feature there (it was trained on those events). This tells whether the validation
set's size is what holds the forecast back.

Writes bench/results/trajectory-stack-ml100k.json (figures, exact settings, wall / CPU seconds, load).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Results  # noqa: E402
from core.checkpoint import load_checkpoint  # noqa: E402
from core.evaluate import split_from_card  # noqa: E402
from core.sequences import load_sequences, make_batch  # noqa: E402
from core.store import connect_read  # noqa: E402
from core.trajectory.forecast import fit_forecast  # noqa: E402
from core.trajectory.interest import category_prior, forecast_scores, target_inputs, tune_histogram  # noqa: E402
from core.trajectory.measures import decayed_counts  # noqa: E402
from core.trajectory.optim import minimise  # noqa: E402

TREND_HALF_LIVES_S = {"1h": 3600, "1d": 86_400, "30d": 30 * 86_400}
OWN_HALF_LIVES_S = {"1m": 60, "1h": 3600, "1d": 86_400}
TEMPERATURES = (0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.5)
_L2 = 1e-3
_FLOOR = 1e-12


def global_trend(ts: np.ndarray, ev: np.ndarray, user: np.ndarray, q_user: np.ndarray, q_t: np.ndarray,
                 half_life_s: float) -> np.ndarray:
    """[Q, C] Σ_j ev_j · 2^(−(t − ts_j)/h) over the events j of users other than q_user with ts_j < t.

    `ts` [n] seconds, `ev` [n, C] category weights, `user` [n] user rows of all events; `q_user`, `q_t` [Q].
    One pass over the time-sorted log (a running decayed sum), minus the user's own running sum.
    """
    def running(order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t, e = ts[order].astype(np.float64), ev[order]
        acc = np.zeros_like(e)
        cur = np.zeros(e.shape[1])
        for i in range(len(t)):
            cur = cur * 2.0 ** (-(t[i] - t[i - 1]) / half_life_s) + e[i] if i else e[i].copy()
            acc[i] = cur
        return t, acc

    def at(t_sorted: np.ndarray, acc: np.ndarray, t: float) -> np.ndarray:
        i = int(np.searchsorted(t_sorted, t, side="left")) - 1  # the last event strictly before t
        return acc[i] * 2.0 ** (-(t - t_sorted[i]) / half_life_s) if i >= 0 else np.zeros(acc.shape[1])

    t_all, acc_all = running(np.argsort(ts, kind="stable"))
    out = np.zeros((len(q_t), ev.shape[1]))
    for u in np.unique(q_user):
        mine = np.flatnonzero(user == u)
        t_u, acc_u = running(mine[np.argsort(ts[mine], kind="stable")])
        for k in np.flatnonzero(q_user == u):
            out[k] = np.maximum(at(t_all, acc_all, q_t[k]) - at(t_u, acc_u, q_t[k]), 0.0)
    return out


def own_time_counts(ev: np.ndarray, t: np.ndarray, now: float, half_life_s: float) -> np.ndarray:
    """[C] the user's events up to `now` decayed in time."""
    return (2.0 ** (-(now - t.astype(np.float64)) / half_life_s)) @ ev


def smooth_log(counts: np.ndarray, prior: np.ndarray, alpha: float) -> np.ndarray:
    return np.log((counts + alpha * prior) / (counts.sum(-1, keepdims=True) + alpha))


class Pool:
    """log p = Σ_f β_f log φ_f (normalised): one exponent per log-feature [N, F, C], fitted by L-BFGS on log-loss."""

    def __init__(self, logs: np.ndarray, y: np.ndarray, start: int = -1):
        x, yt = torch.from_numpy(logs), torch.from_numpy(y)
        self.beta = torch.zeros(logs.shape[1], dtype=torch.float64)
        self.beta[start] = 1.0
        self.beta.requires_grad_(True)
        minimise(lambda: -(yt * self._lp(x)).sum(-1).mean() + _L2 * self.beta.square().sum(), [self.beta], 500)

    def _lp(self, x: torch.Tensor) -> torch.Tensor:
        logit = (self.beta[None, :, None] * x).sum(1)
        return logit - torch.logsumexp(logit, -1, keepdim=True)

    def predict(self, logs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self._lp(torch.from_numpy(logs)).exp().numpy()


def ce(p: np.ndarray, y: np.ndarray) -> float:
    return float(-(y * np.log(np.maximum(p, _FLOOR))).sum(1).mean())


def heldout(logs: np.ndarray, y: np.ndarray, halves, start: int = -1) -> float:
    return float(np.mean([ce(Pool(logs[a], y[a], start).predict(logs[b]), y[b]) for a, b in (halves, halves[::-1])]))


def item_marginal(loaded, seqs, rows, targets, w: np.ndarray, temperature: float) -> np.ndarray:
    """[N, C] the model's item softmax at `temperature` over the latest max_len events before each target,
    marginalised over categories."""
    L, model = loaded.config.max_len, loaded.model.eval()
    out = []
    with torch.inference_mode():
        for lo in range(0, len(rows), 256):
            hs = [seqs.history(int(r), t - seqs.offsets[r] - L, t - seqs.offsets[r])
                  for r, t in zip(rows[lo:lo + 256], targets[lo:lo + 256], strict=True)]
            batch = make_batch(hs, L)
            s = model.scores(model.encode(batch), batch).double() / temperature
            out.append((torch.softmax(s, -1) @ torch.from_numpy(w)).numpy())
    return np.concatenate(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--ceiling-targets", type=int, default=40_000, help="training positions the ceiling pool fits on")
    ap.add_argument("--extra-models", default="", help="comma-separated other ML-100k model folders (same split)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0, c0 = time.perf_counter(), time.process_time()
    loaded = load_checkpoint(args.model)
    with connect_read(args.db) as con:
        seqs = load_sequences(con, loaded.vocab)
    split = split_from_card(seqs, loaded.card.get("split"))
    w = loaded.vocab.category_weights().numpy().astype(np.float64)
    prior = category_prior(seqs, split, w)
    ev_all = w[seqs.items]
    user = np.repeat(np.arange(len(seqs.offsets) - 1), np.diff(seqs.offsets))
    data = {}
    for which in ("valid", "test"):
        ti = target_inputs(loaded, seqs, *split.targets(which), prior)
        now = seqs.ts[ti.targets - 1].astype(np.float64)  # the forecast's moment: the user's last event
        feats = {"hist": np.stack([smooth_log(ti.comps[:, k], prior, a) for k, a in
                                   enumerate((2.0, 10.0, 30.0, 25.0, 1e-3))], 1),  # the product's α, rounded
                 "prior": np.log(np.tile(prior, (len(ti.y), 1)))[:, None],
                 "trend": np.stack([smooth_log(global_trend(seqs.ts, ev_all, user, ti.rows, now, h), prior, 1.0)
                                    for h in TREND_HALF_LIVES_S.values()], 1),
                 "own_time": np.stack([smooth_log(np.stack([own_time_counts(ev_all[seqs.offsets[r]:t], seqs.ts[seqs.offsets[r]:t], n, h)
                                                            for r, t, n in zip(ti.rows, ti.targets, now, strict=True)]), prior, 1.0)
                                       for h in OWN_HALF_LIVES_S.values()], 1)}
        temps = {T: item_marginal(loaded, seqs, ti.rows, ti.targets, w, T) for T in TEMPERATURES}
        data[which] = (ti, feats, temps)
    extra = [other_marginals(Path(m), args.db, loaded, {k: v[0] for k, v in data.items()})
             for m in args.extra_models.split(",") if m]
    for which in ("valid", "test"):
        data[which][1]["models"] = np.stack([np.log(np.maximum(e[which], _FLOOR)) for e in extra], 1) if extra else None
    (vi, vf, vt), (te, tf, tt) = data["valid"], data["test"]
    perm = np.random.default_rng(0).permutation(len(vi.y))  # fit_forecast's halves
    halves = (perm[: len(vi.y) // 2], perm[len(vi.y) // 2:])
    base = tune_histogram(vi, prior)
    hist_p = base.forecast(te.counts[base.half_life], prior)
    hist_test = forecast_scores(hist_p, te.y)
    t_best = min(TEMPERATURES, key=lambda T: ce(vt[T], vi.y))

    def logs(f: dict, temps: dict, parts: tuple[str, ...], T: float = 1.0) -> np.ndarray:
        return np.concatenate([f["hist"], f["prior"], *[f[p] for p in parts], np.log(np.maximum(temps[T], _FLOOR))[:, None]], 1)

    specs = {"product": ((), 1.0), "+trend": (("trend",), 1.0), "+item_temperature": ((), t_best),
             "+own_time": (("own_time",), 1.0), "all": (("trend", "own_time"), t_best)}
    if extra:
        specs.update({"ensemble": (("models",), 1.0), "ensemble+all": (("trend", "own_time", "models"), t_best)})
    figures: dict = {"histogram": {"half_life": base.half_life if math.isfinite(base.half_life) else None,
                                   "pseudo_count": base.pseudo_count, "valid_log_loss": base.valid_log_loss,
                                   "test": _s(hist_test)},
                     # yardsticks: the catalogue prior alone, and what no forecast can remove (the targets' own split)
                     "prior_test_log_loss": ce(np.tile(prior, (len(te.y), 1)), te.y),
                     "split_entropy_test": float(-(te.y * np.log(np.maximum(te.y, _FLOOR))).sum(1).mean()),
                     "item_temperature": {"chosen": t_best, "valid_log_loss": {str(T): ce(vt[T], vi.y) for T in TEMPERATURES},
                                          "test_log_loss_raw": {str(T): ce(tt[T], te.y) for T in TEMPERATURES}},
                     "candidates": {}}
    for name, (parts, T) in specs.items():
        lv, lt = logs(vf, vt, parts, T), logs(tf, tt, parts, T)
        p = Pool(lv, vi.y).predict(lt)
        figures["candidates"][name] = {"heldout_valid": heldout(lv, vi.y, halves), "test": _s(forecast_scores(p, te.y)),
                                       "ratio": forecast_scores(p, te.y).log_loss / hist_test.log_loss,
                                       "ratio_ci95": ratio_interval(p, hist_p, te.y)}
    fc = fit_forecast(vi.comps, vi.y, prior, gates=vi.gates)  # the stacked candidate beside the product, as core fits it
    st = fc.valid["heldout_log_loss"]
    if fc.kind == "stacked":
        p = fc.apply_stacked(te.comps, te.gates)
    else:
        p = fit_forecast(vi.comps, vi.y, prior).apply_components(te.comps)
    figures["core_fit_forecast"] = {"picked": fc.kind, "heldout_valid": st, "test": _s(forecast_scores(p, te.y)),
                                    "ratio": forecast_scores(p, te.y).log_loss / hist_test.log_loss}
    figures["ceiling"] = ceiling(args, seqs, split, w, prior, ev_all, user, vi, vf, vt, te, tf, tt, halves, hist_test)
    picked = min(figures["candidates"], key=lambda k: figures["candidates"][k]["heldout_valid"])
    figures["picked_on_validation"] = {"name": picked, **figures["candidates"][picked]}
    figures["extra_models"] = {m: e["ndcg10"] for m, e in zip(args.extra_models.split(","), extra, strict=False)}
    figures.update({"seconds": time.perf_counter() - t0, "cpu_s": time.process_time() - c0,
                    "load_1min": os.getloadavg()[0], "db": args.db, "model": args.model})
    res = Results("trajectory", "stack-ml100k", resume=False)
    res.stage("stack", figures)
    if args.json:
        print(json.dumps(figures, indent=1, default=str))


def other_marginals(path: Path, db: str, first, targets: dict) -> dict:
    """Another model's marginal at the first model's validation and test targets (its own vocabulary and split,
    which must give the same targets and categories)."""
    other = load_checkpoint(path)
    if list(other.vocab.categories) != list(first.vocab.categories):
        raise SystemExit(f"{path}: its categories differ from the first model's.")
    with connect_read(db) as con:
        seqs = load_sequences(con, other.vocab)
    split = split_from_card(seqs, other.card.get("split"))
    w = other.vocab.category_weights().numpy().astype(np.float64)
    prior = category_prior(seqs, split, w)
    out: dict = {"ndcg10": other.card.get("test", {}).get("NDCG@10")}
    for which, ti in targets.items():
        mine = target_inputs(other, seqs, *split.targets(which), prior)
        if not np.array_equal(mine.targets, ti.targets):
            raise SystemExit(f"{path}: its {which} targets differ from the first model's (another split?).")
        out[which] = mine.model
    return out


def ratio_interval(p: np.ndarray, hist: np.ndarray, y: np.ndarray, n_boot: int = 2000) -> list[float]:
    """95 % paired bootstrap interval (test targets resampled) of mean log-loss p / mean log-loss hist."""
    a = -(y * np.log(np.maximum(p, _FLOOR))).sum(1)
    b = -(y * np.log(np.maximum(hist, _FLOOR))).sum(1)
    idx = np.random.default_rng(0).integers(0, len(y), (n_boot, len(y)))
    r = a[idx].mean(1) / b[idx].mean(1)
    return [float(x) for x in np.quantile(r, [0.025, 0.975])]


def _s(s) -> dict:
    return {k: getattr(s, k) for k in ("targets", "log_loss", "brier", "ece", "ece_top", "entropy")}


def ceiling(args, seqs, split, w, prior, ev_all, user, vi, vf, vt, te, tf, tt, halves, hist_test) -> dict:
    """The model-free pool fitted on training positions, then pooled with the model's marginal on validation."""
    rng = np.random.default_rng(0)
    rows_t, tgt = [], []
    for r in range(len(seqs.offsets) - 1):
        a, b = int(seqs.offsets[r]), int(split.train_end[r])
        if b - a >= 2:
            rows_t += [r] * (b - a - 1)
            tgt += list(range(a + 1, b))  # every training event after the first, forecast from the ones before
    pick = rng.permutation(len(tgt))[: args.ceiling_targets]
    rows_t, tgt = np.asarray(rows_t)[pick], np.asarray(tgt)[pick]
    y = ev_all[tgt]
    keep = y.sum(1) > 0
    rows_t, tgt, y = rows_t[keep], tgt[keep], y[keep]
    now = seqs.ts[tgt - 1].astype(np.float64)
    hist = np.zeros((len(y), 5, w.shape[1]))
    for r in np.unique(rows_t):  # each user's decayed counts once; a target reads the row of the event before it
        a = int(seqs.offsets[r])
        mine = np.flatnonzero(rows_t == r)
        ev = ev_all[a:int(split.train_end[r])]
        for k, h in enumerate((1.0, 3.0, 10.0, 30.0, math.inf)):
            hist[mine, k] = decayed_counts(ev, h)[tgt[mine] - 1 - a]
    tr = {"hist": np.stack([smooth_log(hist[:, k], prior, a) for k, a in enumerate((2.0, 10.0, 30.0, 25.0, 1e-3))], 1),
          "prior": np.log(np.tile(prior, (len(y), 1)))[:, None],
          "trend": np.stack([smooth_log(global_trend(seqs.ts, ev_all, user, rows_t, now, h), prior, 1.0)
                             for h in TREND_HALF_LIVES_S.values()], 1),
          "own_time": np.stack([smooth_log(np.stack([own_time_counts(ev_all[seqs.offsets[r]:t], seqs.ts[seqs.offsets[r]:t], n, h)
                                                     for r, t, n in zip(rows_t, tgt, now, strict=True)]), prior, 1.0)
                                for h in OWN_HALF_LIVES_S.values()], 1)}
    cat = lambda f: np.concatenate([f["hist"], f["prior"], f["trend"], f["own_time"]], 1)  # noqa: E731
    free = Pool(cat(tr), y, start=0)  # model-free: starts from the shortest histogram
    pv, pt = free.predict(cat(vf)), free.predict(cat(tf))
    out = {"train_targets": int(len(y)), "model_free_exponents": [float(b) for b in free.beta.detach()],
           "model_free_valid_log_loss": ce(pv, vi.y), "model_free_test": _s(forecast_scores(pt, te.y)),
           "model_free_ratio": forecast_scores(pt, te.y).log_loss / hist_test.log_loss}
    two_v = np.stack([np.log(np.maximum(pv, _FLOOR)), np.log(np.maximum(vt[1.0], _FLOOR))], 1)
    two_t = np.stack([np.log(np.maximum(pt, _FLOOR)), np.log(np.maximum(tt[1.0], _FLOOR))], 1)
    p = Pool(two_v, vi.y).predict(two_t)
    out.update({"with_model_heldout_valid": heldout(two_v, vi.y, halves), "with_model_test": _s(forecast_scores(p, te.y)),
                "with_model_ratio": forecast_scores(p, te.y).log_loss / hist_test.log_loss})
    return out


if __name__ == "__main__":
    main()
