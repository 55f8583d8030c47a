"""`interestlens what-if`: remove events from a user's history and see how the recommendation moves, for any model
(`--model` takes ours or a registered external one; core.explain.what_if, nothing is written)."""

from __future__ import annotations

from pathlib import Path

import typer

from cli.common import DbOption, JsonOption, ModelOption, emit
from core.checkpoint import load_checkpoint, model_for, pick_device
from core.store import connect_read

__all__ = ["register"]


def what_if_cmd(
    user: str = typer.Option(..., "--user", help="User id."),
    remove: list[int] = typer.Option(..., "--remove", min=0, help="0-based step of an event to remove (repeat it)."),
    db: Path | None = DbOption,
    model: Path | None = ModelOption,
    item: str | None = typer.Option(None, "--item", help="Item to follow (default: the top-1 before the edit)."),
    k: int = typer.Option(10, "--k", min=1, max=100, help="List length K."),
    as_json: bool = JsonOption,
) -> None:
    """What if these events had not happened: the followed item's score and rank, and the top-K, before and after."""
    from core.explain import HistoryExplainer, RemoveEvents, load_labelled_history, what_if

    loaded = load_checkpoint(model_for(db, model), device=pick_device("auto"))
    with connect_read(db) as con:
        lh = load_labelled_history(con, loaded, user)
    res = what_if(HistoryExplainer(loaded), lh, [RemoveEvents(tuple(remove))], k=k, target=item, explain=False)
    result = {
        "user_id": user, "model": loaded.name, "kind": loaded.kind, "removed": sorted(set(remove)), "target": res.target,
        "score_before": res.target_score_before, "score_after": res.target_score_after,
        "rank_before": res.target_rank_before, "rank_after": res.target_rank_after,
        "before": [vars(r) for r in res.before], "after": [vars(r) for r in res.after],
    }
    human = "\n".join([
        f"user {user}, {loaded.name} ({loaded.kind}): without step(s) {', '.join(map(str, result['removed']))}",
        f"  {res.target}: score {res.target_score_before:.4f} -> {res.target_score_after:.4f}, "
        f"rank {res.target_rank_before} -> {res.target_rank_after}",
        f"  top-{k} after: " + ", ".join(r.item_id for r in res.after),
    ])
    emit(result, as_json, human)


def register(app: typer.Typer) -> None:
    app.command("what-if")(what_if_cmd)
