"""Timestamps from text in SQL: unix seconds, unix milliseconds or ISO-8601, each with a reason when a value
does not fit, and detection of which one a generic column holds.

Each function takes a SQL expression of type VARCHAR (a column such as `c3`) and returns SQL for the
`ts` (naive UTC TIMESTAMP, NULL when unusable) and `ts_problem` (NULL when fine) stage columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import duckdb

__all__ = ["TimeSql", "UnitGuess", "guess_unit", "time_sql"]

Unit = Literal["s", "ms", "iso"]

# Unix seconds of 1e11 are in the year 5138 and unix milliseconds of 1e11 are in 1973: a number at or above
# 1e11 read as seconds is almost surely milliseconds, and one below it read as milliseconds is seconds.
_MS_THRESHOLD = 1e11


@dataclass(frozen=True)
class TimeSql:
    """SQL for the `ts` and `ts_problem` stage columns."""

    ts: str
    problem: str


def time_sql(x: str, unit: Unit) -> TimeSql:
    """`ts` / `ts_problem` SQL for the text expression `x` read as `unit`."""
    missing = f"{x} IS NULL OR {x} = ''"
    if unit == "iso":
        parsed = f"CAST(TRY_CAST(trim({x}) AS TIMESTAMPTZ) AS TIMESTAMP)"  # the session time zone is UTC
        return TimeSql(
            ts=parsed,
            problem=f"""CASE WHEN {parsed} IS NULL THEN CASE WHEN {missing} THEN 'missing timestamp'
                ELSE 'timestamp is not ISO-8601 text' END END""",
        )
    n = f"TRY_CAST({x} AS DOUBLE)"
    if unit == "s":
        micros = f"CAST(round({n} * 1000000) AS BIGINT)"
        ok = f"{n} >= 0 AND {n} < {_MS_THRESHOLD}"
        wrong_unit = f"WHEN {n} >= {_MS_THRESHOLD} THEN 'timestamp looks like milliseconds where seconds were expected'"
    else:
        micros = f"CAST(round({n} * 1000) AS BIGINT)"
        ok = f"{n} >= {_MS_THRESHOLD} AND {n} < {_MS_THRESHOLD * 1000}"
        wrong_unit = (
            f"WHEN {n} >= 0 AND {n} < {_MS_THRESHOLD} THEN 'timestamp looks like seconds where milliseconds were expected'"
            f" WHEN {n} >= {_MS_THRESHOLD * 1000} THEN 'timestamp in the future'"
        )
    ts = f"CASE WHEN {ok} THEN make_timestamp({micros}) END"
    # the reasons are worked out only for the few rows without a timestamp (CASE evaluates lazily)
    return TimeSql(
        ts=ts,
        problem=f"""CASE WHEN ({ts}) IS NULL THEN CASE WHEN {missing} THEN 'missing timestamp'
            WHEN {n} IS NULL OR NOT isfinite({n}) THEN 'timestamp is not a number'
            {wrong_unit}
            WHEN {n} < 0 THEN 'timestamp before 1990' END END""",
    )


@dataclass(frozen=True)
class UnitGuess:
    """What a time column's sample looks like, and the sentence that states the assumption."""

    unit: Unit
    sentence: str


def guess_unit(con: duckdb.DuckDBPyConnection, sample_sql: str, params: list, column: str, rows: int) -> UnitGuess:
    """Detect seconds, milliseconds or ISO text from a sample (`sample_sql` yields one text column `x`).

    Numbers win when at least half of the non-empty values are numbers; then the median decides
    between seconds and milliseconds (see `_MS_THRESHOLD`).
    """
    filled, numbers, median = con.execute(
        f"""SELECT count(*) FILTER (x IS NOT NULL AND trim(x) <> ''), count(TRY_CAST(trim(x) AS DOUBLE)),
                   median(TRY_CAST(trim(x) AS DOUBLE)) FROM ({sample_sql})""",
        params,
    ).fetchall()[0]
    where = f"detected from the first {rows:,} rows"
    if filled and numbers * 2 >= filled:
        unit: Unit = "ms" if median >= _MS_THRESHOLD else "s"
        word = "milliseconds" if unit == "ms" else "seconds"
        return UnitGuess(
            unit,
            f"The time column {column!r} holds numbers around {median:.3g}, read as unix {word} ({where}); "
            f"values that do not fit are rejected.",
        )
    return UnitGuess(
        "iso",
        f"The time column {column!r} holds text, read as ISO-8601 ({where}); times without a UTC offset are "
        f"taken as UTC.",
    )
