"""Server-side latency of the dashboard's two heavy interactions, measured through the same calls the pages make.

- switching user: the explorer's work for a user seen for the first time (nothing cached): `dashboard.cache.
  user_history` and `dashboard.cache.user_view` (trajectory, top-K recommendations and attention at the last
  step from one read of the history), each on the app's shared read-only connection (`dashboard.reader.READER`);
  a pause longer than the reader's idle time before each user, so every switch pays the database open as a first
  click after a pause does. The previous path (history, trajectory, recommendations and attention as four separate
  calls, each reading the history again) is timed on the same users, alternating, for comparison. With a model
  that has the social branch the switch also computes the explorer's Friends panel
  (`dashboard.components.friends.friends_view`: social share and influencers per step, friends' dominant
  categories);
- opening an explanation: `dashboard.cache.explain` for the user's top-1 item (SHAP per event, or per period for
  older events of long windows, and per feature group: what the Explain page shows when it opens), then the two
  tabs computed when opened, time windows (`cache.periods`) and attention vs SHAP (`cache.deletion`).

The calls are the pages' own `st.cache_data` functions (run outside a Streamlit server, their caches live in
memory): a first call for a user pays the computation plus the cache's hashing and pickling, as the page does.
Peak RSS of the process is recorded at the end.

Every figure has its wall time and the process CPU time beside it (the machine is shared: the gap is waiting for a
core), and the load average is recorded before, during and after.

Usage::

    python bench/dashboard.py --size ml100k            # MovieLens-100k (built into data/ when absent)
    python bench/dashboard.py --size synthetic-1m      # a 1M-event synthetic log (built when absent)
    python bench/dashboard.py --size ml100k --model data/models/ml   # a trained model instead of the stand-in
    python bench/dashboard.py --db data/bench-social-1m-10m-events.duckdb \
        --model data/cache/bench-models/social-1m-10m-events --tag social-10m   # bench/social_scale.py --keep

Without `--model` the benchmark saves a seeded, untrained model of the default configuration beside its data and
times that: the computation (shapes, windows, forward passes) is the same as for a trained model of that
configuration, only the numbers differ. The results say which model was used. Prints a table and writes
`bench/results/dashboard-<size>.json`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import resource
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

    cfg = ModelConfig()
    # The folder names the configuration: a stand-in saved under an older default is not reused.
    digest = hashlib.sha256(json.dumps(cfg.to_dict(), sort_keys=True).encode()).hexdigest()[:8]
    out = MODELS / f"{size}-untrained-{digest}"
    if (out / "model.safetensors").exists():
        return out
    with connect_read(db) as con:
        vocab = build_vocab(con)
        fp = data_fingerprint(con)
    sizes = ModelSizes(vocab.n_items, len(vocab.categories), len(vocab.event_types),
                       tuple(len(v) for v in vocab.context.values()))
    torch.manual_seed(0)
    model = InterestModel(cfg, sizes, vocab.category_weights()).eval()
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
    ap.add_argument("--tag", default=None, help="results name instead of --size (a --db of another size)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads (default: what the app uses, dashboard.cache.APP_TORCH_THREADS)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch

    from core.store import connect_read
    from dashboard import cache
    from dashboard.cache import APP_TORCH_THREADS
    from dashboard.reader import file_stamp

    torch.set_num_threads(args.threads or APP_TORCH_THREADS)

    db = args.db or Path(SIZES[args.size]["db"])
    tag = args.tag or args.size
    tag = tag if args.threads in (None, APP_TORCH_THREADS) else f"{tag}-threads{args.threads}"
    results = Results("dashboard", tag, resume=False)
    build_s = prepare_db(args.size, db)
    model_dir = args.model or stand_in_model(db, args.size)
    model = cache.model_ref(model_dir)
    loaded = cache.loaded_model(model)
    torch.set_num_threads(args.threads or APP_TORCH_THREADS)  # loading sets the app's count; the flag wins
    with connect_read(db) as con:
        n_users, n_events = con.execute("SELECT count(DISTINCT user_id), count(*) FROM events").fetchone()
    results.set("setup", {
        "db": str(db), "users": int(n_users), "events": int(n_events), "build_seconds": round(build_s, 1),
        "model": str(model_dir), "trained": args.model is not None, "model_config": loaded.config.to_dict(),
        "torch_threads": torch.get_num_threads(), "load_average_before": os.getloadavg(),
    })
    ref = cache.DbRef(str(db), file_stamp(db))
    view = {
        "history": lambda u: cache.user_history(ref, u),
        "user_view": lambda u: cache.user_view(ref, model, u),
    }
    if loaded.model is not None and loaded.model.social is not None:  # the explorer's Friends panel draws too
        from dashboard.components.friends import friends_view

        view["friends"] = lambda u: friends_view(ref.path, ref.stamp, model.path, model.stamp, u)
    separate = {
        "history": lambda u: cache.user_history(ref, u),
        "trajectory": lambda u: cache.trajectory(ref, model, u),
        "recommendations": lambda u: cache.recommend(ref, model, u, 10),
        "attention": lambda u: cache.attention(ref, model, u, None),
    }
    users = sample_users(db, 2 * args.users + 3, args.seed)
    for u in users[:3]:  # warm-up: imports, analysers, first allocations (the app pays this once)
        for fn in [*view.values(), *separate.values()]:
            fn(u)
    from dashboard.reader import IDLE_S, READER

    timings: dict[str, dict[str, list[float]]] = {"switch_user": {}, "switch_user_separate": {}}
    lengths, loads = [], []
    for n, u in enumerate(users[3:]):
        stage, fns = ("switch_user", view) if n % 2 == 0 else ("switch_user_separate", separate)
        time.sleep(IDLE_S + 0.3)  # an analyst's pause: the shared connection has closed, this switch reopens it
        deadline = time.monotonic() + 30  # on a loaded machine the reader's idle timer thread can run late
        while READER.is_open and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not READER.is_open
        t_user, c_user = time.perf_counter(), time.process_time()
        for name, fn in fns.items():
            t0, c0 = time.perf_counter(), time.process_time()
            out = fn(u)
            timings[stage].setdefault(f"{name}_ms", []).append((time.perf_counter() - t0) * 1000)
            timings[stage].setdefault(f"{name}_cpu_ms", []).append((time.process_time() - c0) * 1000)
            if name == "history" and stage == "switch_user":
                lengths.append(float(len(out)))
        timings[stage].setdefault("total_ms", []).append((time.perf_counter() - t_user) * 1000)
        timings[stage].setdefault("total_cpu_ms", []).append((time.process_time() - c_user) * 1000)
        loads.append(os.getloadavg()[0])
    for stage, figs in timings.items():
        results.stage(stage, {**{k: percentiles(v) for k, v in figs.items()},
                              **({"history_events": percentiles(lengths)} if stage == "switch_user" else {})})

    expl: dict[str, list[float]] = {}
    explained, players = [], []
    warm = users[-1]  # warm-up: shap's numba functions compile on first use (the app pays this once)
    item = str(cache.recommend(ref, model, warm, 1)["item_id"].iloc[0])
    for fn in (cache.explain, cache.periods, cache.deletion):
        fn(ref, model, warm, item)
    for u in users[: args.explanations]:
        item = str(cache.recommend(ref, model, u, 1)["item_id"].iloc[0])  # each user once: a first opening
        for name, fn in [("open", cache.explain), ("periods_tab", cache.periods), ("deletion_tab", cache.deletion)]:
            t0, c0 = time.perf_counter(), time.process_time()
            out = fn(ref, model, u, item)
            expl.setdefault(f"{name}_ms", []).append((time.perf_counter() - t0) * 1000)
            expl.setdefault(f"{name}_cpu_ms", []).append((time.process_time() - c0) * 1000)
            if name == "open":
                explained.append(float(len(out.positions)))
                players.append(float(len(out.labels)))
        loads.append(os.getloadavg()[0])
    total = [sum(x) for x in zip(expl["open_ms"], expl["periods_tab_ms"], expl["deletion_tab_ms"], strict=True)]
    total_cpu = [sum(x) for x in zip(expl["open_cpu_ms"], expl["periods_tab_cpu_ms"], expl["deletion_tab_cpu_ms"],
                                     strict=True)]
    results.stage("open_explanation", {
        **{k: percentiles(v) for k, v in expl.items()},
        "all_three_ms": percentiles(total), "all_three_cpu_ms": percentiles(total_cpu),
        "events_explained": percentiles(explained), "players": percentiles(players),
    })
    results.set("load_average_during", {"min": min(loads), "max": max(loads), "mean": sum(loads) / len(loads)})
    results.set("load_average_after", os.getloadavg())
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    results.set("peak_rss_mb", round(peak_mb, 1))

    print(f"dashboard latency on {tag} ({n_users:,} users, {n_events:,} events; model {model_dir}, "
          f"{'trained' if args.model else 'untrained stand-in'}; torch threads {torch.get_num_threads()}; "
          f"1-min load average {min(loads):.1f}–{max(loads):.1f} during)")
    print(f"{'step':34} {'wall p50':>9} {'wall p95':>9} {'cpu p50':>9} {'cpu p95':>9} {'n':>4}")
    rows = [(f"switch user ({' + '.join(view)})", "switch_user", "total"),
            *((f"  {k}", "switch_user", k) for k in view),
            ("switch user, previous 4 calls", "switch_user_separate", "total")]
    for label, stage, key in rows:
        w, c = percentiles(timings[stage][f"{key}_ms"]), percentiles(timings[stage][f"{key}_cpu_ms"])
        print(f"{label:34} {w['p50']:9.1f} {w['p95']:9.1f} {c['p50']:9.1f} {c['p95']:9.1f} {w['n']:4d}")
    for label, key in [("open explanation", "open"), ("  then time windows tab", "periods_tab"),
                       ("  then attention vs SHAP tab", "deletion_tab")]:
        w, c = percentiles(expl[f"{key}_ms"]), percentiles(expl[f"{key}_cpu_ms"])
        print(f"{label:34} {w['p50']:9.1f} {w['p95']:9.1f} {c['p50']:9.1f} {c['p95']:9.1f} {w['n']:4d}")
    w, c = percentiles(total), percentiles(total_cpu)
    print(f"{'  all three':34} {w['p50']:9.1f} {w['p95']:9.1f} {c['p50']:9.1f} {c['p95']:9.1f} {w['n']:4d}")
    print(f"peak RSS {peak_mb:.0f} MB")
    print(f"wrote {results.path}")


if __name__ == "__main__":
    main()
