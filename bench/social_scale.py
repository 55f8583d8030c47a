"""Social graph at scale: ingesting ~1M friend edges beside the events, loading the capped friend graph, computing
friends' state timelines, and the per-batch "each friend's last state strictly before t" lookup.

Figures (bench/results/social_scale-<edges>.json): ingest wall seconds of the events alone and of the events with
the edges (the difference is the edges' cost), edges stored; `load_graph` seconds; `compute_timelines` seconds (the
per-epoch cost of the branch, an untrained d_model 32 / 2-layer / window 50 model, 1 thread); the `social_inputs`
lookup per training batch (32 windows x 50 steps x K = 20 friends) and per user switch (1 window), p50 / p95 ms;
memory of the graph and the timelines, peak RSS; the 1-minute load average before and after each stage.

    OMP_NUM_THREADS=1 python bench/social_scale.py --users 150000 --edges 1000000 --events 2000000

The log: `--users` users with Poisson event counts (mean events / users), items drawn Zipf-like, one event per user
per hour; the graph: `--edges` distinct undirected pairs drawn uniformly (mean degree 2 x edges / users, ~13 at the
defaults, Last.fm's 13.4).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Results, peak_rss_mb, percentiles  # noqa: E402
from core.evaluate.windows import window_positions  # noqa: E402
from core.friends.context import DEFAULT_K  # noqa: E402
from core.friends.graph import load_graph  # noqa: E402
from core.friends.states import compute_timelines, social_inputs  # noqa: E402
from core.ingest.frames import ingest_frames  # noqa: E402
from core.model import InterestModel, ModelConfig, ModelSizes  # noqa: E402
from core.sequences import build_vocab, load_sequences  # noqa: E402
from core.store import connect_read  # noqa: E402


def load1() -> float:
    return round(os.getloadavg()[0], 2)


def make_log(users: int, events: int, edges: int, items: int, seed: int,
             categories: int = 20) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:  # fmt: skip
    """Events, undirected edges and items (one of `categories` categories each, so the copy path mixes within
    categories as trained models do: `CATEGORY_COPY`)."""
    rng = np.random.default_rng(seed)
    counts = np.maximum(rng.poisson(events / users, users), 3)
    owner = np.repeat(np.arange(users), counts)
    step = np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts)
    start = rng.integers(0, 365 * 86400, users)
    ts = pd.to_datetime(1_600_000_000 + start[owner] + step * 3600, unit="s")
    item = np.minimum(rng.zipf(1.3, len(owner)), items) - 1
    ids = np.array([f"u{u:07d}" for u in range(users)], dtype=object)
    ev = pd.DataFrame({"user_id": ids[owner], "item_id": pd.Series(item).map(lambda i: f"i{i:06d}"), "ts": ts})
    a, b = rng.integers(0, users, (2, int(edges * 1.2)))
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    pairs = np.unique(np.stack([lo[lo != hi], hi[lo != hi]], 1), axis=0)
    pairs = pairs[rng.permutation(len(pairs))[:edges]]
    cats = [[f"c{c:02d}"] for c in rng.integers(0, categories, items)]
    it = pd.DataFrame({"item_id": [f"i{i:06d}" for i in range(items)], "categories": cats})
    return ev, pd.DataFrame({"src_user": ids[pairs[:, 0]], "dst_user": ids[pairs[:, 1]]}), it


def train_steps(res: Results, db: Path, n: int) -> None:
    """Seconds per optimiser step of `core.train`'s own `run_epoch` (batch 32, window 50, d 32) with and without the
    social branch, from the same setup. A social epoch starts with one timelines pass (friends' states from the
    epoch's starting weights) that dwarfs a few steps and varies by seconds from run to run, so the social arm's
    pass is timed alone (the per-epoch cost) and marked current; each arm then runs `n` warm-up steps and the next
    `3n` steps are timed alone: what a step costs inside an epoch. The pass is also reported per step of a whole
    epoch (pass seconds / the epoch's steps)."""
    from dataclasses import replace

    from core.train.config import TrainConfig
    from core.train.distributed import DistContext
    from core.train.loop import Clock, run_epoch
    from core.train.setup import setup

    ctx = DistContext(0, 1, 0, torch.device("cpu"))
    mcfg = ModelConfig(d_model=32, n_layers=2, n_heads=2, max_len=50)
    out: dict[str, float] = {}
    for social in (False, True):
        name = "social" if social else "plain"
        cfg = TrainConfig(epochs=1, batch_size=32, device="cpu", max_steps=n, social=social, fit_interest=False)
        run, state, _ = setup(db, db.parent / f"m-{social}", mcfg, cfg, False, ctx)
        state.epoch = 1
        l0 = load1()
        if social:  # the per-epoch pass, timed alone, then marked current (one pass on a 10M log is minutes)
            t0, c0 = time.perf_counter(), time.process_time()
            run.social.timelines = compute_timelines(run.model, run.seqs)
            run.social.step = state.step
            out["timelines_seconds"] = round(time.perf_counter() - t0, 2)
            out["timelines_cpu_seconds"] = round(time.process_time() - c0, 2)
            out["timelines_load1"] = [l0, load1()]
            out["social_copy_within_categories"] = bool(run.model.social.by_category)  # the mixture trained with
        warm = run_epoch(run, state, Clock.started(0.0, "wall"))
        out[f"{name}_warmup_seconds_{len(warm.losses)}_steps"] = round(warm.train_seconds, 2)
        out["epoch_steps"] = int(warm.epoch_steps)
        if social:  # friends' states stay those of the pass above: the timed steps pay no pass, as inside an epoch
            run.social.step = state.step
        timed = run_epoch(replace(run, config=replace(run.config, max_steps=4 * n)), state, Clock.started(0.0, "wall"))
        k = len(timed.losses)
        out[f"{name}_ms_per_step"] = round(timed.train_seconds / k * 1000, 1)
        out[f"{name}_cpu_ms_per_step"] = round(timed.train_cpu_seconds / k * 1000, 1)
        out[f"{name}_timed_steps"] = k
        out[f"{name}_load1"] = [l0, load1()]
        out[f"{name}_peak_rss_mib"] = round(peak_rss_mb(), 1)
        del run, state
    out["step_ratio"] = round(out["social_ms_per_step"] / out["plain_ms_per_step"], 2)
    out["step_ratio_cpu"] = round(out["social_cpu_ms_per_step"] / out["plain_cpu_ms_per_step"], 2)
    # the pass spread over a whole epoch's steps: a social step's cost including its share of the pass
    per_step_pass = out["timelines_seconds"] * 1000 / max(out["epoch_steps"], 1)
    out["step_ratio_with_timelines_pass"] = round((out["social_ms_per_step"] + per_step_pass) / out["plain_ms_per_step"], 2)
    print(f"train steps: plain {out['plain_ms_per_step']} ms, social {out['social_ms_per_step']} ms per step "
          f"(ratio {out['step_ratio']}, CPU {out['step_ratio_cpu']}), timelines {out['timelines_seconds']} s per "
          f"epoch of {out['epoch_steps']} steps (ratio with the pass {out['step_ratio_with_timelines_pass']})")
    res.stage("train_steps", out)


def keep(db: Path, size: str) -> dict[str, str]:
    """Copy the database under data/ and save a seeded untrained stand-in of the default configuration with the
    social branch (the copy mixture new models train with), as bench/dashboard.py's stand-in, with friends."""
    import shutil

    from core.checkpoint import save_checkpoint
    from core.model.social import CATEGORY_COPY, attach_branch
    from core.sequences import data_fingerprint

    out_db = Path("data") / f"bench-social-{size}.duckdb"
    out_db.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(db, out_db)
    with connect_read(out_db) as con:
        vocab = build_vocab(con)
        fp = data_fingerprint(con)
    sizes = ModelSizes(vocab.n_items, len(vocab.categories), len(vocab.event_types),
                       tuple(len(v) for v in vocab.context.values()))  # fmt: skip
    torch.manual_seed(0)
    plain = InterestModel(ModelConfig(), sizes, vocab.category_weights())
    base = Path("data/cache/bench-models") / f"plain-{size}"  # the same weights without the branch: today's switch
    save_checkpoint(base, plain.eval(), vocab, fp, {"epochs": 0, "note": "untrained stand-in for latency benchmarks"})
    model = attach_branch(plain, by_category=CATEGORY_COPY)
    out = Path("data/cache/bench-models") / f"social-{size}"
    save_checkpoint(out, model.eval(), vocab, fp, {"epochs": 0, "social": True,
                                                   "note": "untrained stand-in for latency benchmarks"})  # fmt: skip
    return {"db": str(out_db), "model": str(out), "model_without_branch": str(base)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=150_000)
    ap.add_argument("--events", type=int, default=2_000_000)
    ap.add_argument("--edges", type=int, default=1_000_000)
    ap.add_argument("--items", type=int, default=20_000)
    ap.add_argument("--batches", type=int, default=50, help="timed lookups of each kind")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-lookups", action="store_true",
                    help="skip the untrained timelines pass and the lookup timings (one pass less on a big log)")
    ap.add_argument("--keep", action="store_true",
                    help="keep the database (data/bench-social-<size>.duckdb) and save an untrained stand-in social "
                         "model of the default configuration (data/cache/bench-models/social-<size>) and the same "
                         "weights without the branch (plain-<size>) for bench/dashboard.py's user switch")
    ap.add_argument("--train-steps", type=int, default=30, help="n: each arm runs n and 4n optimiser steps, with and without friends (0: skip)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    size = f"{a.edges // 1000}k" if a.edges < 1_000_000 else f"{a.edges / 1e6:g}m"
    if a.events != 2_000_000:  # other log sizes beside the 2M-event figures, not over them
        size += f"-{a.events / 1e6:g}m-events"
    res = Results("social_scale", size, resume=False)
    res.set("settings", vars(a))
    ev, edges, items = make_log(a.users, a.events, a.edges, a.items, a.seed)
    print(f"{len(ev):,} events, {len(edges):,} edges, {a.users:,} users")
    with tempfile.TemporaryDirectory() as tmp:
        t = {}
        for name, kw in (("events_only", {}), ("events_and_edges", {"edges": edges})):
            l0, t0 = load1(), time.perf_counter()
            r = ingest_frames(Path(tmp) / f"{name}.duckdb", ev, items=items, **kw)
            t[name] = round(time.perf_counter() - t0, 2)
            print(f"ingest {name}: {t[name]} s (load {l0} -> {load1()})")
            res.stage(f"ingest_{name}", {"seconds": t[name], "events": int(r.accepted), "load1_before": l0,
                                         "load1_after": load1(), **({"edges": asdict(r.edges)} if kw else {})})
        res.stage("ingest_edges_cost", {"seconds": round(t["events_and_edges"] - t["events_only"], 2)})
        del ev, edges, items  # the frames (GBs at 10M events) are in the databases now
        db = Path(tmp) / "events_and_edges.duckdb"
        if a.keep:
            res.stage("kept", keep(db, size))
        with connect_read(db) as con:
            vocab = build_vocab(con)
            seqs = load_sequences(con, vocab)
            l0, t0 = load1(), time.perf_counter()
            graph = load_graph(con, seqs, DEFAULT_K)
            sec = time.perf_counter() - t0
        graph_mb = (graph.offsets.nbytes + graph.rows.nbytes + graph.weights.nbytes) / 2**20
        print(f"load_graph: {sec:.2f} s, {graph.n_edges:,} friend links (cap {graph.k}), {graph_mb:.1f} MiB")
        res.stage("load_graph", {"seconds": round(sec, 2), "friend_links": int(graph.n_edges), "cap_k": graph.k,
                                 "mib": round(graph_mb, 1), "load1_before": l0, "load1_after": load1()})
        if not a.no_lookups:  # an untrained model's timelines pass, then the lookups
            cfg = ModelConfig(d_model=32, n_layers=2, n_heads=2, max_len=50)
            sizes = ModelSizes(vocab.n_items, len(vocab.categories), len(vocab.event_types),
                               tuple(len(v) for v in vocab.context.values()))
            torch.manual_seed(0)
            model = InterestModel(cfg, sizes, vocab.category_weights() if sizes.n_categories else None).eval()
            l0, t0 = load1(), time.perf_counter()
            tl = compute_timelines(model, seqs)
            sec = time.perf_counter() - t0
            tl_mb = (tl.states.numel() * tl.states.element_size() + tl.keys.nbytes) / 2**20
            print(f"compute_timelines: {sec:.1f} s for {len(seqs.items):,} events, {tl_mb:.1f} MiB")
            res.stage("timelines", {"seconds": round(sec, 2), "events": int(len(seqs.items)), "mib": round(tl_mb, 1),
                                    "load1_before": l0, "load1_after": load1()})
            rng = np.random.default_rng(a.seed)
            T = cfg.max_len
            for name, B in (("lookup_batch", 32), ("lookup_user", 1)):
                samples, l0 = [], load1()
                for _ in range(a.batches):
                    rows = rng.integers(0, seqs.n_users, B)
                    hi = seqs.offsets[rows + 1]
                    lo = np.maximum(seqs.offsets[rows], hi - T)
                    pos, real = window_positions(lo, hi, T)
                    t0 = time.perf_counter()
                    social_inputs(tl, graph, rows, seqs.ts[pos], real)
                    samples.append((time.perf_counter() - t0) * 1000)
                p = {k: (round(v, 2) if isinstance(v, float) else v) for k, v in percentiles(samples).items()}
                print(f"{name} (B={B}, T={T}, K={graph.k}): p50 {p['p50']} ms, p95 {p['p95']} ms")
                res.stage(name, {"batch": B, "steps": T, "k": graph.k, "ms": p, "load1_before": l0, "load1_after": load1()})
            del tl, model
        del seqs, graph  # train_steps loads its own (one copy at a time on a big log)
        if a.train_steps:
            train_steps(res, db, a.train_steps)
    res.stage("memory", {"peak_rss_mib": round(peak_rss_mb(), 1)})
    print(f"peak RSS {peak_rss_mb():.0f} MiB; {res.path}")


if __name__ == "__main__":
    main()
