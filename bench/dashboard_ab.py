"""The dashboard benchmark before and after a change, in one run: fresh processes, alternated, same model and users.

Issue 20 asks for "the dashboard benchmark unchanged or better (user switch p95, open an explanation p95, peak RSS),
measured before and after in one run". This script runs the two trees back to back:

- *before*: a read-only checkout of an older commit (default: main at the CLI move, 7d768cf, the last commit before
  the typed data layer), e.g. ``git worktree add --detach /tmp/q20-before 7d768cf``;
- *after*: this tree.

Each side runs in fresh child processes (`python bench/dashboard_ab.py --child`, with ``PYTHONPATH`` set to that
side's tree), so imports, caches and peak RSS belong to one side only. The sides alternate over ``--rounds``
rounds (before, after, then after, before, ...), so a change in the machine's load reaches both. Round r of both
sides times the same users.

Both sides go through the pages' own entry points, so both pay Streamlit's cache layer (hashing the arguments,
pickling `st.cache_data` results) on a first call:

- before: `dashboard.data.query("user_history", u)` and `dashboard.data.model_call("user_view" | "explain" |
  "periods" | "deletion", model_dir, ...)` (what `panels.model_result` called);
- after: `dashboard.cache.user_history`, `user_view`, `explain`, `periods`, `deletion`.

(The earlier before/after files, `dashboard-ml100k-typed-cache-{before,after}.json`, timed `dashboard.calls`
directly on the before side, skipping the old page's `st.cache_data` layer, so their CPU figures were not like for
like.) A user switch is the explorer's work for a new user (history + user view) after a pause longer than the
shared reader's idle time, so every switch reopens the database; an explanation is the Explain page's first
opening for the user's top item, then its two tabs.

Usage (from the repository root; the ML-100k database and the untrained stand-in model of bench/dashboard.py)::

    OMP_NUM_THREADS=1 nice -n 5 python bench/dashboard_ab.py --before /tmp/q20-before \\
        --db data/bench-dashboard-ml100k.duckdb --model data/cache/bench-models/ml100k-untrained-cd8f74bd

Prints a table and writes `bench/results/dashboard-ml100k-before-after.json`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Python puts bench/ first on the path, and bench/dashboard.py would shadow the `dashboard` package of either tree.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
SIDES = ("before", "after")


# ----------------------------------------------------------------------------------------------------------- child
def _child(args: argparse.Namespace) -> None:
    """Time one side in this process (imports come from PYTHONPATH: the side's tree) and print JSON on stdout."""
    import logging

    logging.disable(logging.WARNING)  # "no runtime found" notes of st.cache_* outside a server
    os.environ["INTERESTLENS_DB"] = str(args.db)  # the before side's `data.db_path()` reads it
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    import dashboard
    from dashboard.reader import IDLE_S, READER, file_stamp

    switch_users, explain_users, warm = args.switch.split(","), args.explain.split(","), args.warm.split(",")
    model_dir, db = Path(args.model), Path(args.db)
    if (Path(dashboard.__file__).parent / "cache").is_dir():  # after: the typed data layer
        from dashboard import cache

        ref, model = cache.DbRef(str(db), file_stamp(db)), cache.model_ref(model_dir)
        cache.loaded_model(model)
        history = lambda u: cache.user_history(ref, u)  # noqa: E731
        user_view = lambda u: cache.user_view(ref, model, u)  # noqa: E731
        top_item = lambda u: str(cache.recommend(ref, model, u, 10)["item_id"].iloc[0])  # noqa: E731
        tabs = {"open": cache.explain, "periods_tab": cache.periods, "deletion_tab": cache.deletion}
        tab = lambda name, u, i: tabs[name](ref, model, u, i)  # noqa: E731
        size = lambda out: len(out.positions)  # noqa: E731
    else:  # before: string dispatch through dashboard.data
        # imported by name: the module exists only in the before tree, so the bench-imports test must not scan it
        data = importlib.import_module("dashboard.data")

        data.load_model(model_dir)
        history = lambda u: data.query("user_history", u)  # noqa: E731
        user_view = lambda u: data.model_call("user_view", model_dir, u)  # noqa: E731
        top_item = lambda u: str(data.model_call("recommend", model_dir, u, 10)["item_id"].iloc[0])  # noqa: E731
        calls = {"open": "explain", "periods_tab": "periods", "deletion_tab": "deletion"}
        tab = lambda name, u, i: data.model_call(calls[name], model_dir, u, i)  # noqa: E731
        size = lambda out: len(out.explanation.positions)  # noqa: E731
    torch.set_num_threads(1)  # APP_TORCH_THREADS on both sides; said explicitly so a change cannot move it

    for u in warm:  # imports, analysers, shap's numba compilation: the app pays these once
        history(u)
        user_view(u)
        i = top_item(u)
        for name in ("open", "periods_tab", "deletion_tab"):
            tab(name, u, i)
    out: dict = {"tree": str(Path(dashboard.__file__).parents[1]), "torch_threads": torch.get_num_threads(),
                 "rss_after_warmup_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    sw: dict[str, list[float]] = {}
    loads = []
    for u in switch_users:
        time.sleep(IDLE_S + 0.3)  # an analyst's pause: the shared connection closes, the switch reopens it
        deadline = time.monotonic() + 30  # on a loaded machine the reader's idle timer can run late
        while READER.is_open and time.monotonic() < deadline:
            time.sleep(0.05)
        t_user, c_user = time.perf_counter(), time.process_time()
        for name, fn in (("history", history), ("user_view", user_view)):
            t0, c0 = time.perf_counter(), time.process_time()
            fn(u)
            sw.setdefault(f"{name}_ms", []).append((time.perf_counter() - t0) * 1000)
            sw.setdefault(f"{name}_cpu_ms", []).append((time.process_time() - c0) * 1000)
        sw.setdefault("total_ms", []).append((time.perf_counter() - t_user) * 1000)
        sw.setdefault("total_cpu_ms", []).append((time.process_time() - c_user) * 1000)
        loads.append(os.getloadavg()[0])
    out["switch_user"] = sw
    out["rss_after_switch_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ex: dict[str, list[float]] = {}
    for u in explain_users:
        i = top_item(u)  # outside the timing: the Explain page has the top-10 before it explains
        for name in ("open", "periods_tab", "deletion_tab"):
            t0, c0, k0 = time.perf_counter(), time.process_time(), _children_cpu_s()
            res = tab(name, u, i)
            ex.setdefault(f"{name}_ms", []).append((time.perf_counter() - t0) * 1000)
            ex.setdefault(f"{name}_cpu_ms", []).append((time.process_time() - c0) * 1000)
            # this process plus its explanation workers (the after side explains in a worker: its CPU is not this
            # process's; the before side has no children, so its tree CPU is its own)
            ex.setdefault(f"{name}_tree_cpu_ms", []).append(
                (time.process_time() - c0 + _children_cpu_s() - k0) * 1000)
            if name == "open":
                ex.setdefault("events_explained", []).append(float(size(res)))
        loads.append(os.getloadavg()[0])
    out["open_explanation"] = ex
    out["loads"] = loads
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print("@@RESULT@@" + json.dumps(out))


def _children_cpu_s() -> float:
    """User + system CPU seconds of this process's live children so far (the explanation workers)."""
    import psutil

    total = 0.0
    for child in psutil.Process().children(recursive=True):
        try:
            t = child.cpu_times()
        except psutil.NoSuchProcess:  # a worker that ended between the listing and the read
            continue
        total += t.user + t.system
    return total


# ------------------------------------------------------------------------------------------------------ orchestrator
def _users(db: Path, n: int, seed: int) -> list[str]:
    """`n` distinct users of `db`, a seeded sample (the same for both sides)."""
    import numpy as np

    from core.store import connect_read

    with connect_read(db) as con:
        users = [str(r[0]) for r in con.execute("SELECT DISTINCT user_id FROM events ORDER BY 1").fetchall()]
    return [str(u) for u in np.random.default_rng(seed).choice(users, size=min(n, len(users)), replace=False)]


def _run_side(tree: Path, args: argparse.Namespace, warm: list[str], switch: list[str], explain: list[str]) -> dict:
    """One fresh child process on `tree`; its figures, with its wall and CPU seconds as a whole."""
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--db", str(args.db.resolve()),
           "--model", str(args.model.resolve()), "--warm", ",".join(warm), "--switch", ",".join(switch),
           "--explain", ",".join(explain)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("@@RESULT@@")]
    if proc.returncode != 0 or not lines:
        sys.exit(f"the child on {tree} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    out = json.loads(lines[-1].removeprefix("@@RESULT@@"))
    if Path(out["tree"]).resolve() != tree.resolve():
        sys.exit(f"the child imported dashboard from {out['tree']}, not {tree}")
    out["process_wall_s"] = time.perf_counter() - t0
    out["process_cpu_s"] = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return out


def _samples(runs: list[dict], stage: str, key: str) -> list[float]:
    """One side's samples of `stage`/`key` over its rounds, in user order (open + both tabs summed for all_three)."""
    if key == "all_three_cpu_ms":
        parts = [_samples(runs, stage, f"{t}_cpu_ms") for t in ("open", "periods_tab", "deletion_tab")]
        return [sum(x) for x in zip(*parts, strict=True)]
    return [x for out in runs for x in out[stage][key]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--warm", default="", help=argparse.SUPPRESS)
    ap.add_argument("--switch", default="", help=argparse.SUPPRESS)
    ap.add_argument("--explain", default="", help=argparse.SUPPRESS)
    ap.add_argument("--before", type=Path, default=Path("/tmp/q20-before"), help="checkout of the older commit")
    ap.add_argument("--after", type=Path, default=ROOT, help="the newer tree (default: this one)")
    ap.add_argument("--db", type=Path, default=Path("data/bench-dashboard-ml100k.duckdb"))
    ap.add_argument("--model", type=Path, default=Path("data/cache/bench-models/ml100k-untrained-cd8f74bd"))
    ap.add_argument("--rounds", type=int, default=3, help="rounds; each runs one process per side, alternating")
    ap.add_argument("--users", type=int, default=30, help="user switches per side per round")
    ap.add_argument("--explanations", type=int, default=10, help="explanations per side per round")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tag", default="ml100k-before-after", help="results file bench/results/dashboard-<tag>.json")
    args = ap.parse_args()
    if args.child:
        _child(args)
        return

    sys.path.insert(0, str(ROOT))
    from bench.common import Results, percentiles

    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    commits = {s: subprocess.run(["git", "-C", str(t), "rev-parse", "--short", "HEAD"], capture_output=True,
                                 text=True, check=True).stdout.strip() for s, t in trees.items()}
    per = args.users + args.explanations
    users = _users(args.db, 2 + args.rounds * per, args.seed)
    warm = users[:2]
    results = Results("dashboard", args.tag, resume=False)
    results.set("setup", {
        "db": str(args.db), "model": str(args.model), "trained": False, "trees": {s: str(t) for s, t in trees.items()},
        "commits": commits, "rounds": args.rounds, "switches_per_round": args.users,
        "explanations_per_round": args.explanations, "load_average_before": os.getloadavg(),
        "note": "one fresh process per side per round, sides alternating; both through the pages' cached entry points",
    })
    runs: dict[str, list[dict]] = {s: [] for s in SIDES}
    for r in range(args.rounds):
        chunk = users[2 + r * per: 2 + (r + 1) * per]
        for side in (SIDES if r % 2 == 0 else SIDES[::-1]):
            out = _run_side(trees[side], args, warm, chunk[: args.users], chunk[args.users:])
            runs[side].append(out)
            print(f"round {r + 1} {side:6}: process {out['process_wall_s']:.0f} s wall, {out['process_cpu_s']:.0f} s "
                  f"CPU, peak RSS {out['peak_rss_mb']:.0f} MB, load {min(out['loads']):.1f}-{max(out['loads']):.1f}",
                  flush=True)

    summary: dict[str, dict] = {}
    for side in SIDES:
        merged: dict[str, dict[str, list[float]]] = {"switch_user": {}, "open_explanation": {}}
        for out in runs[side]:
            for stage in merged:
                for k, v in out[stage].items():
                    merged[stage].setdefault(k, []).extend(v)
        ex = merged["open_explanation"]
        for unit in ("ms", "cpu_ms", "tree_cpu_ms"):
            ex[f"all_three_{unit}"] = [sum(x) for x in zip(ex[f"open_{unit}"], ex[f"periods_tab_{unit}"],
                                                           ex[f"deletion_tab_{unit}"], strict=True)]
        loads = [x for out in runs[side] for x in out["loads"]]
        summary[side] = {
            **{stage: {k: percentiles(v) for k, v in figs.items()} for stage, figs in merged.items()},
            "peak_rss_mb": {"max": max(o["peak_rss_mb"] for o in runs[side]),
                            "per_process": [round(o["peak_rss_mb"], 1) for o in runs[side]],
                            "after_switches_per_process": [round(o["rss_after_switch_mb"], 1) for o in runs[side]],
                            "after_warmup_per_process": [round(o["rss_after_warmup_mb"], 1) for o in runs[side]]},
            "process_wall_s": [round(o["process_wall_s"], 1) for o in runs[side]],
            "process_cpu_s": [round(o["process_cpu_s"], 1) for o in runs[side]],
            "load_average_during": {"min": min(loads), "max": max(loads), "mean": sum(loads) / len(loads)},
        }
        results.stage(side, summary[side])
        results.set(f"samples_{side}", merged)  # raw, in user order: round r's users are the same on both sides
    # Paired by user (the same users on both sides): the share where after is cheaper, and the median difference.
    paired = {}
    for stage, key in (("switch_user", "total_cpu_ms"), ("switch_user", "user_view_cpu_ms"),
                       ("open_explanation", "open_cpu_ms"), ("open_explanation", "open_tree_cpu_ms"),
                       ("open_explanation", "all_three_cpu_ms")):
        diff = [a - b for a, b in zip(*(_samples(runs[s], stage, key) for s in ("after", "before")), strict=True)]
        paired[f"{stage}.{key}"] = {"median_after_minus_before_ms": float(sorted(diff)[len(diff) // 2]),
                                    "after_cheaper_share": sum(d < 0 for d in diff) / len(diff), "n": len(diff)}
    results.set("paired_cpu", paired)
    results.set("load_average_after", os.getloadavg())

    print(f"\ndashboard before ({commits['before']}) and after ({commits['after']}) on {args.db}; "
          f"{args.rounds} rounds x {args.users} switches, {args.explanations} explanations per side")
    print(f"{'figure (ms)':30} {'before':>9} {'after':>9}   {'before':>9} {'after':>9}")
    print(f"{'':30} {'wall p50':>9} {'wall p50':>9}   {'cpu p50':>9} {'cpu p50':>9}   (p95 on the next line)")
    for label, stage, key in [("user switch", "switch_user", "total"), ("  history", "switch_user", "history"),
                              ("  user view", "switch_user", "user_view"),
                              ("open an explanation", "open_explanation", "open"),
                              ("  open + both tabs", "open_explanation", "all_three")]:
        for q in ("p50", "p95"):
            w = [summary[s][stage][f"{key}_ms"][q] for s in SIDES]
            c = [summary[s][stage][f"{key}_cpu_ms"][q] for s in SIDES]
            print(f"{label + ' ' + q:30} {w[0]:9.1f} {w[1]:9.1f}   {c[0]:9.1f} {c[1]:9.1f}")
        if stage == "open_explanation":  # CPU of the process and its explanation workers together
            for q in ("p50", "p95"):
                t = [summary[s][stage][f"{key}_tree_cpu_ms"][q] for s in SIDES]
                print(f"{label + ' tree CPU ' + q:30} {'':9} {'':9}   {t[0]:9.1f} {t[1]:9.1f}")
    print(f"{'peak RSS (MB, max of processes)':30} {summary['before']['peak_rss_mb']['max']:9.0f} "
          f"{summary['after']['peak_rss_mb']['max']:9.0f}")
    for s in SIDES:
        ld = summary[s]["load_average_during"]
        print(f"load average during {s}: {ld['min']:.1f}-{ld['max']:.1f}")
    for name, p in paired.items():
        print(f"paired {name}: median after - before {p['median_after_minus_before_ms']:+.1f} ms, after cheaper for "
              f"{p['after_cheaper_share']:.0%} of {p['n']}")
    print(f"wrote {results.path}")


if __name__ == "__main__":
    main()
