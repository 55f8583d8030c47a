"""`interestlens ingest-recs` and `interestlens served`: load and audit what a production system served."""

from __future__ import annotations

from pathlib import Path

import typer

from cli.common import DbOption, JsonOption, emit
from core.errors import UserInputError
from core.fairness import FREQUENCIES

__all__ = ["register"]


def ingest_recs(
    path: Path = typer.Argument(..., help="Served log: CSV/TSV with a header, or Parquet."),
    db: Path | None = DbOption,
    user_col: str = typer.Option("user_id", "--user-col"),
    item_col: str = typer.Option("item_id", "--item-col"),
    rank_col: str = typer.Option("rank", "--rank-col", help="1 = top; without it the score order is the rank."),
    score_col: str = typer.Option("score", "--score-col"),
    time_col: str = typer.Option("served_at", "--time-col", help="Unix seconds, milliseconds or ISO-8601 (UTC)."),
    variant_col: str = typer.Option("variant", "--variant-col", help="A/B variant; absent: one variant ''."),
    as_json: bool = JsonOption,
) -> None:
    """Load served recommendations (user, item, rank or score, served_at, variant) in one transaction."""
    from core.served import ingest_served

    res = ingest_served(db, path, user_col, item_col, rank_col, score_col, time_col, variant_col)
    lines = [f"Run {res.run_id}: {res.message}", *res.assumptions]
    lines += [f"  {n:,} rejected: {reason}" for reason, n in res.reasons.items()]
    emit(res.as_dict(), as_json, "\n".join(lines))


def served(
    db: Path | None = DbOption,
    window: str = typer.Option("month", "--window", help=f"Calendar window: {', '.join(FREQUENCIES)}."),
    within: int = typer.Option(7, "--within-days", min=0, help="N of 'served, then consumed within N days'."),
    variant: str | None = typer.Option(None, "--variant", help="Only this variant's fairness trend."),
    k: int = typer.Option(10, "--k", min=1, help="List length of the fairness trend."),
    as_json: bool = JsonOption,
) -> None:
    """Per variant and window: coverage, Gini, popularity bias, calibration, uptake; and the fairness trend."""
    if window not in FREQUENCIES:
        raise UserInputError(f"Unknown --window {window!r}; expected one of {', '.join(FREQUENCIES)}.")
    from core.fairness.inputs import _items
    from core.served import read_served, served_over_time
    from core.served.fairness import served_trend
    from core.store import connect_read

    with connect_read(db) as con:
        log_rows = read_served(con, variant)
        events = con.execute("SELECT user_id, item_id, ts FROM events").df()
        cats, _ = _items(con)
    rows = served_over_time(events, log_rows, cats, window, within)
    trend = served_trend(db, variant, k, freq=window)
    out = {
        "windows": [{"variant": r.variant, "start": r.start, "end": r.end, "lists": r.lists, "users": r.users, **r.metrics}
                    for r in rows],
        "fairness_over_time": [{"start": w.start, "end": w.end, "users": w.users, **w.metrics, "gaps": w.gaps}
                               for w in trend],
    }
    key = f"consumed_within_{within}d"
    lines = [f"{'variant':10} {'window':10} {'lists':>6} {'coverage':>9} {'gini':>6} {'arp':>7} {'C_KL':>6} {key:>20}"]
    lines += [f"{r.variant[:10]:10} {r.start:%Y-%m-%d} {r.lists:>6} {r.metrics['coverage']:>9.3f} {r.metrics['gini']:>6.3f} "
              f"{r.metrics['arp']:>7.1f} {r.metrics['C_KL']:>6.3f} {r.metrics[key]:>20.3f}" for r in rows]
    lines += ["", f"fairness trend ({'variant ' + variant if variant else 'all variants'}):"]
    lines += [f"  {w.start:%Y-%m-%d} {w.users:>6} users  NDCG@{k} {w.metrics[f'NDCG@{k}']:.4f}  gaps "
              + ", ".join(f"{a} {g:.4f}" for a, g in w.gaps.items()) for w in trend]
    emit(out, as_json, "\n".join(lines))


def register(app: typer.Typer) -> None:
    app.command("ingest-recs")(ingest_recs)
    app.command("served")(served)
