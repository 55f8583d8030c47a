"""Taobao UserBehavior (Tianchi): `user_id,item_id,category_id,behavior_type,unix_seconds`, no header.

Behaviours map to event types: pv → view, cart → cart, fav → fav, buy → purchase. The item's category id
becomes its category. The dataset documents its window as 2017-11-25 to 2017-12-03 (China Standard Time,
UTC+8); rows outside it are rejected with that reason, and the assumption is stated in the run's output.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from core.ingest.presets.common import IngestOptions, events_select, find_file, raw_fields
from core.ingest.readers import Dialect
from core.ingest.stage import Run, Stage
from core.ingest.times import TimeSql, time_sql

__all__ = ["load_taobao", "BEHAVIOURS", "WINDOW_UTC"]

BEHAVIOURS = {"pv": "view", "cart": "cart", "fav": "fav", "buy": "purchase"}
# 2017-11-25 00:00 to 2017-12-04 00:00 at UTC+8, as naive UTC
WINDOW_UTC = (dt.datetime(2017, 11, 24, 16, 0, 0), dt.datetime(2017, 12, 3, 16, 0, 0))
_DIALECT = Dialect(delim=",", header=False)


def load_taobao(run: Run, source: Path, options: IngestOptions) -> Stage:
    """`UserBehavior.csv` (or a folder holding it)."""
    path = find_file(source, ["UserBehavior.csv", "UserBehavior.csv.gz", "*.csv"], "Taobao's UserBehavior.csv")
    src, params = run.delimited(
        path, 5, _DIALECT, "5 comma-separated fields: user_id, item_id, category_id, behavior_type, unix seconds"
    )
    run.assume(
        "Taobao times are unix seconds; rows outside the documented window 2017-11-25 to 2017-12-03 "
        "(UTC+8) are rejected."
    )
    base = time_sql("c4", "s")
    outside = "'timestamp outside the documented window 2017-11-25 to 2017-12-03 (UTC+8)'"
    ts = TimeSql(
        ts=base.ts,
        problem=f"coalesce({base.problem}, CASE WHEN {base.ts} < ?::TIMESTAMP OR {base.ts} >= ?::TIMESTAMP "
        f"THEN {outside} END)",
    )
    behaviour = "lower(c3)"
    sql = events_select(
        src,
        user="c0",
        item="c1",
        time=ts,
        event_type=f"coalesce((?::MAP(VARCHAR, VARCHAR))[{behaviour}], {behaviour})",
        problem=f"CASE WHEN c3 <> '' AND (?::MAP(VARCHAR, VARCHAR))[{behaviour}] IS NULL THEN 'unknown behaviour type \"' || "
        f"{behaviour} || '\" (expected pv, cart, fav or buy)' END",
        raw=raw_fields(5),
        item_categories="CASE WHEN c2 <> '' THEN [c2] ELSE []::VARCHAR[] END",
    )
    # parameters in text order: window start/end (ts_problem), the behaviour map twice, then the reader's
    return Stage(sql, [*WINDOW_UTC, BEHAVIOURS, BEHAVIOURS, *params], item_columns=True, raw_parts=5)
