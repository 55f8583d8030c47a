"""`interestlens attach` (a database over a Parquet dataset, read in place) and `interestlens export-parquet`."""

from __future__ import annotations

from pathlib import Path

import typer

from cli.common import DbOption, JsonOption, emit
from core.store.parquet import ParquetMapping, attach_parquet
from core.store.parquet_export import export_parquet

__all__ = ["register"]


def attach(
    source: str = typer.Argument(..., help="Parquet folder (hive-partitioned or not), file, glob or s3:// URL; an "
                                 "export-parquet folder is read as its events/ with users.parquet and items.parquet."),
    db: Path = typer.Option(..., "--db", help="The new database file to create (it must not exist)."),
    users: str | None = typer.Option(None, "--users", help="Parquet file of users (user_id + attribute columns); "
                                     "default: an export-parquet folder's users.parquet."),
    items: str | None = typer.Option(None, "--items", help="Parquet file of items (item_id, title, categories, ...); "
                                     "default: an export-parquet folder's items.parquet."),
    user_col: str = typer.Option("user_id", "--user-col", help="Column holding the user id."),
    item_col: str = typer.Option("item_id", "--item-col", help="Column holding the item id."),
    time_col: str = typer.Option("ts", "--time-col", help="Column holding the event time."),
    time_unit: str = typer.Option("s", "--time-unit", help="Unit of a numeric time column: s, ms or us."),
    event_col: str | None = typer.Option(None, "--event-col", help="Event type column (default: event_type if present)."),
    value_col: str | None = typer.Option(None, "--value-col", help="Value column (default: value if present)."),
    context: list[str] = typer.Option(None, "--context", help="A column kept as context (repeat for several)."),
    seq_col: str | None = typer.Option(None, "--seq-col", help="Column ordering events with equal times (default: seq)."),
    no_hive: bool = typer.Option(False, "--no-hive", help="Do not read key=value folder names as columns."),
    as_json: bool = JsonOption,
) -> None:
    """Create a database whose events are read in place from a Parquet dataset (nothing is copied).

    Every read command, training and the dashboard work on it; ingest, follow and forget refuse it.
    """
    mapping = ParquetMapping(user=user_col, item=item_col, time=time_col, event_type=event_col, value=value_col,
                             context=tuple(context) if context else None, seq=seq_col, time_unit=time_unit)
    r = attach_parquet(db, source, mapping, users=users, items=items, hive=not no_hive)
    out = {"db": str(r.db), "source": r.source, "events": r.events, "users": r.users, "items": r.items, "files": r.files}
    emit(out, as_json, f"{r.db}: {r.events:,} events of {r.users:,} users and {r.items:,} items, read in place from "
                       f"{r.source} ({r.files:,} files)")


def export(
    out: Path = typer.Argument(..., help="New folder: events/user_bucket=K/*.parquet, users.parquet, items.parquet."),
    db: Path | None = DbOption,
    buckets: int = typer.Option(64, "--buckets", help="User buckets (hive partitions) to spread users over."),
    as_json: bool = JsonOption,
) -> None:
    """Write a database's log as Parquet partitioned by user bucket (what `attach` reads back)."""
    r = export_parquet(db, out, buckets)
    result = {"out": str(r.out), "events": r.events, "files": r.files, "buckets": r.buckets, "bytes": r.bytes}
    emit(result, as_json, f"{r.out}: {r.events:,} events in {r.files:,} files over {r.buckets} user buckets "
                          f"({r.bytes / 2**20:,.1f} MiB)")


def register(app: typer.Typer) -> None:
    app.command("attach")(attach)
    app.command("export-parquet")(export)
