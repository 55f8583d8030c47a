"""`interestlens build` and `interestlens datasets`: the built-in datasets."""

from __future__ import annotations

from pathlib import Path

import typer

from cli.commands.ingest import show_result, step_progress
from cli.common import DbOption, JsonOption, emit
from core.datasets.catalog import DATASET_NAMES, available, build_dataset

__all__ = ["register"]


def build(
    dataset: str = typer.Option("synthetic", "--dataset", "-d", help="One of: " + ", ".join(DATASET_NAMES) + "."),
    db: Path | None = DbOption,
    users: int | None = typer.Option(None, "--users", help="synthetic: number of users (default 2,000)."),
    items: int | None = typer.Option(None, "--items", help="synthetic: number of items (default 1,000)."),
    events: int | None = typer.Option(None, "--events", help="synthetic: number of events (default 100,000)."),
    seed: int | None = typer.Option(None, "--seed", help="synthetic: random seed (default 0)."),
    as_json: bool = JsonOption,
) -> None:
    """Build (or add to) a database from a built-in dataset, in one ingest run."""
    first = "generating" if dataset.startswith("synthetic") else None
    with step_progress(as_json, first=first) as step:
        if first:
            step(first)
        result = build_dataset(dataset, db, users=users, items=items, events=events, seed=seed, progress=step)
    show_result(result, as_json)


def datasets(as_json: bool = JsonOption) -> None:
    """List the built-in datasets and whether each can be built here."""
    infos = available()
    human = "\n".join(
        f"{d.name:<16} {'available' if d.available else 'missing':<10} {d.description}\n{'':<28}{d.detail}"
        for d in infos
    )
    emit({"datasets": [{"name": d.name, "description": d.description, "available": d.available} for d in infos]},
         as_json, human)  # fmt: skip


def register(app: typer.Typer) -> None:
    app.command("build")(build)
    app.command("datasets")(datasets)
