"""Side-by-side next-item benchmark, both ranking protocols: InterestLens against converged, tuned peers.

    python bench/peers.py --db data/toys.duckdb --part ours          # `interestlens train` defaults, 3 seeds
    python bench/peers.py --db data/toys.duckdb --part seq           # RecTools SASRec / BERT4Rec (own venv)
    python bench/peers.py --db data/toys.duckdb --part seq --seq-models sasrec --seq-loss gBCE --n-negatives 256
                                                                     # the same with a sampled loss (large catalogues)
    python bench/peers.py --db data/toys.duckdb --part recbole       # RecBole 1.2.1 SASRec / GRU4Rec (own venv)
    python bench/peers.py --db data/toys.duckdb --part report        # the table from whatever has finished

Same sequences and leave-one-out split for everyone (the store's canonical order). Every model is ranked on the
full catalogue under both protocols (`exclude_seen`, `all_items`; ties pessimistic, core.evaluate.ranking), and
each protocol's figure comes from the epoch (and grid point) that protocol's validation picked. Peers run to their
own early stopping (patience 10, no CPU cap) over a grid dropout {0.2, 0.5} x lr {1e-3, 2e-3} picked on validation
(seed 0), then the picked point for seeds 1 and 2. Ours gets no grid: its headline rows use the plain
`interestlens train` defaults (the rule of core.train.defaults), which is at most the peers' budget.
Everything is resumable: each finished run is saved (`bench/results/accuracy-<size>.json`, per-run folders under
`data/cache/peers/<size>/`), and a peer run cut by a STOP file or killed goes on from its last finished epoch
(`touch data/cache/peers/<size>/STOP` ends every run of the dataset after its current epoch, for a deadline), so the
command can be re-run until all is done. Times are CPU seconds of each training
process (one thread each), so other work on a shared machine does not distort them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import Results  # noqa: E402
from bench.peers_grid import GRID, grid_runs, pick, run_key  # noqa: E402
from core.evaluate import (  # noqa: E402  # noqa: E402
    PROTOCOLS,
    evaluate_split_protocols,
    leave_one_out,
    markov_scorer,
    most_popular_scorer,
    summarize,
)
from core.sequences import build_vocab, load_sequences  # noqa: E402
from core.store import connect_read  # noqa: E402

RECTOOLS_PY = os.environ.get("RECTOOLS_PYTHON", "/work/venv-rectools/bin/python")
RECBOLE_PY = os.environ.get("RECBOLE_PYTHON", str(ROOT / ".venv-peers/bin/python"))


def peer_window(seqs) -> int:
    """The per-sequence peers' window: they train on each user's last `session_max_len` events only, so a long-
    history log gets a longer one (95th percentile of history lengths, between 50 and 200)."""
    return int(min(200, max(50, np.quantile(np.diff(seqs.offsets), 0.95))))


def run_baselines(results: Results, seqs, split, n: int) -> None:
    for name, scorer in (("most_popular", most_popular_scorer), ("markov", markov_scorer)):
        if not results.done(name):
            out = evaluate_split_protocols(scorer(seqs, split, n), seqs, split, "test", 50, n)
            results.stage(name, {"test": {p: out[p][0] for p in PROTOCOLS}})


def run_ours_part(results: Results, args, seqs, split, n: int, work: Path) -> None:
    from bench.peers_ours import run_ours
    from core.train.defaults import defaults_for_db

    mcfg, tcfg, profile = defaults_for_db(args.db)
    if args.max_epochs:  # a cap for a deadline: the run then stops at it rather than by early stopping (recorded)
        tcfg = replace(tcfg, epochs=args.max_epochs)
    results.set("ours_defaults", {"model": mcfg.to_dict(), "patience": tcfg.patience, "profile": profile.to_dict()})
    for seed in [int(s) for s in args.seeds.split(",") if s]:
        prev = results.get(f"ours_seed{seed}")
        # a run saved under other defaults (the rule changed since) is redone, never reported as today's; so is
        # one saved under another epoch cap (a capped run is not an early-stopped one, and vice versa)
        was = prev.get("train_config", {}) if prev is not None else {}
        stale = prev is not None and (prev.get("model_config") != mcfg.to_dict() or was.get("patience") != tcfg.patience
                                      or was.get("lr_decay", 1.0) != tcfg.lr_decay or was.get("epochs") != tcfg.epochs)
        if prev is None or stale:
            fig = run_ours(args.db, seed, work, seqs, split, n, (mcfg, tcfg))
            results.stage(f"ours_seed{seed}", {**fig, "load1_at_finish": os.getloadavg()[0]})
            print(f"ours seed {seed} done", file=sys.stderr)


def run_seq_part(results: Results, args, seqs, n: int, work: Path) -> None:
    """RecTools peers: the grid on seed 0, then the validation-picked point (per protocol) for the other seeds."""
    data = work / "seq"
    data.mkdir(parents=True, exist_ok=True)
    if not (data / "seq.npz").exists():
        np.savez(data / "seq.npz", offsets=seqs.offsets, items=seqs.items, n_items=n)
    window = peer_window(seqs)
    points = [GRID[int(i)] for i in args.grid_points.split(",") if i] if args.grid_points else GRID
    loss = (args.seq_loss, args.n_negatives)
    for base in [m for m in args.seq_models.split(",") if m]:
        model = seq_name(base, *loss)
        for d, lr in points:
            if _stop_requested(work / run_key(model, d, lr, 0)):
                return
            _seq_run(results, base, loss, d, lr, 0, window, data, work, n)
        picked = {p: _pick(results, model, p) for p in PROTOCOLS}
        for seed in [int(s) for s in args.seeds.split(",") if s and int(s) != 0]:
            for d, lr in {picked[p] for p in PROTOCOLS if picked[p]}:
                if _stop_requested(work / run_key(model, d, lr, seed)):
                    return
                _seq_run(results, base, loss, d, lr, seed, window, data, work, n)


def _stop_requested(out: Path) -> bool:
    """A deadline stop: `STOP` in the run's folder (that run only) or in the dataset's cache folder (everything:
    the running peer ends after its current epoch and no further run starts)."""
    return (out / "STOP").exists() or (out.parent / "STOP").exists()


def seq_name(base: str, loss: str, n_negatives: int) -> str:
    """A RecTools peer's name: the architecture, plus the loss when it is not the full softmax (a sampled loss is
    another peer, with its own grid and seeds), e.g. "sasrec", "sasrec-gBCE256", "sasrec-BCE1"."""
    return base if loss == "softmax" else f"{base}-{loss}{n_negatives}"


def _seq_run(results: Results, base: str, loss: tuple[str, int], d: float, lr: float, seed: int, window: int,
             data: Path, work: Path, n: int) -> None:
    model = seq_name(base, *loss)
    key = run_key(model, d, lr, seed)
    out = work / key
    prev = results.get(key)
    if prev is not None:
        # a run a deadline cut short (STOP file) goes on from its last epoch (seq_run's resume.npz) once the STOP
        # file is gone
        if prev.get("stopped") != "stop_file" or _stop_requested(out):
            return
        (out / "result.json").unlink(missing_ok=True)
    cmd = [RECTOOLS_PY, str(ROOT / "bench/peers/seq_run.py"), "--data", str(data), "--model", base, "--dropout",
           str(d), "--lr", str(lr), "--seed", str(seed), "--max-len", str(window), "--loss", loss[0],
           "--n-negatives", str(loss[1]), "--out", str(out)]
    subprocess.run(cmd, check=True, env={**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    r = json.loads((out / "result.json").read_text())
    test = {p: {**summarize(np.array(t["ranks"]), np.array(t["top"]), n),
                **{k: t[k] for k in ("best_epoch", "valid_ndcg10", "seconds_at_best_epoch")}}
            for p, t in r["test"].items()}
    results.stage(key, {"model": model, "dropout": d, "lr": lr, "seed": seed, "max_len": window, "test": test,
                        "loss": loss[0], "n_negatives": loss[1], "history": r["history"],
                        "stopped": r.get("stopped", "early_stopping"), "resumed_at": r.get("resumed_at", []),
                        "train_seconds": r["train_seconds"], "wall_seconds": r["wall_seconds"], "epochs": r["epochs"],
                        "load1_at_finish": os.getloadavg()[0]})
    print(f"{key} done", file=sys.stderr)


def _pick(results: Results, model: str, protocol: str) -> tuple[float, float] | None:
    """The grid point seed-0 validation picks under `protocol` (bench.peers_grid.pick), or None until every grid
    point has converged: extra seeds go only to a final pick."""
    best = pick(grid_runs(results.data["stages"], None).get(model, []), protocol)
    return (best.dropout, best.lr) if best is not None and best.final else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", required=True, type=Path)
    ap.add_argument("--size", default=None, help="results name (default: the database file's stem)")
    ap.add_argument("--part", choices=["ours", "seq", "recbole", "report"], default="report")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--max-epochs", type=int, default=0, help="ours: stop after this many epochs (0 = the default "
                    "200, i.e. early stopping decides); the result records the stop reason")
    ap.add_argument("--seq-models", default="sasrec,bert4rec")
    ap.add_argument("--seq-loss", default="softmax", choices=["softmax", "BCE", "gBCE", "sampled_softmax"],
                    help="seq: RecTools' training loss (softmax = full catalogue; the others sample --n-negatives)")
    ap.add_argument("--n-negatives", type=int, default=1, help="seq: sampled negatives per position")
    ap.add_argument("--grid-points", default="", help="seq/recbole: only these grid indices (0-3) for seed 0, so "
                    "several datasets can advance point by point; seeds 1 and 2 follow once the grid is complete")
    ap.add_argument("--recbole-models", default="sasrec,gru4rec")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--markdown", action="store_true", help="print the tables as Markdown (docs/accuracy-peers.md)")
    args = ap.parse_args()
    size = args.size or args.db.stem
    results = Results("accuracy", size)
    work = ROOT / "data/cache/peers" / size  # git ignores data/cache
    work.mkdir(parents=True, exist_ok=True)
    import torch

    torch.set_num_threads(1)
    with connect_read(args.db) as con:
        vocab = build_vocab(con)
        seqs = load_sequences(con, vocab)
    split = leave_one_out(seqs)
    n = vocab.n_items
    run_baselines(results, seqs, split, n)
    if args.part == "ours":
        run_ours_part(results, args, seqs, split, n, work)
    elif args.part == "seq":
        run_seq_part(results, args, seqs, n, work)
    elif args.part == "recbole":
        from bench.peers_recbole import run_recbole_part

        run_recbole_part(results, args, seqs, split, n, work, GRID, RECBOLE_PY)
    from bench.peers_report import markdown, print_table, summarize_results

    report = summarize_results(Results("accuracy", size), seqs, split, n, work)
    results.set("report", report)
    print_table(report)
    if args.json:
        print(json.dumps(report))
    if args.markdown:
        print(markdown(report, size, os.getloadavg()[0]))


if __name__ == "__main__":
    main()
