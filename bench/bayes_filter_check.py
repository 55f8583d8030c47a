"""How far the Bayes oracle's noise approximation moves its forecast (bench/bayes_filter.py).

    OMP_NUM_THREADS=1 .venv/bin/python bench/bayes_filter_check.py --db /tmp/q18-bench/interest-planted/log.duckdb \
        --model /tmp/q18-bench/interest-planted/model [--users 40 --draws 40000]

On the planted log's stable users with at most 80 events, the forecast half-way through the history: the filter's
(assumed-density update for the 2 % browsing noise) against the exact posterior predictive of the stable model,
importance-sampled (proposal: the noise-free Dirichlet posterior; weight Π q(c)/m(c)). Prints the mean and largest TV
between the two and writes bench/results/bayes-filter-check.json. With `--oracle-draws N`, also the whole oracle
(`bench/trajectory_oracles.bayes_oracle`) with N posterior draws per step for its TV-optimal point (the benchmark
uses 128), against the histogram tuned in `--interest-json` (a `trajectory-interest-<log>.json`), to show how much
the Monte-Carlo estimate of that point moves with the number of draws.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bayes_filter import Segments, run_filter  # noqa: E402
from bench.common import Results  # noqa: E402
from bench.trajectory_oracles import planted_hazard  # noqa: E402
from core.checkpoint import load_checkpoint  # noqa: E402
from core.datasets import load_truth  # noqa: E402
from core.sequences import load_sequences  # noqa: E402
from core.store import connect_read  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--users", type=int, default=40)
    ap.add_argument("--draws", type=int, default=40_000)
    ap.add_argument("--oracle-draws", type=int, default=0)
    ap.add_argument("--interest-json", default="bench/results/trajectory-interest-planted.json")
    args = ap.parse_args()
    loaded = load_checkpoint(args.model)
    with connect_read(args.db) as con:
        seqs = load_sequences(con, loaded.vocab)
    truth = load_truth(args.db)
    w = loaded.vocab.category_weights().numpy()
    C = w.shape[1]
    params = truth.meta["params"]
    A, eps = np.full(C, float(params["sparsity"])), 0.02
    rng = np.random.default_rng(0)
    tvs = []
    for r, u in enumerate(seqs.user_ids):
        cats = w[seqs.history(r).items].argmax(axis=1)
        if truth.archetype(str(u)) != "stable" or len(cats) > 80:
            continue
        seen = cats[: len(cats) // 2 + 1]
        p, _, _ = run_filter(seen, [Segments(A, eps, [(0, 1.0)], planted_hazard(len(cats)))])
        m = rng.gamma(np.bincount(seen, minlength=C) + A, size=(args.draws, C))
        m /= m.sum(axis=1, keepdims=True)
        q = (1 - eps) * m + eps / C
        lw = (np.log(q[:, seen]) - np.log(m[:, seen])).sum(axis=1)
        wt = np.exp(lw - lw.max())
        exact = (wt / wt.sum()) @ q
        tvs.append(0.5 * np.abs(exact - p[-1]).sum())
        if len(tvs) >= args.users:
            break
    res = Results("bayes-filter", "check", resume=False)
    out = res.stage("noise_approximation", {"users": len(tvs), "draws": args.draws, "mean_tv": float(np.mean(tvs)),
                                            "max_tv": float(np.max(tvs)), "load_1min": os.getloadavg()[0]})
    print(json.dumps(out, indent=2))
    if args.oracle_draws:
        print(json.dumps(res.stage(f"oracle_draws_{args.oracle_draws}", _oracle(args, loaded, seqs, truth)), indent=2))


def _oracle(args, loaded, seqs, truth) -> dict:
    import math

    from bench.trajectory_oracles import bayes_oracle
    from core.evaluate import split_from_card
    from core.trajectory.forecast import HistogramBaseline
    from core.trajectory.interest import category_prior

    rep = json.loads(Path(args.interest_json).read_text())["stages"]["interest"]
    hl = rep["histogram_half_life"]
    base = HistogramBaseline(math.inf if hl is None else float(hl), float(rep["histogram_pseudo_count"]), math.nan)
    w = loaded.vocab.category_weights().numpy().astype(np.float64)
    prior = category_prior(seqs, split_from_card(seqs, loaded.card.get("split")), w)
    o = bayes_oracle(seqs, truth, loaded.vocab, base, prior, draws=args.oracle_draws)
    return {k: o[k] for k in ("tv", "tv_ratio", "tv_ratio_act", "entropy_ratio_act", "draws")} | {
        "load_1min": os.getloadavg()[0]}


if __name__ == "__main__":
    main()
