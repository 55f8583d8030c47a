"""`interestlens evaluate`: full-ranking test metrics of a model, with most-popular and Markov baselines."""

from __future__ import annotations

from pathlib import Path

import typer

from core.checkpoint import model_for
from cli.common import DbOption, JsonOption, ModelOption, SeenOption, emit
from core.evaluate import METRIC_KEYS, evaluate_model

__all__ = ["evaluate_cmd", "register"]


def evaluate_cmd(
    db: Path | None = DbOption, model: Path | None = ModelOption, seen: str = SeenOption, as_json: bool = JsonOption
) -> None:
    """Rank each user's held-out test item in the whole catalogue under both protocols (exclude_seen, all_items);
    the headline follows --seen; writes eval_users.parquet."""
    result = evaluate_model(db, model_for(db, model), seen_rule=seen)
    rows = [("model", result.metrics), *((k, v) for k, v in result.baselines.items())]
    lines = [f"{'':<14}" + "".join(f"{k:>12}" for k in METRIC_KEYS)]
    lines += [f"{name:<14}" + "".join(f"{m[k]:>12.4f}" for k in METRIC_KEYS) for name, m in rows]
    lines.append(f"{result.users:,} users evaluated ({result.split} split); per-user ranks in {result.users_path}")
    other = next((p for p in result.protocols if p != result.protocol), None)
    if other is not None:
        o = result.protocols[other]
        lines.append(f"protocol: {result.protocol} ({result.seen.reason if result.seen else ''}); under {other}: "
                     f"model NDCG@10 {o.metrics['NDCG@10']:.4f}, HR@10 {o.metrics['HR@10']:.4f}")
    if result.unknown_targets:
        lines.append(f"{result.unknown_targets:,} test items are unknown to the model (added after training); skipped")
    emit(result.to_dict(), as_json, "\n".join(lines))


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate_cmd)
