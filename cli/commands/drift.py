"""`interestlens drift`: every user's drift summary, written beside the model; shows the users who changed most
(ranked by the size of their largest change point, which does not grow with the history's length)."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import typer

from cli.commands.trajectory import HalfLifeOption, WindowOption
from cli.common import DbOption, JsonOption, ModelOption, emit
from core.checkpoint import load_checkpoint, model_for
from core.trajectory import TrajectoryConfig, build_drift


def drift(
    db: Path | None = DbOption,
    model: Path | None = ModelOption,
    top: int = typer.Option(20, "--top", min=1, help="How many users to show, largest change first."),
    window: int = WindowOption,
    half_life: float = HalfLifeOption,
    as_json: bool = JsonOption,
) -> None:
    """Summarise every user's interest drift into drift.parquet beside the model, and list the top N."""
    loaded = load_checkpoint(model_for(db, model))
    result = build_drift(db, loaded, TrajectoryConfig(window=window, half_life=half_life))
    users = [_user(row) for row in result.table.head(top).itertuples(index=False)]
    if not as_json:
        sys.stderr.write(f"wrote {result.path} ({result.users:,} users, {result.events:,} events, {result.seconds:.1f} s)\n")
    emit({"users": users}, as_json, _human(users))


def _user(row) -> dict:
    times = [pd.Timestamp(t).to_pydatetime() for t in row.change_times]
    return {
        "user_id": str(row.user_id),
        "n_events": int(row.n_events),
        "total_drift": round(float(row.total_drift), 6),
        "max_drift": round(float(row.max_drift), 6),
        "change_points": [
            {
                "step": int(s), "time": t, "before": list(b), "after": list(a),
                "divergence": round(float(d), 6), "observed_divergence": round(float(o), 6),
            }
            for s, t, b, a, d, o in zip(
                row.change_steps, times, row.before, row.after, row.change_divergence, row.change_observed_divergence,
                strict=True,
            )
        ],
        "dominant_first": str(row.dominant_first),
        "dominant_last": str(row.dominant_last),
        "largest_change": round(float(row.largest_change), 6),
        "shift": str(row.shift),
        "mostly_bulk": bool(row.mostly_bulk),
        "bulk_share": round(float(row.bulk_share), 6),
    }


def _human(users: list[dict]) -> str:
    lines = [f"{'user':14}  {'events':>6}  {'change':>6}  changes  largest change"]
    for u in users:
        bulk = "  (mostly bulk entries)" if u["mostly_bulk"] else ""
        lines.append(
            f"{u['user_id'][:14]:14}  {u['n_events']:>6}  {u['largest_change']:6.3f}  {len(u['change_points']):>7}  "
            f"{u['shift'] or '-'}{bulk}"
        )
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    app.command("drift")(drift)
