"""`interestlens trajectory`: how one user's interest evolved, step by step."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer

from core.checkpoint import load_checkpoint, model_for
from cli.common import DbOption, JsonOption, ModelOption, emit, iso_utc
from core.store import connect_read
from core.trajectory import Trajectory, TrajectoryAnalyzer, TrajectoryConfig

DISPLAY_CATEGORIES = 20  # the text view folds past this many categories

WindowOption = typer.Option(5, "--window", min=1, help="Drift compares each step with the one W steps earlier.")
HalfLifeOption = typer.Option(10.0, "--half-life", help="Baseline half-life, in events.")


def trajectory(
    user: str = typer.Option(..., "--user", help="User id."),
    db: Path | None = DbOption,
    model: Path | None = ModelOption,
    window: int = WindowOption,
    half_life: float = HalfLifeOption,
    top_categories: int | None = typer.Option(
        None, "--top-categories", min=1, help="Keep the N categories of most interest and fold the rest into 'other'."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Show one user's interest trajectory: per-step interest, baseline, gate, drift and change points."""
    loaded = load_checkpoint(model_for(db, model))
    analyzer = TrajectoryAnalyzer(loaded, TrajectoryConfig(window=window, half_life=half_life))
    with connect_read(db) as con:
        traj = analyzer.user(con, user)
    if top_categories is not None:
        traj = traj.fold(top_categories)
    if as_json:
        emit(traj.to_dict(), True)
        return
    shown = traj if len(traj.categories) <= DISPLAY_CATEGORIES + 1 else traj.fold(DISPLAY_CATEGORIES)
    emit({}, False, _human(shown))


def _human(traj: Trajectory) -> str:
    s = traj.summary()
    lines = [
        f"user {traj.user_id}: {len(traj)} events, total drift {s.total_drift:.3f} bits, "
        f"{len(s.change_points)} change point(s)",
        traj.reading(),
    ]
    for cp in s.change_points:
        when = iso_utc(cp.time.astype(object)) if cp.time is not None else "?"
        before = ", ".join(f"{n} {v:.0%}" for n, v in cp.before)
        after = ", ".join(f"{n} {v:.0%}" for n, v in cp.after)
        lines.append(f"  step {cp.step} ({when}): {before}  ->  {after}  (events {cp.observed_divergence:.2f} bits apart)")
    lines.append(f"{'step':>5}  {'time':20}  {'item':12}  {'top interest':24}  {'baseline top':24}  gate   drift")
    cps = set(traj.change_points)
    for k, row in enumerate(traj.steps.itertuples(index=False)):
        top = int(np.argmax(traj.distribution[k]))
        base = int(np.argmax(traj.baseline[k]))
        gate = "  -  " if np.isnan(traj.gate[k]) else f"{traj.gate[k]:.2f}"
        mark = "  <- change" if k in cps else ""
        lines.append(
            f"{k:>5}  {iso_utc(row.time.to_pydatetime()):20}  {str(row.item)[:12]:12}  "
            f"{traj.categories[top][:18]:18} {traj.distribution[k, top]:4.0%}  "
            f"{traj.categories[base][:18]:18} {traj.baseline[k, base]:4.0%}  {gate}  {traj.drift[k]:.3f}{mark}"
        )
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    app.command("trajectory")(trajectory)
