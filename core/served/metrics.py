"""What a served log says without any model: exposure, coverage, Gini, popularity bias, calibration and uptake
per calendar window and variant, and the lists a fairness trend reads instead of a model's.

A window is [start, end) of `served_at` (UTC calendar windows, `core.fairness.calendar_windows`). Within a window,
each user's *latest* list counts for the list metrics (a user served five times weighs as one user, as a model's
trend does); uptake counts every served row. Popularity and the users' histories are the events before the
window's end, as a trend's are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from core.errors import NotFoundError
from core.fairness import calendar_windows, item_summary, miscalibration

__all__ = ["ServedWindow", "read_served", "latest_lists", "served_lists", "served_over_time"]


@dataclass(frozen=True)
class ServedWindow:
    """One variant's served lists in one window."""

    variant: str
    start: pd.Timestamp
    end: pd.Timestamp
    lists: int  # lists served (user, served_at) in the window
    users: int  # users with a list
    metrics: dict[str, float]  # coverage, gini, arp, aplt, popularity_lift, novelty, C_KL, consumed_within_<N>d


def read_served(con: duckdb.DuckDBPyConnection, variant: str | None = None) -> pd.DataFrame:
    """The served log (user_id, item_id, rank, score, served_at, variant), optionally one variant."""
    has = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'served'").fetchone()[0]
    if not has:
        raise NotFoundError("This database has no served log.", next_step="load_served")
    where, params = ("WHERE variant = ?", [variant]) if variant is not None else ("", [])
    df = con.execute(f"SELECT user_id, item_id, rank, score, served_at, variant FROM served {where} "
                     "ORDER BY served_at, user_id, variant, rank", params).df()
    return df.astype({"user_id": str, "item_id": str, "variant": str})


def latest_lists(served: pd.DataFrame) -> pd.DataFrame:
    """Each (user, variant)'s latest list: the rows with that pair's largest served_at."""
    if served.empty:
        return served
    last = served.groupby(["user_id", "variant"])["served_at"].transform("max")
    return served[served["served_at"] == last].reset_index(drop=True)


def served_lists(served: pd.DataFrame) -> Callable[[pd.Timestamp, pd.Timestamp], pd.DataFrame]:
    """For `core.fairness.over_time(lists=...)`: the latest list of each user served in [start, end)."""

    def lists(start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        inside = served[(served["served_at"] >= start) & (served["served_at"] < end)]
        return latest_lists(inside)[["user_id", "rank", "item_id"]]

    return lists


def _consumed(rows: pd.DataFrame, events: pd.DataFrame, days: int) -> float:
    """Share of served rows whose user has an event with that item within `days` days after serving."""
    if rows.empty:
        return float("nan")
    hit = rows[["user_id", "item_id", "served_at"]].reset_index().merge(events[["user_id", "item_id", "ts"]],
                                                                     on=["user_id", "item_id"], how="inner")
    ok = (hit["ts"] >= hit["served_at"]) & (hit["ts"] <= hit["served_at"] + pd.Timedelta(days=days))
    return float(hit.loc[ok, "index"].nunique() / len(rows))


def served_over_time(
    events: pd.DataFrame, served: pd.DataFrame, item_categories: pd.Series, freq: str = "month", within_days: int = 7,
) -> list[ServedWindow]:
    """Per variant and window: list metrics of the latest lists and uptake within `within_days` days.

    Parameters
    ----------
    events : the log (user_id, item_id, ts), any order.
    served : `read_served`.
    item_categories : item_id → list of categories (for C_KL).
    freq : day, week, month, quarter or year (UTC calendar windows).
    within_days : N of "served, then consumed within N days".
    """
    if served.empty:
        return []
    ev = events.assign(user_id=events["user_id"].astype(str), item_id=events["item_id"].astype(str))
    ts = ev["ts"].to_numpy()
    out: list[ServedWindow] = []
    for variant, rows in served.groupby("variant", sort=True):
        for start, end in calendar_windows(rows["served_at"], freq):
            inside = rows[(rows["served_at"] >= start) & (rows["served_at"] < end)]
            if inside.empty:
                continue
            recs = latest_lists(inside)
            before = ev[ts < np.datetime64(end.to_datetime64())]
            pop = before["item_id"].value_counts()
            histories = before[before["user_id"].isin(recs["user_id"].unique())]
            catalogue = pop.index.union(pd.Index(recs["item_id"].unique()))
            k = int(recs["rank"].max())
            summary = item_summary(recs[["user_id", "rank", "item_id"]], pop, histories, catalogue, k)
            metrics = {key: float(v) for key, v in summary.items() if key != "users"}
            ckl = miscalibration(histories, recs[["user_id", "rank", "item_id"]], item_categories)
            metrics["C_KL"] = float(ckl.mean()) if ckl.notna().any() else float("nan")
            metrics[f"consumed_within_{within_days}d"] = _consumed(inside, ev, within_days)
            n_lists = int(inside[["user_id", "served_at"]].drop_duplicates().shape[0])
            out.append(ServedWindow(str(variant), start, end, n_lists, int(recs["user_id"].nunique()), metrics))
    return out
