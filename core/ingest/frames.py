"""Ingest pandas DataFrames (the built-in datasets, tests, the app's previews) through the shared pipeline.

The frames are registered on the writer's connection and described as SQL, so they meet the same checks,
dedupe and ordering as files (`core.ingest.run`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import duckdb
import pandas as pd

from core.errors import UserInputError
from core.ingest.result import IngestResult
from core.ingest.run import execute_run
from core.ingest.stage import Progress, Run, SideTable, Stage
from core.store.edges import EdgeStage

__all__ = ["ingest_frames"]


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _attr_map(cols: Sequence[str], keys: Sequence[str] | None = None) -> str:
    """SQL for a MAP(VARCHAR, VARCHAR) of the given columns (keyed by `keys`), NULL values left out."""
    if not cols:
        return "MAP {}::MAP(VARCHAR, VARCHAR)"
    keys = list(keys) if keys is not None else list(cols)
    entries = ", ".join(
        "struct_pack(k := '" + k.replace("'", "''") + f"', v := CAST({_quote_ident(c)} AS VARCHAR))"
        for k, c in zip(keys, cols, strict=True)
    )
    return f"map_from_entries(list_filter([{entries}], lambda e: e.v IS NOT NULL))"


def ingest_frames(
    db: str | os.PathLike | duckdb.DuckDBPyConnection | None,
    events: pd.DataFrame,
    users: pd.DataFrame | None = None,
    items: pd.DataFrame | None = None,
    *,
    edges: pd.DataFrame | None = None,
    directed: bool = False,
    context: Sequence[str] = (),
    source: str = "dataframe",
    preset: str = "frames",
    progress: Progress | None = None,
    write_timeout_s: float = 10.0,
) -> IngestResult:
    """Ingest events (and optional users / items) from DataFrames in one transaction.

    Parameters
    ----------
    events : columns user_id, item_id, ts (datetime64, naive UTC), and optionally event_type (default
        "interaction"), value, and the `context` columns. Row order is the source order (`seq`).
    users : user_id plus one column per attribute (stored as text in `users.attributes`).
    items : item_id, optional title, optional categories (list of names), other columns become attributes.
    edges : src_user, dst_user and optionally kind, weight, since (social edges, `directed` or not).
    """
    missing = {"user_id", "item_id", "ts"} - set(events.columns)
    if missing:
        raise UserInputError(f"The events table is missing the column(s) {', '.join(sorted(missing))}.")
    for c in context:
        if c not in events.columns:
            raise UserInputError(f"The context column {c!r} is not in the events table.")
    ev = pd.DataFrame(
        {
            "seq": range(len(events)),
            "user_id": events["user_id"].astype(str).to_numpy(),
            "item_id": events["item_id"].astype(str).to_numpy(),
            "ts": pd.to_datetime(events["ts"]).to_numpy(),
            "event_type": (events["event_type"].astype(str).str.lower() if "event_type" in events else "interaction"),
            "value": pd.to_numeric(events["value"]).astype(float).to_numpy() if "value" in events else float("nan"),
        }
    )
    if "value" not in events:
        ev["value"] = None
    for i, c in enumerate(context):
        col = events[c]
        ev[f"ctx_{i}"] = col.astype(str).where(col.notna(), None).to_numpy(dtype=object)
    if len(ev) == 0:
        raise UserInputError("The events table has no rows.")

    def build(run: Run) -> Stage:
        run.register("_il_frame_events", ev)
        ctx_sql = "".join(f", CAST(ctx_{i} AS VARCHAR) AS ctx_{i}" for i in range(len(context)))
        stage = Stage(
            events_sql=f"""SELECT seq, user_id, item_id, CAST(ts AS TIMESTAMP) AS ts, NULL::VARCHAR AS ts_problem,
                    event_type, CAST(value AS DOUBLE) AS value, NULL::VARCHAR AS problem{ctx_sql},
                    user_id AS raw_0, item_id AS raw_1, CAST(ts AS VARCHAR) AS raw_2, event_type AS raw_3,
                    CAST(value AS VARCHAR) AS raw_4
                FROM _il_frame_events""",
            context_keys=tuple(context),
            raw_parts=5,
        )
        side_users = side_items = None
        if users is not None:
            if "user_id" not in users.columns:
                raise UserInputError("The users table has no user_id column.")
            u = users.copy()
            u.insert(0, "seq", range(len(u)))
            u["user_id"] = u["user_id"].astype(str)
            attrs = [c for c in u.columns if c not in ("seq", "user_id")]
            for c in attrs:
                u[c] = u[c].astype(object).where(u[c].notna(), None).map(lambda v: None if v is None else str(v))
            run.register("_il_frame_users", u)
            side_users = SideTable(
                sql=f"SELECT seq, user_id, {_attr_map(attrs)} AS attributes, user_id AS raw FROM _il_frame_users",
                label="users",
            )
        if items is not None:
            if "item_id" not in items.columns:
                raise UserInputError("The items table has no item_id column.")
            it = items.copy()
            it.insert(0, "seq", range(len(it)))
            it["item_id"] = it["item_id"].astype(str)
            if "title" not in it:
                it["title"] = None
            it["title"] = it["title"].astype(object).where(it["title"].notna(), None)
            if "categories" not in it:
                it["categories"] = [[] for _ in range(len(it))]
            it["categories"] = it["categories"].map(lambda c: [str(x) for x in c] if isinstance(c, (list, tuple)) else [])
            attrs = [c for c in it.columns if c not in ("seq", "item_id", "title", "categories")]
            for c in attrs:
                it[c] = it[c].astype(object).where(it[c].notna(), None).map(lambda v: None if v is None else str(v))
            run.register("_il_frame_items", it)
            side_items = SideTable(
                sql=f"""SELECT seq, item_id, CAST(title AS VARCHAR) AS title, CAST(categories AS VARCHAR[]) AS categories,
                        {_attr_map(attrs)} AS attributes, item_id AS raw FROM _il_frame_items""",
                label="items",
            )
        side_edges = _edges_stage(run, edges, directed) if edges is not None else None
        return Stage(stage.events_sql, [], side_users, side_items, tuple(context), raw_parts=5, edges=side_edges)

    return execute_run(db, source=source, preset=preset, build=build, progress=progress, write_timeout_s=write_timeout_s)


def _edges_stage(run: Run, edges: pd.DataFrame, directed: bool) -> EdgeStage:
    """An edges frame (src_user, dst_user, optional kind, weight, since) as an edge stage."""
    missing = {"src_user", "dst_user"} - set(edges.columns)
    if missing:
        raise UserInputError(f"The edges table has no {', '.join(sorted(missing))} column.")
    e = pd.DataFrame({"seq": range(len(edges)), "src": edges["src_user"].astype(str).to_numpy(object),
                      "dst": edges["dst_user"].astype(str).to_numpy(object)})  # fmt: skip
    e["kind"] = edges["kind"].astype(str).to_numpy(object) if "kind" in edges else "friend"
    e["weight_text"] = edges["weight"].astype(str).to_numpy(object) if "weight" in edges else None
    e["since"] = pd.to_datetime(edges["since"]).to_numpy() if "since" in edges else pd.NaT
    run.register("_il_frame_edges", e)
    sql = """SELECT seq, src, dst, kind, weight_text, CAST(since AS TIMESTAMP) AS since, NULL::VARCHAR AS since_problem,
                src || ',' || dst AS raw FROM _il_frame_edges"""
    return EdgeStage(sql, [], directed=directed, label="edges")
