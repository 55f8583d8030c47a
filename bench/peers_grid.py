"""The peers' grid: which runs exist, which converged, and which grid point validation picks.

One rule for `bench/peers.py` (whether seeds 1 and 2 may start) and `bench/peers_report.py` (the table), so the two
can never disagree. A run is *converged* only when it stopped by its own early stopping (patience on validation);
a run a deadline's STOP file cut short, one that hit the epoch cap, and one still running or killed (a folder with
`progress.json` but no saved result) are listed with their status but never picked and never called converged.
The pick is the converged seed-0 point with the best validation NDCG@10 under the protocol (test is never read);
it is *final* once every grid point has converged, *provisional* before.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = ["GRID", "GridRun", "Pick", "grid_runs", "pick", "run_key", "status"]

GRID = [(d, lr) for d in (0.2, 0.5) for lr in (1e-3, 2e-3)]  # (dropout, lr), index = --grid-points
PROTOCOLS = ("exclude_seen", "all_items")
_KEY = re.compile(r"^(?P<model>.+)_d(?P<d>[0-9.]+)_lr(?P<lr>[0-9.e-]+)_s(?P<seed>[0-9]+)$")

Status = Literal["converged", "stopped", "capped", "partial"]


def run_key(model: str, d: float, lr: float, seed: int) -> str:
    """The results-stage key and cache folder name of one peer run, e.g. "sasrec_d0.2_lr0.002_s0"."""
    return f"{model}_d{d}_lr{lr:g}_s{seed}"


def status(run: dict) -> Status:
    """How a saved run ended. Runs saved before the `stopped` field existed stopped by patience (the only way out
    then), so a missing field reads as converged."""
    return {"early_stopping": "converged", "stop_file": "stopped", "max_epochs": "capped"}[
        run.get("stopped", "early_stopping")]


@dataclass(frozen=True)
class GridRun:
    """One peer run as the report lists it (finished or not)."""

    model: str  # peer name, e.g. "sasrec" or "sasrec-gBCE32"
    dropout: float  # grid dropout
    lr: float  # grid learning rate
    seed: int  # 0 = the grid search; 1, 2 = extra seeds of the picked point
    status: Status  # converged / stopped (STOP file) / capped (epoch cap) / partial (running or killed)
    epochs: int  # epochs trained so far
    train_seconds: float  # CPU s of the run so far (training + per-epoch validation)
    valid_ndcg10: dict[str, float]  # per protocol: best validation NDCG@10 so far
    best_epoch: dict[str, int]  # per protocol: the epoch of that best validation


@dataclass(frozen=True)
class Pick:
    """The grid point validation picks for one peer under one protocol."""

    dropout: float  # picked dropout
    lr: float  # picked learning rate
    valid_ndcg10: float  # its seed-0 validation NDCG@10 under the protocol
    final: bool  # True once every GRID point converged; False = best of those converged so far
    converged_points: int  # how many GRID points (seed 0) have converged


def _from_stage(model: str, run: dict) -> GridRun:
    return GridRun(model, run["dropout"], run["lr"], run["seed"], status(run), run["epochs"], run["train_seconds"],
                   {p: run["test"][p]["valid_ndcg10"] for p in PROTOCOLS},
                   {p: run["test"][p]["best_epoch"] for p in PROTOCOLS})


def _from_progress(model: str, d: float, lr: float, seed: int, history: list[dict]) -> GridRun:
    best = {p: max(history, key=lambda h: h[f"valid_ndcg10_{p}"]) for p in PROTOCOLS}
    return GridRun(model, d, lr, seed, "partial", len(history), history[-1]["seconds"],
                   {p: best[p][f"valid_ndcg10_{p}"] for p in PROTOCOLS}, {p: best[p]["epoch"] for p in PROTOCOLS})


def grid_runs(stages: dict, work: Path | None) -> dict[str, list[GridRun]]:
    """Every peer run per model: the saved ones (results stages with a `dropout`), plus, from `work`, folders with
    a `progress.json` and no saved result (a run in progress, or one killed before it finished). Sorted by seed,
    then grid order."""
    out: dict[str, list[GridRun]] = {}
    for run in stages.values():
        if isinstance(run, dict) and "dropout" in run and "model" in run:
            out.setdefault(run["model"], []).append(_from_stage(run["model"], run))
    if work is not None and work.is_dir():
        for folder in sorted(work.iterdir()):
            m = _KEY.match(folder.name)
            if m is None or folder.name in stages or not (folder / "progress.json").exists():
                continue
            history = json.loads((folder / "progress.json").read_text())
            if history:
                run = _from_progress(m["model"], float(m["d"]), float(m["lr"]), int(m["seed"]), history)
                out.setdefault(run.model, []).append(run)
    order = {point: i for i, point in enumerate(GRID)}
    for runs in out.values():
        runs.sort(key=lambda r: (r.seed, order.get((r.dropout, r.lr), len(GRID)), r.dropout, r.lr))
    return out


def pick(runs: list[GridRun], protocol: str) -> Pick | None:
    """The converged seed-0 GRID point with the best validation NDCG@10 under `protocol` (ties: the earlier GRID
    point); None while no point has converged."""
    done = {(r.dropout, r.lr): r for r in runs if r.seed == 0 and r.status == "converged" and (r.dropout, r.lr) in GRID}
    if not done:
        return None
    best = max((done[pt] for pt in GRID if pt in done), key=lambda r: r.valid_ndcg10[protocol])  # max keeps the first
    return Pick(best.dropout, best.lr, best.valid_ndcg10[protocol], len(done) == len(GRID), len(done))
