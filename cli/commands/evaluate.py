"""`interestlens evaluate`: full-ranking test metrics of a model, with most-popular and Markov baselines."""

from __future__ import annotations

from pathlib import Path

import typer

from cli.common import DbOption, JsonOption, ModelOption, emit
from core.checkpoint import model_for
from core.evaluate import METRIC_KEYS, evaluate_model

__all__ = ["evaluate_cmd", "register"]


def evaluate_cmd(db: Path | None = DbOption, model: Path | None = ModelOption, as_json: bool = JsonOption) -> None:
    """Rank each user's held-out test item in the whole catalogue (seen items excluded); writes eval_users.parquet."""
    from core.social.context import social_context

    result = evaluate_model(db, model_for(db, model), context=social_context)
    rows = [("model", result.metrics), *((k, v) for k, v in result.baselines.items())]
    lines = [f"{'':<14}" + "".join(f"{k:>12}" for k in METRIC_KEYS)]
    lines += [f"{name:<14}" + "".join(f"{m[k]:>12.4f}" for k in METRIC_KEYS) for name, m in rows]
    lines.append(f"{result.users:,} users evaluated ({result.split} split); per-user ranks in {result.users_path}")
    if result.unknown_targets:
        lines.append(f"{result.unknown_targets:,} test items are unknown to the model (added after training); skipped")
    emit(result.to_dict(), as_json, "\n".join(lines))


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate_cmd)
