"""`interestlens forget`: delete one user's events and attributes everywhere they are stored, and mark the models
trained on them (their card then says so, and the app shows it)."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from cli.common import DbOption, JsonOption, emit
from core.checkpoint import MODEL_ENV, list_checkpoints, models_root
from core.privacy import forget_user

__all__ = ["register", "forget", "model_dirs"]


def model_dirs(roots: list[Path] | None) -> list[Path]:
    """Checkpoint folders under the given roots (default: `core.checkpoint.models_root()`), plus
    $INTERESTLENS_MODEL."""
    if not roots:
        roots = [models_root()]
    found = [d for r in roots for d in list_checkpoints(r)]
    env = os.environ.get(MODEL_ENV)
    if env and (Path(env) / "model.safetensors").is_file():
        found.append(Path(env))
    return list(dict.fromkeys(p.resolve() for p in found))


def forget(
    user: str = typer.Option(..., "--user", help="The user to delete."),
    db: Path | None = DbOption,
    models: list[Path] | None = typer.Option(
        None, "--models", help="Folder of checkpoints derived from this database (repeat it; default: "
        "$INTERESTLENS_MODELS, else the folder of $INTERESTLENS_MODEL, else data/models)."
    ),
    compact: bool = typer.Option(
        True, "--compact/--no-compact",
        help="Rewrite the database file so no byte of the deleted rows remains (default; takes as long as a copy).",
    ),
    as_json: bool = JsonOption,
) -> None:
    """Delete a user's events, attributes, rejected rows and derived rows; mark the models trained on them."""
    result = forget_user(db, user, model_dirs(models), compact=compact)
    lines = [
        f"deleted {result.events:,} events, {result.users} user row(s), {result.rejects:,} rejected row(s) "
        f"and {result.edges:,} social edge(s)",
        *(f"removed {n:,} row(s) from {path}" for path, n in result.files.items()),
        *(f"marked {m}: trained on this user's events; retrain it to remove what it learned" for m in result.models_marked),
    ]
    if not result.compacted:
        lines.append("not compacted: the deleted rows' bytes may remain in the file until it is rewritten")
    emit(result.to_dict(), as_json, "\n".join(lines))


def register(app: typer.Typer) -> None:
    app.command("forget")(forget)
