"""`interestlens summary`: counts, time span, event types and categories of a database."""

from __future__ import annotations

from pathlib import Path

import typer

from cli.common import DbOption, JsonOption, emit, iso_utc
from core.store import connect_read, dataset_summary
from core.store.edges import edge_summary


def summary(db: Path | None = DbOption, as_json: bool = JsonOption) -> None:
    """Show what a database holds."""
    with connect_read(db) as con:
        s = dataset_summary(con)
        s["edges"] = edge_summary(con)
        runs, rejected = con.execute("SELECT count(*), coalesce(sum(rejected), 0) FROM ingest_runs").fetchone()
    span = " .. ".join(iso_utc(t) if t is not None else "-" for t in (s["first_event"], s["last_event"]))
    human = "\n".join(
        [
            f"users   {s['users']:,}",
            f"items   {s['items']:,}",
            f"events  {s['events']:,}  ({span})",
            f"ingest runs {int(runs):,}, rows rejected {int(rejected):,}" + ("  (`interestlens rejects`)" if rejected else ""),
            "event types: " + ", ".join(f"{k} {v:,}" for k, v in s["event_types"].items()),
            f"social edges {s['edges']['edges']:,} ({s['edges']['undirected']:,} undirected, "
            f"{s['edges']['directed']:,} directed; {s['edges']['users_without_events']:,} users named without events)",
            "categories:  " + ", ".join(f"{k} {v:,}" for k, v in list(s["categories"].items())[:20]),
        ]
    )
    emit(s, as_json, human)


def register(app: typer.Typer) -> None:
    app.command("summary")(summary)
