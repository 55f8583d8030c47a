"""`interestlens evaluate`: full-ranking test metrics of a model, with most-popular and Markov baselines."""

from __future__ import annotations

from pathlib import Path

import typer

from cli.common import DbOption, JsonOption, ModelOption, SeenOption, emit
from core.checkpoint import model_for
from core.evaluate import METRIC_KEYS, evaluate_model

__all__ = ["evaluate_cmd", "register"]


RecBoleOption = typer.Option(
    False, "--recbole",
    help="Also rank the model, most popular and Markov under RecBole 1.2.1's protocol for sequential models (test "
    "target from 3 events, nothing masked, hit/ndcg/mrr@K with MRR cut at K), to set beside RecBole's own figures "
    "(docs/accuracy.md).",
)


def evaluate_cmd(
    db: Path | None = DbOption, model: Path | None = ModelOption, seen: str = SeenOption,
    recbole: bool = RecBoleOption, as_json: bool = JsonOption,
) -> None:
    """Rank each user's held-out test item in the whole catalogue under both protocols (exclude_seen, all_items);
    the headline follows --seen; --recbole adds RecBole's protocol; writes eval_users.parquet."""
    from core.friends.context import social_context
    from core.trajectory.interest import evaluate_interest

    result = evaluate_model(db, model_for(db, model), seen_rule=seen, context=social_context,
                            interest=evaluate_interest, recbole=recbole)
    rows = [("model", result.metrics), *((k, v) for k, v in result.baselines.items())]
    lines = [f"{'':<14}" + "".join(f"{k:>12}" for k in METRIC_KEYS)]
    lines += [f"{name:<14}" + "".join(f"{m[k]:>12.4f}" for k in METRIC_KEYS) for name, m in rows]
    lines.append(f"{result.users:,} users evaluated ({result.split} split); per-user ranks in {result.users_path}")
    other = next((p for p in result.protocols if p != result.protocol), None)
    if other is not None:
        o = result.protocols[other]
        lines.append(f"protocol: {result.protocol} ({result.seen.reason if result.seen else ''}); under {other}: "
                     f"model NDCG@10 {o.metrics['NDCG@10']:.4f}, HR@10 {o.metrics['HR@10']:.4f}")
    rb = result.extra.get("recbole")
    if rb is not None:
        lines.append(f"RecBole protocol ({rb['users']:,} users; every item ranked, nothing masked):")
        for name, m in [("model", rb), *rb.get("baselines", {}).items()]:
            lines.append(f"  {name:<12}" + "".join(f"  {k} {m[k]:.4f}" for k in ("ndcg@10", "hit@10", "mrr@10")))
    if result.unknown_targets:
        lines.append(f"{result.unknown_targets:,} test items are unknown to the model (added after training); skipped")
    lines += interest_lines(result.interest)
    emit(result.to_dict(), as_json, "\n".join(lines))


def interest_lines(interest: dict | None) -> list[str]:
    """The `interest` section as text: the category forecast beside the tuned histogram on the test targets."""
    if not interest:
        return []
    keys = ("log_loss", "brier", "ece", "ece_top", "entropy")
    title = f"next-event category ({interest['split']} test targets)"
    out = ["", f"{title:<40}" + "".join(f"{k:>10}" for k in keys)]
    for name in ("forecast", "histogram", "model_marginal", "category_head"):
        if name in interest:  # category_head: models trained with a category head only
            out.append(f"{name:<40}" + "".join(f"{interest[name][k]:>10.4f}" for k in keys))
    hl = interest["histogram_half_life"]
    source = " on the category head" if interest.get("forecast_source") == "head" else ""
    out.append(f"forecast: {interest['forecast_kind']}{source}; histogram half-life {hl if hl is not None else 'infinite'} "
               f"events, prior {interest['histogram_pseudo_count']} events (both chosen on validation)")
    planted = interest.get("planted")
    if planted:
        tv = planted["tv"]
        out.append(f"planted truth: TV forecast {tv['forecast']:.4f}, histogram {tv['histogram']:.4f}, plain "
                   f"histogram {tv['histogram_plain']:.4f}; entropy forecast {planted['entropy']['forecast']:.3f}, "
                   f"truth {planted['entropy']['truth']:.3f} nats")
    return out


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate_cmd)
