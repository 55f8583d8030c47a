"""Server-side latency of the dashboard's two heavy interactions, measured through the same calls the pages make.

- switching user: the explorer's and attention page's work for a user seen for the first time (nothing cached):
  history (`user_history`), trajectory, top-10 recommendations and attention at the last step, each run on the
  app's shared read-only connection (`dashboard.reader.READER`) through the functions behind its cache
  (`dashboard.calls`); a pause longer than the reader's idle time before each user, so every switch pays the
  database open as a first click after a pause does;
- opening an explanation: SHAP per event, per time window and per feature group plus the deletion curves for the
  user's top-1 item (`dashboard.calls.explain`).

Usage::

    python bench/dashboard.py --size ml100k            # MovieLens-100k (built into data/ when absent)
    python bench/dashboard.py --size synthetic-1m      # a 1M-event synthetic log (built when absent)
    python bench/dashboard.py --size ml100k --model data/models/ml   # a trained model instead of the stand-in

Without `--model` the benchmark saves a seeded, untrained model of the default configuration beside its data and
times that: the computation (shapes, windows, forward passes) is the same as for a trained model of that
configuration, only the numbers differ. The results say which model was used. Prints a table and writes
`bench/results/dashboard-<size>.json`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Results, percentiles  # noqa: E402

log = logging.getLogger("bench.dashboard")

SIZES = {
    "ml100k": {"db": "data/bench-dashboard-ml100k.duckdb"},
    "synthetic-1m": {"db": "data/bench-dashboard-synthetic-1m.duckdb",
                     "synthetic": dict(users=20_000, items=5_000, events=1_000_000, categories=20, seed=0)},
}
MODELS = Path("data/cache/bench-models")  # not data/models: `make run` must never pick a stand-in model


def prepare_db(size: str, db: Path) -> float:
    """Build the benchmark database when it is absent; seconds spent (0 when it existed)."""
    if db.exists():
        return 0.0
    t0 = time.perf_counter()
    if size == "ml100k":
        from core.datasets import build_movielens_100k

        build_movielens_100k(db)
    else:
        from core.datasets.build import build_synthetic

        build_synthetic(db, **SIZES[size]["synthetic"])
    return time.perf_counter() - t0


def stand_in_model(db: Path, size: str) -> Path:
    """A seeded untrained model of the default configuration over `db` (saved once)."""
    import torch

    from core.checkpoint import save_checkpoint
    from core.model import InterestModel, ModelConfig, ModelSizes
    from core.sequences import build_vocab, data_fingerprint
    from core.store import connect_read

    out = MODELS / f"{size}-untrained"
    if (out / "model.safetensors").exists():
        return out
    with connect_read(db) as con:
        vocab = build_vocab(con)
        fp = data_fingerprint(con)
    sizes = ModelSizes(vocab.n_items, len(vocab.categories), len(vocab.event_types),
                       tuple(len(v) for v in vocab.context.values()))
    torch.manual_seed(0)
    model = InterestModel(ModelConfig(), sizes, vocab.category_weights()).eval()
    return save_checkpoint(out, model, vocab, fp, {"epochs": 0, "note": "untrained stand-in for latency benchmarks"})


def sample_users(db: Path, n: int, seed: int) -> list[str]:
    from core.store import connect_read

    with connect_read(db) as con:
        users = [r[0] for r in con.execute("SELECT DISTINCT user_id FROM events ORDER BY 1").fetchall()]
    rng = np.random.default_rng(seed)
    return [str(u) for u in rng.choice(users, size=min(n, len(users)), replace=False)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="ml100k")
    ap.add_argument("--db", type=Path, default=None, help="database (default: built for --size under data/)")
    ap.add_argument("--model", type=Path, default=None, help="trained model (default: an untrained stand-in)")
    ap.add_argument("--users", type=int, default=60, help="users for the switch-user timing")
    ap.add_argument("--explanations", type=int, default=20, help="explanations to time")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads (default: what the app uses, dashboard.calls.APP_TORCH_THREADS)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch

    from core.checkpoint import load_checkpoint
    from core.store import connect_read, user_history
    from dashboard import calls
    from dashboard.calls import APP_TORCH_THREADS

    torch.set_num_threads(args.threads or APP_TORCH_THREADS)

    db = args.db or Path(SIZES[args.size]["db"])
    tag = args.size if args.threads in (None, APP_TORCH_THREADS) else f"{args.size}-threads{args.threads}"
    results = Results("dashboard", tag, resume=False)
    build_s = prepare_db(args.size, db)
    model_dir = args.model or stand_in_model(db, args.size)
    loaded = load_checkpoint(model_dir, "cpu")
    with connect_read(db) as con:
        n_users, n_events = con.execute("SELECT count(DISTINCT user_id), count(*) FROM events").fetchone()
    results.set("setup", {
        "db": str(db), "users": int(n_users), "events": int(n_events), "build_seconds": round(build_s, 1),
        "model": str(model_dir), "trained": args.model is not None, "model_config": loaded.config.to_dict(),
        "torch_threads": torch.get_num_threads(), "load_average_before": os.getloadavg(),
    })
    steps = {
        "history": lambda u: _read(db, lambda con: user_history(con, u)),
        "trajectory": lambda u: _read(db, lambda con: calls.trajectory(loaded, con, u)),
        "recommendations": lambda u: _read(db, lambda con: calls.recommend(loaded, con, u, 10)),
        "attention": lambda u: _read(db, lambda con: calls.attention(loaded, con, u, None)),
    }
    users = sample_users(db, args.users + 3, args.seed)
    for u in users[:3]:  # warm-up: imports, analysers, first allocations (the app pays this once)
        for fn in steps.values():
            fn(u)
    per_step: dict[str, list[float]] = {k: [] for k in steps}
    totals, lengths = [], []
    from dashboard.reader import IDLE_S, READER

    for u in users[3:]:
        time.sleep(IDLE_S + 0.3)  # an analyst's pause: the shared connection has closed, this switch reopens it
        assert not READER.is_open
        t_user = time.perf_counter()
        for name, fn in steps.items():
            t0 = time.perf_counter()
            out = fn(u)
            per_step[name].append((time.perf_counter() - t0) * 1000)
            if name == "history":
                lengths.append(len(out))
        totals.append((time.perf_counter() - t_user) * 1000)
    switch = {"total_ms": percentiles(totals), **{f"{k}_ms": percentiles(v) for k, v in per_step.items()},
              "history_events": percentiles([float(x) for x in lengths])}
    results.stage("switch_user", switch)

    explain_ms, explained = [], []
    for u in users[: args.explanations]:
        top = _read(db, lambda con, u=u: calls.recommend(loaded, con, u, 1))
        t0 = time.perf_counter()
        view = _read(db, lambda con, u=u, i=str(top["item_id"].iloc[0]): calls.explain(loaded, con, u, i))
        explain_ms.append((time.perf_counter() - t0) * 1000)
        explained.append(float(len(view.explanation.labels)))
    results.stage("open_explanation", {"total_ms": percentiles(explain_ms), "events_explained": percentiles(explained)})
    results.set("load_average_after", os.getloadavg())

    print(f"dashboard latency on {args.size} ({n_users:,} users, {n_events:,} events; model {model_dir}, "
          f"{'trained' if args.model else 'untrained stand-in'}; load average {os.getloadavg()[0]:.1f})")
    print(f"{'step':22} {'p50 ms':>9} {'p95 ms':>9} {'n':>4}")
    for name, fig in [("switch user (total)", switch["total_ms"]),
                      *[(f"  {k}", switch[f"{k}_ms"]) for k in steps],
                      ("open explanation", percentiles(explain_ms))]:
        if fig["n"]:
            print(f"{name:22} {fig['p50']:9.1f} {fig['p95']:9.1f} {fig['n']:4d}")
    print(f"wrote {results.path}")


def _read(db: Path, fn):
    """Run `fn(con)` the way the app does: on its shared read-only connection (`dashboard.reader.READER`)."""
    from dashboard.reader import READER, file_stamp

    with READER.cursor(db, file_stamp(db)) as con:
        return fn(con)


if __name__ == "__main__":
    main()
