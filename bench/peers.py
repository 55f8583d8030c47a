"""Side-by-side next-item benchmark: InterestLens against RecBole 1.2.1's SASRec and GRU4Rec.

    bench/peers/setup_venv.sh        # once: .venv-peers with RecBole 1.2.1
    python bench/peers.py --db data/ml100k.duckdb --json

Same sequences and split for everyone: the store's canonical order is exported to RecBole's atomic format with
strictly increasing per-user timestamps (the event's position), leave-one-out, the same maximum length. Every
model is scored on the full catalogue and ranked by InterestLens's protocol (items seen in the input excluded,
ties to the lower index), so the numbers are comparable. RecBole runs in `.venv-peers` (numpy<2) as a
subprocess; each model's result is saved as it finishes (`bench/results/peers-<size>.json`), so an interrupted
run resumes. Times are CPU seconds of each training process (one thread each by default), so other work on a
shared machine does not distort them; wall seconds are recorded beside. Ours runs with several seeds under the
same budget; its time to reach SASRec's test
NDCG@10 is read from the model validation would have selected at each epoch (test never steers training).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import Results  # noqa: E402
from core.evaluate import (  # noqa: E402
    evaluate_split,
    leave_one_out,
    markov_scorer,
    model_scorer,
    most_popular_scorer,
    summarize,
)
from core.evaluate.ranking import rank_batch  # noqa: E402
from core.model import ModelConfig  # noqa: E402
from core.sequences import build_vocab, load_sequences  # noqa: E402
from core.store import connect_read  # noqa: E402
from core.train import TrainConfig, train  # noqa: E402

PEERS = {"sasrec": "SASRec", "gru4rec": "GRU4Rec"}
KEYS = ("HR@10", "NDCG@10", "MRR")


def export_atomic(seqs, folder: Path, name: str) -> Path:
    """Write <folder>/<name>/<name>.inter: user, item, timestamp = the event's position in the user's sequence."""
    d = folder / name
    d.mkdir(parents=True, exist_ok=True)
    n = np.diff(seqs.offsets)
    pos = np.arange(len(seqs.items)) - np.repeat(seqs.offsets[:-1], n)
    users = np.repeat(seqs.user_ids.astype(str), n)
    with open(d / f"{name}.inter", "w", encoding="utf-8") as f:
        f.write("user_id:token\titem_id:token\ttimestamp:float\n")
        for u, i, t in zip(users, seqs.items, pos, strict=True):
            f.write(f"{u}\t{i}\t{t}\n")  # item token = our model index, so no mapping is needed back
    return d


def run_peer(key: str, data: Path, name: str, args, work: Path) -> dict:
    out = work / key
    env = {**os.environ, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1", "OMP_NUM_THREADS": str(args.threads)}
    cmd = [str(ROOT / ".venv-peers/bin/python"), str(ROOT / "bench/peers/recbole_run.py"), "--data", str(data),
           "--dataset", name, "--model", PEERS[key], "--max-len", str(args.max_len), "--budget", str(args.budget),
           "--threads", str(args.threads), "--out", str(out)]
    subprocess.run(cmd, check=True, env=env)
    return json.loads((out / "meta.json").read_text()) | {"scores_path": str(out / "scores.npy")}


def peer_metrics(meta: dict, seqs, split, n_items: int) -> dict:
    """Rank the peer's raw test scores with our protocol."""
    scores = np.load(meta["scores_path"])  # [U, n_recbole_items]
    cols = np.array([int(t) if t != "[PAD]" else 0 for t in meta["items"]])  # RecBole id -> our model index
    full = np.full((len(scores), n_items + 1), -np.inf, np.float32)
    full[:, cols[cols > 0]] = scores[:, cols > 0]
    rows = np.array([seqs.row(u) for u in meta["users"]])
    tgt = split.test[rows]
    ranks, top = rank_batch(torch.from_numpy(full), seqs, seqs.offsets[rows], tgt, seqs.items[tgt], 10)
    return summarize(ranks, top, n_items)


def run_ours(db: Path, seed: int, args, seqs, split, n_items: int, work: Path) -> dict:
    """Train with a time budget; keep the validation-selected model after each epoch to time the accuracy."""
    snaps: list[tuple[float, dict]] = []

    def on_epoch(rep) -> None:
        if rep.improved:
            snaps.append((rep.seconds, copy.deepcopy(rep.model.state_dict())))

    mcfg = ModelConfig(max_len=args.max_len)
    tcfg = TrainConfig(seed=seed, time_budget=args.budget, num_threads=args.threads, device="cpu", clock="process")
    t0 = time.perf_counter()
    res = train(db, work / f"ours-{seed}", mcfg, tcfg, on_epoch)  # seeds may run in parallel: own folders
    wall = time.perf_counter() - t0
    from core.checkpoint import load_checkpoint

    loaded = load_checkpoint(work / f"ours-{seed}")
    curve = []
    for seconds, state in snaps:  # measurement only, after training: test never steered anything
        loaded.model.load_state_dict(state)
        m, _ = evaluate_split(model_scorer(loaded.model.eval()), seqs, split, "test", args.max_len, n_items)
        curve.append({"seconds": seconds, "NDCG@10": m["NDCG@10"]})
    return {**{k: res.test[k] for k in res.test}, "train_seconds": res.seconds, "wall_seconds": wall, "best_epoch": res.best_epoch,
            "epochs": res.epochs, "stopped": res.stopped, "curve": curve}


def time_to(curve: list[dict], target: float) -> float | None:
    return next((c["seconds"] for c in curve if c["NDCG@10"] >= target), None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", required=True, type=Path)
    ap.add_argument("--size", default=None, help="results name (default: the database file's stem)")
    ap.add_argument("--budget", type=float, default=2400.0,
                    help="training CPU seconds per model (default: 20 minutes of this 2-core CPU)")
    ap.add_argument("--max-len", type=int, default=50, help="maximum history length for every model")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--peers", default="sasrec,gru4rec")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads per model (the same for everyone)")
    ap.add_argument("--part", choices=["all", "peers", "ours"], default="all",
                    help="run only the peers or only ours (two processes may run side by side; each part has its "
                    "own results file and the table merges them)")
    ap.add_argument("--suffix", default="", help="ours part: results file suffix, so seeds can run in parallel")
    ap.add_argument("--fresh", action="store_true", help="ignore saved results")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    size = args.size or args.db.stem
    results = Results("peers", size if args.part != "ours" else f"{size}-ours{args.suffix}", resume=not args.fresh)
    results.set("settings", {"budget": args.budget, "max_len": args.max_len, "threads": args.threads,
                             "clock": "process CPU seconds"})
    work = ROOT / "data/cache/peers" / size  # git ignores data/cache
    work.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    with connect_read(args.db) as con:
        vocab = build_vocab(con)
        seqs = load_sequences(con, vocab)
    split = leave_one_out(seqs)
    n = vocab.n_items
    data = export_atomic(seqs, work / "atomic", size).parent if args.part != "ours" else None
    for name, scorer in (("most_popular", most_popular_scorer), ("markov", markov_scorer)):
        if not results.done(name) and args.part != "ours":
            results.stage(name, evaluate_split(scorer(seqs, split, n), seqs, split, "test", args.max_len, n)[0])
    for key in [p for p in args.peers.split(",") if p and args.part != "ours"]:
        if not results.done(key):
            meta = run_peer(key, data, size, args, work)
            m = peer_metrics(meta, seqs, split, n)
            results.stage(key, {**m, "train_seconds": meta["train_seconds"], "wall_seconds": meta["wall_seconds"],
                                "best_epoch": meta["best_epoch"],
                                "seconds_at_best_epoch": meta["seconds_at_best_epoch"], "stopped": meta["stopped"],
                                "epochs": meta["epochs"], "config": meta["config"]})
    for seed in [int(s) for s in args.seeds.split(",") if s and args.part != "peers"]:
        if not results.done(f"ours_seed{seed}"):
            t = time.perf_counter()
            results.stage(f"ours_seed{seed}", run_ours(args.db, seed, args, seqs, split, n, work))
            print(f"ours seed {seed}: {time.perf_counter() - t:.0f} s", file=sys.stderr)
    merged = Results("peers", size)  # re-read: the other part may have saved since
    for f in sorted(merged.path.parent.glob(f"peers-{size}-ours*.json")):
        merged.data["stages"].update(json.loads(f.read_text()).get("stages", {}))
    report = summarize_results(merged)
    results.set("report", report)
    print_table(report)
    if args.json:
        print(json.dumps(report))


def summarize_results(results: Results) -> dict:
    st = results.data["stages"]
    sas = st.get("sasrec")
    models: dict = {}
    for key in ("sasrec", "gru4rec", "most_popular", "markov"):
        if key in st:
            s = st[key]
            models[key] = {k: s[k] for k in KEYS} | {"train_seconds": s.get("train_seconds"),
                                                     "seconds_to_peer_ndcg": s.get("seconds_at_best_epoch")}
    runs = [v for k, v in sorted(st.items()) if k.startswith("ours_seed")]
    if runs:
        ours = {}
        for k in KEYS:
            xs = [r[k] for r in runs]
            ours[k] = statistics.fmean(xs)
            ours[f"{k}_std"] = statistics.stdev(xs) if len(xs) > 1 else 0.0
            ours[f"{k}_runs"] = xs
        ours["train_seconds"] = statistics.fmean(r["train_seconds"] for r in runs)
        reach = [time_to(r["curve"], sas["NDCG@10"]) for r in runs] if sas else []
        ours["seconds_to_peer_ndcg_runs"] = reach
        ours["seconds_to_peer_ndcg"] = (statistics.fmean(reach) if reach and all(x is not None for x in reach)
                                        else None)
        models["interestlens"] = ours
    ratios: dict = {}
    peers = [models[p]["NDCG@10"] for p in ("sasrec", "gru4rec") if p in models]
    if "interestlens" in models and peers:
        ratios["ndcg10_vs_best_peer"] = models["interestlens"]["NDCG@10"] / max(peers)
    if "interestlens" in models and sas and models["interestlens"]["seconds_to_peer_ndcg"] is not None:
        ratios["time_to_sasrec_ndcg_vs_sasrec_train"] = models["interestlens"]["seconds_to_peer_ndcg"] / sas["train_seconds"]
    return {"models": models, "ratios": ratios, "settings": results.data.get("settings", {})}


def print_table(report: dict) -> None:
    print(f"{'model':<14}{'HR@10':>10}{'NDCG@10':>10}{'MRR':>10}{'train s':>10}{'s to SASRec':>13}", file=sys.stderr)
    for name, m in report["models"].items():
        def f(x, spec=".4f"):
            return format(x, spec) if isinstance(x, float | int) else "-"
        print(f"{name:<14}{f(m['HR@10']):>10}{f(m['NDCG@10']):>10}{f(m['MRR']):>10}{f(m['train_seconds'], '.0f'):>10}"
              f"{f(m['seconds_to_peer_ndcg'], '.0f'):>13}", file=sys.stderr)
    print("ratios: " + json.dumps(report["ratios"]), file=sys.stderr)


if __name__ == "__main__":
    main()
