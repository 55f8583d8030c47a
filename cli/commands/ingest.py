"""`interestlens ingest`: read a log in a preset format (or any file with a column mapping) into the store."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import fields, replace
from pathlib import Path

import typer

from cli.common import DbOption, JsonOption, emit
from core.errors import UserInputError
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
    """The run's counts: one JSON object with --json, else a sentence, the stated assumptions and the most
    frequent reject reasons. A run that rejected every row (nothing accepted, nothing a duplicate) then stops
    with one sentence and exit code 1: the mapping or the time unit is most likely wrong."""
    human = "\n".join(
        [
            f"run {result.run_id}: {result.accepted:,} events accepted, {result.rejected:,} rows rejected, "
            f"{result.duplicates:,} duplicates dropped.",
            *(f"assumed: {a}" for a in result.assumptions),
            *([f"social edges: {result.edges.sentence()}"] if result.edges is not None else []),
            *(f"  rejected {n:,}: {why}" for why, n in result.reasons.items()),
            *([f"every rejected row and its reason: `interestlens rejects --run {result.run_id}`."] if result.rejected else []),
        ]
    )
    emit(result.as_dict(), as_json, human)
    if result.rejected and not result.accepted and not result.duplicates:
        why, n = next(iter(result.reasons.items()), ("see the rejects table", result.rejected))
        raise UserInputError(
            f"No row was accepted: all {result.rejected:,} were rejected, most for '{why}' ({n:,}); check the "
            "column mapping and --time-unit."
        )


def mapping_from_flags(toml: Path | None, flags: dict) -> ColumnMapping | None:
    """The TOML mapping (if any) with the given flags on top; None when neither was given."""
    given = {k: v for k, v in flags.items() if v not in (None, [], ())}
    if toml is None and not given:
        return None
    base = ColumnMapping.from_toml(toml) if toml is not None else ColumnMapping()
    known = {f.name for f in fields(ColumnMapping)}
    return replace(base, **{k: (tuple(v) if k == "context" else v) for k, v in given.items() if k in known})


# The column-mapping options `ingest` and `follow` share (typer reads each default Option as the flag's spec).
MAPPING_OPTION = typer.Option(None, "--mapping", help="generic: a TOML file with the column mapping.")
USER_OPTION = typer.Option(None, "--user", "--user-col", help="generic: the user id column (default user_id).")
ITEM_OPTION = typer.Option(None, "--item", "--item-col", help="generic: the item id column (default item_id).")
TIME_OPTION = typer.Option(None, "--time", "--time-col", help="generic: the time column (default timestamp).")
EVENT_OPTION = typer.Option(None, "--event", "--event-col", help="generic: the event type column.")
VALUE_OPTION = typer.Option(None, "--value", "--value-col", help="generic: the value column (rating, weight, dwell).")
CATEGORY_OPTION = typer.Option(None, "--category", "--category-col", help="generic: the item category column.")
CATEGORY_SEP_OPTION = typer.Option(None, "--category-sep", help="generic: separator of several categories.")
TITLE_OPTION = typer.Option(None, "--title", "--title-col", help="generic: the item title column.")
CONTEXT_OPTION = typer.Option([], "--context", "--context-col", help="generic: a context column (repeatable).")
TIME_UNIT_OPTION = typer.Option(None, "--time-unit", help="generic: auto, s, ms or iso.")
DELIMITER_OPTION = typer.Option(None, "--delimiter", help="generic: CSV delimiter (default: detected).")
ENCODING_OPTION = typer.Option(None, "--encoding", help="generic: utf-8, latin-1 or utf-16.")
EVENT_TYPE_OPTION = typer.Option(None, "--event-type", help="generic: event type without --event.")
META_OPTION = typer.Option(None, "--meta", help="amazon-reviews: the metadata file (meta_*.json.gz).")
USERS_FILE_OPTION = typer.Option(
    None, "--users-file", help="generic: users file (CSV/TSV/Parquet): the user id column, other columns attributes."
)
ITEMS_FILE_OPTION = typer.Option(
    None, "--items-file", help="generic: items file (CSV/TSV/Parquet): item id, title, category, other attributes."
)
SOCIAL_FILE_OPTION = typer.Option(
    None, "--social-file", help="generic: social edges file (CSV/TSV/Parquet with a header): one edge per row."
)
SRC_COL_OPTION = typer.Option(None, "--src-col", help="generic: the social file's source user column (default src_user).")
DST_COL_OPTION = typer.Option(None, "--dst-col", help="generic: the social file's target user column (default dst_user).")
EDGE_TIME_OPTION = typer.Option(None, "--edge-time-col", help="generic: the social file's tie start time column.")
DIRECTED_OPTION = typer.Option(
    None, "--directed/--undirected", help="generic: whether the social file's edges are directed (default undirected)."
)


def ingest_command(
    source: Path = typer.Argument(..., help="File or folder to read (what each preset expects: see --preset)."),
    preset: str = typer.Option(..., "--preset", "-p", help="Format: " + ", ".join(preset_names()) + "."),
    db: Path | None = DbOption,
    mapping: Path | None = MAPPING_OPTION,
    user: str | None = USER_OPTION,
    item: str | None = ITEM_OPTION,
    time: str | None = TIME_OPTION,
    event: str | None = EVENT_OPTION,
    value: str | None = VALUE_OPTION,
    category: str | None = CATEGORY_OPTION,
    category_sep: str | None = CATEGORY_SEP_OPTION,
    title: str | None = TITLE_OPTION,
    context: list[str] = CONTEXT_OPTION,
    time_unit: str | None = TIME_UNIT_OPTION,
    delimiter: str | None = DELIMITER_OPTION,
    encoding: str | None = ENCODING_OPTION,
    event_type: str | None = EVENT_TYPE_OPTION,
    meta: Path | None = META_OPTION,
    users_file: Path | None = USERS_FILE_OPTION,
    items_file: Path | None = ITEMS_FILE_OPTION,
    social_file: Path | None = SOCIAL_FILE_OPTION,
    src_col: str | None = SRC_COL_OPTION,
    dst_col: str | None = DST_COL_OPTION,
    edge_time_col: str | None = EDGE_TIME_OPTION,
    directed: bool | None = DIRECTED_OPTION,
    as_json: bool = JsonOption,
) -> None:
    """Ingest a behaviour log in one transaction: bad rows go to `rejects`, duplicates are dropped."""
    flags = dict(
        user=user, item=item, time=time, event=event, value=value, category=category, category_sep=category_sep,
        title=title, context=context, time_unit=time_unit, delimiter=delimiter, encoding=encoding,
        event_type=event_type, users_file=str(users_file) if users_file else None,
        items_file=str(items_file) if items_file else None,
        social_file=str(social_file) if social_file else None, src_col=src_col, dst_col=dst_col,
        edge_time_col=edge_time_col, directed=directed,
    )  # fmt: skip
    with step_progress(as_json) as step:
        result = ingest(db, preset, source, mapping=mapping_from_flags(mapping, flags), meta=meta, progress=step)
    show_result(result, as_json)


def presets_help() -> str:
    return "\n".join(f"{p.name}: {p.description} (SOURCE: {p.source})" for p in PRESETS.values())


def rejects_command(
    db: Path | None = DbOption,
    run: int | None = typer.Option(None, "--run", help="The ingest run (default: the latest run that rejected rows)."),
    limit: int = typer.Option(20, "--limit", min=1, help="How many rejected rows to list."),
    as_json: bool = JsonOption,
) -> None:
    """The rows an ingest run rejected: how many for each reason, then the first rows with their raw text."""
    from core.ingest.run import top_reasons
    from core.store import connect_read

    with connect_read(db) as con:
        if run is None:
            row = con.execute("SELECT max(run_id) FROM rejects").fetchone()
            if row[0] is None:
                emit({"run_id": None, "rejected": 0, "reasons": {}, "rows": []}, as_json, "No ingest run rejected any row.")
                return
            run = int(row[0])
        elif not con.execute("SELECT EXISTS (SELECT 1 FROM ingest_runs WHERE run_id = ?)", [run]).fetchone()[0]:
            raise UserInputError(f"There is no ingest run {run} in this database.")
        total = int(con.execute("SELECT count(*) FROM rejects WHERE run_id = ?", [run]).fetchone()[0])
        reasons = top_reasons(con, run, limit=50)
        rows = con.execute(
            "SELECT row_number, reason, raw FROM rejects WHERE run_id = ? ORDER BY row_number LIMIT ?", [run, limit]
        ).fetchall()
    listed = [{"row": int(r[0]) if r[0] is not None else None, "reason": r[1], "raw": r[2]} for r in rows]
    human = [f"run {run}: {total:,} rows rejected"]
    human += [f"  {n:,}: {why}" for why, n in reasons.items()]
    human += [f"{r['row']}: {r['reason']} | {r['raw'] or ''}" for r in listed]
    emit({"run_id": run, "rejected": total, "reasons": reasons, "rows": listed}, as_json, "\n".join(human))


def register(app: typer.Typer) -> None:
    app.command("ingest", help="Ingest a behaviour log into the event store.\n\n" + presets_help())(ingest_command)
    app.command("rejects")(rejects_command)
