"""`interestlens recommend`: a user's top-K, or every user's list written to Parquet / CSV."""

from __future__ import annotations

from pathlib import Path

import typer

from cli.common import DbOption, JsonOption, ModelOption, SeenOption, emit
from core.checkpoint import load_checkpoint, model_for
from core.errors import UserInputError
from core.recommend import (
    RECOMMENDATIONS_FILE,
    recommend_all,
    recommend_users,
    seen_excluded,
    unknown_history_items,
    write_recommendations,
)
from core.store import connect_read, item_lookup

__all__ = ["recommend_cmd", "register"]


def recommend_cmd(
    db: Path | None = DbOption,
    model: Path | None = ModelOption,
    user: str | None = typer.Option(None, "--user", help="The user to recommend for."),
    all_users: bool = typer.Option(False, "--all", help="Every user's list, written to --out."),
    k: int = typer.Option(10, "--k", min=1, help="List length."),
    out: Path | None = typer.Option(None, "--out", help="--all: Parquet or CSV file (default: beside the model)."),
    seen: str = SeenOption,
    as_json: bool = JsonOption,
) -> None:
    """Top-K items the model recommends (seen items per --seen; items it never saw are skipped)."""
    if (user is None) == (not all_users):
        raise UserInputError("Give either --user ID or --all.")
    loaded = load_checkpoint(model_for(db, model))
    exclude = seen_excluded(loaded, seen)
    with connect_read(db) as con:
        if all_users:
            df = recommend_all(loaded, con, k, exclude)
            path = write_recommendations(df, out or loaded.path / RECOMMENDATIONS_FILE)
            result = {"path": path, "users": int(df["user_id"].nunique()), "rows": len(df), "k": k}
            emit(result, as_json, f"{result['users']:,} users' top-{k} lists written to {path}")
            return
        unknown = unknown_history_items(loaded, con, user)
        df = recommend_users(loaded, con, [user], k, exclude)
        titles = item_lookup(con, df["item_id"].tolist())
    title_of = dict(zip(titles["item_id"], titles["title"], strict=True))
    items = [
        {"rank": int(r.rank), "item_id": str(r.item_id), "title": title_of.get(r.item_id), "score": float(r.score)}
        for r in df.itertuples()
    ]
    result = {"user_id": str(user), "k": k, "items": items, "unknown_items": unknown.item_ids}
    lines = [f"{it['rank']:>3}. {it['item_id']}  {it['title'] or ''}  ({it['score']:.3f})" for it in items]
    if unknown.item_ids:
        lines.append(
            f"{len(unknown.item_ids)} item(s) in this history are unknown to the model and were skipped: "
            + ", ".join(unknown.item_ids[:20])
        )
    emit(result, as_json, "\n".join(lines))


def register(app: typer.Typer) -> None:
    app.command("recommend")(recommend_cmd)
