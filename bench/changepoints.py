"""Change points between sessions against planted truth: tuned on one half of the planted users, reported on the other.

    .venv/bin/python bench/changepoints.py --json [--users 2000 --events 100000 --seed 0]

No model is needed: change points are found on the categories of the events themselves, grouped by session
(core/trajectory/grid_changes.py). The planted log is the synthetic generator's (core/datasets/synthetic.py; truth in
core/datasets/truth.py); its switch users have 1–3 sudden changes at known event indices. Users are split by a hash of
their id exactly as bench/trajectory.py splits them ("tune": crc32 even, "eval": odd). F1 counts a detection within
±5 events of a planted change (METRICS.md §2, `core.trajectory.change_point_scores`).

Stages written to bench/results/changepoints-<size>.json:
1. `before`: the event-level detector the product used until now (`detect_change_points` on the events signal with its
   defaults), on the eval half;
2. `grid`: the tune-half F1 of every PELT setting in the grid (penalty scale × minimum divergence × noise factor ×
   snapping reach × minimum contrast);
3. `bayes_grid`: the tune-half F1 of every setting of the Bayesian detector (core/trajectory/bayes_changes.py:
   multi-category sharing window × best-position or summed evidence × ramp penalty × change penalty, at α 0.5,
   weekly penalty 0, snapping reach 2 and minimum contrast 0.2; the second session's wider grid over α, snapping and
   the contrast floor found those best, see docs/trajectory_time.md);
4. `posterior_grid`: the tune-half F1 of every setting of today's default decision (`evidence = "one_of"`,
   core/trajectory/change_posterior.py: a multi-category item read as "one of its categories", changes reported
   where their posterior probability passes a threshold): Dirichlet prior (α, weight w of the user's overall mix)
   × one change per session or not × contrast floor × change penalty × ramp penalty × threshold, at weekly
   penalty 1, snapping reach 2 and shortest ramp 10 % of the history;
5. `after`: the setting with the best tune-half F1 (of all methods together), the best PELT setting, the third
   and fourth sessions' defaults and the product defaults (`ChangeConfig()`), on the eval half; false changes on non-switch users per archetype, and
   `f1_archetype_oracle`, the F1 each would reach if an oracle dropped every change on a user without a planted
   switch (a ceiling for any filter of its output).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Results  # noqa: E402
from core.datasets import generate  # noqa: E402
from core.trajectory import (  # noqa: E402
    bayes_changes,  # noqa: E402
    change_point_scores,
    change_posterior,
    detect_change_points,
    grid_changes,  # noqa: E402
)
from core.trajectory.grid_changes import ChangeConfig, detect_changes  # noqa: E402

SCALES = [0.6, 1.0]
DIVERGENCES = [0.15, 0.2, 0.25]
NOISE_FACTORS = [0.25, 0.5, 0.75]
SNAPS = [0, 2]
MIN_CONTRASTS = [0.0, 0.2]
_PELT: dict = {}


def _cached_pelt(counts, squares, sizes, penalty, min_events):
    """The grid search runs PELT once per user and penalty; the settings after it reuse the segmentation."""
    key = (hash(counts.tobytes()), len(counts), round(float(penalty), 12), float(min_events))
    if key not in _PELT:
        _PELT[key] = _pelt(counts, squares, sizes, penalty, min_events)
    return list(_PELT[key])


_pelt = grid_changes.pelt
grid_changes.pelt = _cached_pelt

ALPHAS = [0.5]  # 1.0 lost on the tune half (second session); 0.25 and 0.1 lost too (third session, ad hoc)
RAMP_PENALTIES = [0.0, 1.0, 2.0, 3.0, float("inf")]
WEEKLY_PENALTIES = [0.0]  # 2.0 never won on the tune half (first run of this grid)
CHANGE_PENALTIES = [-1.0, 0.0, 1.0]
TAG_WINDOWS = [0, 5]  # 0: a multi-category item split equally; 5: shared by its neighbours' mix
SUMMED = [False, True]  # best-position evidence, or the marginal likelihood averaged over positions
# (α, weight of the user's overall mix in the Dirichlet prior): w = 0 is the symmetric prior of the fourth session
# (α 0.1 and 0.5 lost there); (0.05, 1 or 2) lost on the tune half (fifth session, ad hoc)
POSTERIOR_PRIORS = [(0.2, 0.0), (0.3, 0.0), (0.1, 0.5), (0.1, 1.0), (0.15, 1.0), (0.2, 1.0), (0.1, 2.0)]
POSTERIOR_ONE_PER_SESSION = [True, False]
POSTERIOR_MIN_CONTRASTS = [0.1, 0.2]  # 0.0 never beat 0.1 on the tune half (fifth session, ad hoc)
POSTERIOR_CHANGE_PENALTIES = [-0.5, 0.0, 0.5, 1.0]  # -1 lost at every prior (fourth and fifth sessions)
POSTERIOR_RAMP_PENALTIES = [0.0, 1.0, 2.0]
POSTERIOR_THRESHOLDS = [0.4, 0.5, 0.6]
BAYES_SNAPS = [2]
BAYES_MIN_CONTRASTS = [0.2]
_BAYES: dict = {}


def _cached(fn):
    """The Bayesian detector's evidences depend on the history and α only: computed once per user and α."""
    def wrapper(*args, **kwargs):
        key = (fn.__name__, *(hash(a.tobytes()) if isinstance(a, np.ndarray) else a for a in args),
               *sorted(kwargs.items()))
        if key not in _BAYES:
            _BAYES[key] = fn(*args, **kwargs)
        return _BAYES[key]
    return wrapper


bayes_changes.best_segmentations = _cached(bayes_changes.best_segmentations)
bayes_changes.weekly_evidence = _cached(bayes_changes.weekly_evidence)
bayes_changes.ramp_evidence = _cached(bayes_changes.ramp_evidence)
# the posterior decision: the evidences depend on the history, its rows and α only; the penalties and the
# threshold only mix them
change_posterior.evidences = _cached(change_posterior.evidences)
# the grid of moments and the drift line depend on the history alone
grid_changes.moment_starts = _cached(grid_changes.moment_starts)
grid_changes.contrast = _cached(grid_changes.contrast)

# the earlier sessions' defaults, spelled out (today's ChangeConfig() differs in every field named)
SECOND = ChangeConfig(evidence="shared", alpha=0.5, weekly_penalty=0.0, ramp_penalty=2.0, change_penalty=0.0,
                      summed=False, tag_window=0, min_contrast=0.2, one_per_session=True)
THIRD = ChangeConfig(evidence="shared", alpha=0.5, weekly_penalty=0.0, ramp_penalty=0.0, change_penalty=-1.0,
                     min_contrast=0.2, one_per_session=True)
FOURTH = ChangeConfig(alpha=0.2, base_weight=0.0, change_penalty=-0.5, ramp_penalty=0.0, min_contrast=0.2,
                      one_per_session=True)


def planted_users(users: int, items: int, events: int, categories: int, seed: int) -> list[dict]:
    """Per user: id, archetype, [n, C] event category weights, [n] unix seconds, planted change indices."""
    ds = generate(users=users, items=items, events=events, categories=categories, seed=seed)
    cats = ds.truth.categories
    index = {c: k for k, c in enumerate(cats)}
    w = np.zeros((len(ds.items), len(cats)))
    for r, cs in enumerate(ds.items["categories"]):
        for c in cs:
            w[r, index[c]] = 1.0 / len(cs)
    ev = ds.events
    item_row = ev["item_id"].cat.codes.to_numpy()
    ts = ev["ts"].to_numpy(dtype="datetime64[s]").astype(np.int64)
    user = ev["user_id"].cat.codes.to_numpy()
    order = np.lexsort((ts, user))  # user-major, time order (strictly increasing per user)
    bounds = np.searchsorted(user[order], np.arange(users + 1))
    out = []
    for r, uid in enumerate(ds.users["user_id"]):
        sel = order[bounds[r] : bounds[r + 1]]
        out.append({
            "user_id": uid, "archetype": ds.truth.archetype(uid), "events": w[item_row[sel]], "ts": ts[sel],
            "planted": ds.truth.change_points(uid),
        })
    return out


def half(u: dict) -> str:
    return "tune" if zlib.crc32(u["user_id"].encode()) % 2 == 0 else "eval"


def score(users: list[dict], detected: list[list[int]]) -> dict:
    s = change_point_scores(detected, [u["planted"] for u in users], 5).__dict__
    s["false_on_non_switch_users"] = sum(len(d) for d, u in zip(detected, users, strict=True) if u["archetype"] != "switch")
    s["false_by_archetype"] = {a: sum(len(d) for d, u in zip(detected, users, strict=True) if u["archetype"] == a)
                               for a in sorted({u["archetype"] for u in users}) if a != "switch"}
    # a ceiling for any filter on top of this detector: its F1 if every change on a user without a planted switch
    # (gradual, periodic, stable) were dropped by an oracle that knows the archetype
    kept = [d if u["archetype"] == "switch" else [] for d, u in zip(detected, users, strict=True)]
    s["f1_archetype_oracle"] = change_point_scores(kept, [u["planted"] for u in users], 5).f1
    return s


def run_session(users: list[dict], cfg: ChangeConfig) -> dict:
    return score(users, [detect_changes(u["events"], u["ts"], cfg).steps for u in users])


def long_history() -> dict:
    """Seconds the product defaults (and the third session's) take on each user of 2,000+ events of a small
    long-history log (the synthetic generator, 30 users, 30,000 events, seed 1), evidence cache emptied first."""
    out = {}
    for user in planted_users(30, 400, 30_000, 12, 1):
        if len(user["events"]) < 2000:
            continue
        row = {"events": len(user["events"]), "archetype": user["archetype"], "planted": user["planted"]}
        for name, cfg in (("default", ChangeConfig()), ("third_session_default", THIRD),
                          ("fourth_session_default", FOURTH)):
            _BAYES.clear()
            t0 = time.perf_counter()
            steps = detect_changes(user["events"], user["ts"], cfg).steps
            row[name] = {"seconds": time.perf_counter() - t0, "steps": steps}
        out[user["user_id"]] = row
    return out


def defaults_only(tune: list[dict], held: list[dict], args: argparse.Namespace) -> None:
    """The product defaults and the third and fourth sessions' on both halves, and their seconds."""
    res = Results("changepoints", f"synthetic-{args.users}-seed{args.seed}-defaults", resume=False)
    summary: dict = {}
    for name, cfg in (("default", ChangeConfig()), ("third_session_default", THIRD),
                      ("fourth_session_default", FOURTH)):
        for half_name, part in (("tune", tune), ("eval", held)):
            t0 = time.perf_counter()
            s = run_session(part, cfg)
            res.stage(f"{half_name}_{name}", {**cfg.__dict__, **s, "users": len(part),
                                               "seconds": time.perf_counter() - t0, "load_1min": os.getloadavg()[0]})
            summary[f"{half_name}_{name}"] = {k: s[k] for k in ("precision", "recall", "f1")}
    summary.update({"load_1min": os.getloadavg()[0], "results": str(res.path)})
    res.set("summary", summary)
    print(json.dumps(summary) if args.json else json.dumps(summary, indent=2))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--items", type=int, default=1000)
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--categories", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--defaults-only", action="store_true",
                    help="only the product defaults and the third session's, on both halves (no grids): "
                         "results in changepoints-<size>-defaults.json")
    args = ap.parse_args()
    users = planted_users(args.users, args.items, args.events, args.categories, args.seed)
    tune = [u for u in users if half(u) == "tune"]
    held = [u for u in users if half(u) == "eval"]
    if args.defaults_only:
        defaults_only(tune, held, args)
        return
    res = Results("changepoints", f"synthetic-{args.users}-seed{args.seed}", resume=False)
    t0 = time.perf_counter()
    before = score(held, [detect_change_points(u["events"]) for u in held])
    res.stage("before", {"detector": "detect_change_points(events), product defaults until now", **before,
                         "seconds": time.perf_counter() - t0, "load_1min": os.getloadavg()[0]})
    grid = {}
    for scale, div, nf, snap, mc in itertools.product(SCALES, DIVERGENCES, NOISE_FACTORS, SNAPS, MIN_CONTRASTS):
        cfg = ChangeConfig(method="pelt", scale=scale, min_divergence=div, noise_factor=nf, snap=snap, min_contrast=mc,
                           one_per_session=True)
        grid[f"{scale}/{div}/{nf}/{snap}/{mc}"] = run_session(tune, cfg)["f1"]
    best = max(grid, key=lambda k: (grid[k], k))
    res.stage("grid", {"key": "scale/min_divergence/noise_factor/snap/min_contrast", "tune_users": len(tune), "tune_f1": grid,
                       "load_1min": os.getloadavg()[0]})
    s, d, nf, n, mc = best.split("/")
    pelt_best = ChangeConfig(method="pelt", scale=float(s), min_divergence=float(d), noise_factor=float(nf), snap=int(n),
                             min_contrast=float(mc), one_per_session=True)
    t0 = time.perf_counter()
    bgrid = {}
    for tw, sm, alpha, rp, wp, cp, snap, mc in itertools.product(TAG_WINDOWS, SUMMED, ALPHAS, RAMP_PENALTIES,
                                                                 WEEKLY_PENALTIES, CHANGE_PENALTIES, BAYES_SNAPS,
                                                                 BAYES_MIN_CONTRASTS):
        cfg = ChangeConfig(method="bayes", evidence="shared", alpha=alpha, ramp_penalty=rp, weekly_penalty=wp, change_penalty=cp, snap=snap,
                           min_contrast=mc, summed=sm, tag_window=tw, one_per_session=True)
        bgrid[f"{tw}/{int(sm)}/{alpha}/{rp}/{wp}/{cp}/{snap}/{mc}"] = run_session(tune, cfg)["f1"]
    bbest = max(bgrid, key=lambda k: (bgrid[k], k))
    res.stage("bayes_grid", {"key": "tag_window/summed/alpha/ramp_penalty/weekly_penalty/change_penalty/snap/min_contrast",
                             "tune_users": len(tune), "tune_f1": bgrid, "seconds": time.perf_counter() - t0,
                             "load_1min": os.getloadavg()[0]})
    t0 = time.perf_counter()
    pgrid = {}
    for (alpha, w), ops, mc, cp, rp, tau in itertools.product(POSTERIOR_PRIORS, POSTERIOR_ONE_PER_SESSION,
                                                             POSTERIOR_MIN_CONTRASTS, POSTERIOR_CHANGE_PENALTIES,
                                                             POSTERIOR_RAMP_PENALTIES, POSTERIOR_THRESHOLDS):
        cfg = ChangeConfig(alpha=alpha, base_weight=w, one_per_session=ops, min_contrast=mc, change_penalty=cp,
                           ramp_penalty=rp, threshold=tau)
        pgrid[f"{alpha}/{w}/{int(ops)}/{mc}/{cp}/{rp}/{tau}"] = run_session(tune, cfg)["f1"]
    pbest = max(pgrid, key=lambda k: (pgrid[k], k))
    res.stage("posterior_grid", {
        "key": "alpha/base_weight/one_per_session/min_contrast/change_penalty/ramp_penalty/threshold",
        "tune_users": len(tune), "tune_f1": pgrid, "seconds": time.perf_counter() - t0, "load_1min": os.getloadavg()[0]})
    a, w, ops, mc, cp, rp, tau = pbest.split("/")
    posterior_best = ChangeConfig(alpha=float(a), base_weight=float(w), one_per_session=ops == "1", min_contrast=float(mc),
                                  change_penalty=float(cp), ramp_penalty=float(rp), threshold=float(tau))
    tw, sm, a, rp, wp, cp, n, mc = bbest.split("/")
    bayes_best = ChangeConfig(method="bayes", evidence="shared", alpha=float(a), ramp_penalty=float(rp), weekly_penalty=float(wp),
                              change_penalty=float(cp), snap=int(n), min_contrast=float(mc), summed=sm == "1",
                              tag_window=int(tw), one_per_session=True)
    chosen, tune_best = max([(pelt_best, grid[best]), (bayes_best, bgrid[bbest]), (posterior_best, pgrid[pbest])],
                            key=lambda c: c[1])
    t0 = time.perf_counter()
    after = run_session(held, chosen)
    seconds = time.perf_counter() - t0
    default = run_session(held, ChangeConfig())
    pelt_after = run_session(held, pelt_best)
    previous = SECOND
    previous_after = run_session(held, previous)
    third = THIRD
    third_after = run_session(held, third)
    third_tune = run_session(tune, third)
    fourth_after = run_session(held, FOURTH)
    fourth_tune = run_session(tune, FOURTH)
    default_tune = run_session(tune, ChangeConfig())
    res.stage("after", {
        "eval_users": len(held),
        "chosen_on_tune": {**chosen.__dict__, "tune_f1": tune_best}, "eval_chosen": after,
        "eval_pelt_best": {**pelt_best.__dict__, "tune_f1": grid[best], **pelt_after},
        "eval_default": {**ChangeConfig().__dict__, **default}, "eval_seconds": seconds,
        "eval_previous_default": {**previous.__dict__, **previous_after},
        "eval_third_session_default": {**third.__dict__, **third_after},
        "tune_third_session_default": third_tune, "tune_default": default_tune,
        "eval_fourth_session_default": {**FOURTH.__dict__, **fourth_after}, "tune_fourth_session_default": fourth_tune,
        "load_1min": os.getloadavg()[0],
    })
    # told each switch user's true number of changes (and that the other users have none), the exact Bayesian
    # segmentation at α = 0.5: how well the switches can be placed once the count is known
    told = [[int(s) for s in bayes_changes.best_segmentations(
                np.add.reduceat(u["events"][:, u["events"].sum(axis=0) > 0], np.arange(len(u["events"])), axis=0),
                0.5, 10, len(u["planted"]))[len(u["planted"])][1]] if u["planted"] else [] for u in held]
    res.stage("oracle_count", {**score(held, told), "load_1min": os.getloadavg()[0]})
    res.stage("long_history", {**long_history(), "load_1min": os.getloadavg()[0]})
    summary = {"before_f1": before["f1"], "after_f1_chosen": after["f1"], "after_f1_default": default["f1"],
               "previous_default_f1": previous_after["f1"], "third_session_default_f1": third_after["f1"],
               "tune_f1_default": default_tune["f1"], "tune_f1_third_session_default": third_tune["f1"],
               "fourth_session_default_f1": fourth_after["f1"], "tune_f1_fourth_session_default": fourth_tune["f1"],
               "after_f1_pelt": pelt_after["f1"], "chosen": chosen.__dict__, "load_1min": os.getloadavg()[0],
               "results": str(res.path)}
    res.set("summary", summary)
    print(json.dumps(summary) if args.json else json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
