"""`interestlens ingest`: read a log in a preset format (or any file with a column mapping) into the store."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import fields, replace
from pathlib import Path

import typer

from core.cli.common import DbOption, JsonOption, emit
from core.ingest import ColumnMapping, IngestResult, ingest, preset_names
from core.ingest.presets import PRESETS

__all__ = ["register", "step_progress", "show_result", "mapping_from_flags"]

_STEPS = ("reading", "validating", "inserting events", "updating users and items", "done")


@contextmanager
def step_progress(quiet: bool, first: str | None = None) -> Iterator[Callable[[str], None]]:
    """A progress bar over the pipeline's steps on a terminal (stderr); a silent callback otherwise."""
    if quiet or not sys.stderr.isatty():
        yield lambda _step: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    steps = ((first,) if first else ()) + _STEPS
    with Progress(
        TextColumn("{task.description:<26}"), BarColumn(), TimeElapsedColumn(),
        console=Console(stderr=True), transient=True,
    ) as bar:  # fmt: skip
        task = bar.add_task(steps[0], total=len(steps) - 1)

        def advance(step: str) -> None:
            done = steps.index(step) if step in steps else 0
            bar.update(task, completed=done, description=step)

        yield advance


def show_result(result: IngestResult, as_json: bool) -> None:
    """The run's counts: one JSON object with --json, else a sentence and the stated assumptions."""
    human = "\n".join(
        [
            f"run {result.run_id}: {result.accepted:,} events accepted, {result.rejected:,} rows rejected, "
            f"{result.duplicates:,} duplicates dropped.",
            *(f"assumed: {a}" for a in result.assumptions),
            *(["rejected rows and their reasons are in the `rejects` table."] if result.rejected else []),
        ]
    )
    emit(result.as_dict(), as_json, human)


def mapping_from_flags(toml: Path | None, flags: dict) -> ColumnMapping | None:
    """The TOML mapping (if any) with the given flags on top; None when neither was given."""
    given = {k: v for k, v in flags.items() if v not in (None, [], ())}
    if toml is None and not given:
        return None
    base = ColumnMapping.from_toml(toml) if toml is not None else ColumnMapping()
    known = {f.name for f in fields(ColumnMapping)}
    return replace(base, **{k: (tuple(v) if k == "context" else v) for k, v in given.items() if k in known})


def ingest_command(
    source: Path = typer.Argument(..., help="File or folder to read (what each preset expects: see --preset)."),
    preset: str = typer.Option(..., "--preset", "-p", help="Format: " + ", ".join(preset_names()) + "."),
    db: Path | None = DbOption,
    mapping: Path | None = typer.Option(None, "--mapping", help="generic: a TOML file with the column mapping."),
    user: str | None = typer.Option(None, "--user", "--user-col", help="generic: the user id column (default user_id)."),
    item: str | None = typer.Option(None, "--item", "--item-col", help="generic: the item id column (default item_id)."),
    time: str | None = typer.Option(None, "--time", "--time-col", help="generic: the time column (default timestamp)."),
    event: str | None = typer.Option(None, "--event", "--event-col", help="generic: the event type column."),
    value: str | None = typer.Option(None, "--value", "--value-col", help="generic: the value column (rating, weight, dwell)."),
    category: str | None = typer.Option(None, "--category", "--category-col", help="generic: the item category column."),
    category_sep: str | None = typer.Option(None, "--category-sep", help="generic: separator of several categories."),
    title: str | None = typer.Option(None, "--title", "--title-col", help="generic: the item title column."),
    context: list[str] = typer.Option([], "--context", "--context-col", help="generic: a context column (repeatable)."),
    time_unit: str | None = typer.Option(None, "--time-unit", help="generic: auto, s, ms or iso."),
    delimiter: str | None = typer.Option(None, "--delimiter", help="generic: CSV delimiter (default: detected)."),
    encoding: str | None = typer.Option(None, "--encoding", help="generic: utf-8, latin-1 or utf-16."),
    event_type: str | None = typer.Option(None, "--event-type", help="generic: event type without --event."),
    meta: Path | None = typer.Option(None, "--meta", help="amazon-reviews: the metadata file (meta_*.json.gz)."),
    as_json: bool = JsonOption,
) -> None:
    """Ingest a behaviour log in one transaction: bad rows go to `rejects`, duplicates are dropped."""
    flags = dict(
        user=user, item=item, time=time, event=event, value=value, category=category, category_sep=category_sep,
        title=title, context=context, time_unit=time_unit, delimiter=delimiter, encoding=encoding,
        event_type=event_type,
    )  # fmt: skip
    with step_progress(as_json) as step:
        result = ingest(db, preset, source, mapping=mapping_from_flags(mapping, flags), meta=meta, progress=step)
    show_result(result, as_json)


def presets_help() -> str:
    return "\n".join(f"{p.name}: {p.description} (SOURCE: {p.source})" for p in PRESETS.values())


def register(app: typer.Typer) -> None:
    app.command("ingest", help="Ingest a behaviour log into the event store.\n\n" + presets_help())(ingest_command)
