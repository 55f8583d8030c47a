"""`interestlens trajectory`: how one user's interest evolved, step by step."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer

from cli.common import DbOption, JsonOption, ModelOption, emit, iso_utc
from core.checkpoint import load_checkpoint, model_for
from core.errors import UserInputError
from core.store import connect_read
from core.trajectory import (
    GRAINS,
    TOP_CATEGORIES,
    GridTrajectory,
    Trajectory,
    TrajectoryAnalyzer,
    TrajectoryConfig,
    grid_view,
)

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
    grain: str = typer.Option(
        "auto", "--grain", help="Time grid of the 'grid' view: auto (from the history's span), event, session, day, week or month.",
    ),
    as_json: bool = JsonOption,
) -> None:
    """Show one user's interest trajectory: per-step interest, baseline, gate, drift and change points, and the
    same on a time grid (sessions, days, weeks or months) with the drift and changes found between sessions."""
    if grain not in ("auto", *GRAINS):
        raise UserInputError(f"Unknown --grain {grain!r}; expected one of auto, {', '.join(GRAINS)}.")
    loaded = load_checkpoint(model_for(db, model))
    analyzer = TrajectoryAnalyzer(loaded, TrajectoryConfig(window=window, half_life=half_life))
    social = None
    with connect_read(db) as con:
        traj = analyzer.user(con, user)
        if loaded.model is not None and loaded.model.social is not None:  # a model trained with friends: the social share and influencers too
            from core.social.evidence import user_social_evidence

            social = user_social_evidence(con, loaded, user)
    grid = grid_view(traj, grain, top_n=top_categories or TOP_CATEGORIES)
    if top_categories is not None:
        traj = traj.fold(top_categories)
    if as_json:
        emit({**traj.to_dict(), "grid": grid.to_dict(), **(social.to_dict() if social is not None else {})}, True)
        return
    shown = traj if len(traj.categories) <= DISPLAY_CATEGORIES + 1 else traj.fold(DISPLAY_CATEGORIES)
    extra = ""
    if social is not None:
        top = sorted(zip(social.friends, social.influence, strict=True), key=lambda x: -x[1])[:3]
        extra = (f"\nsocial share: mean {social.social_share.mean():.1%}, last step {social.social_share[-1]:.1%}; "
                 "most influential friends: " + ", ".join(f"{f} {v:.1%}" for f, v in top))  # fmt: skip
    emit({}, False, _human(shown, grid) + extra)


def _grid_lines(grid: GridTrajectory) -> list[str]:
    lines = [f"time grid: {grid.grain} ({len(grid)} points; auto picks {grid.auto_grain})"]
    if grid.bulk.mostly_bulk:
        lines.append(grid.bulk.sentence())
    for c in grid.changes:
        lines.append(f"  change at step {c.step}: {c.words} (drift {c.size:.2f} bits)")
    return lines


def _human(traj: Trajectory, grid: GridTrajectory) -> str:
    s = traj.summary()
    lines = [
        f"user {traj.user_id}: {len(traj)} events, total drift {s.total_drift:.3f} bits, "
        f"{len(s.change_points)} change point(s)",
        traj.reading(),
        *_grid_lines(grid),
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
