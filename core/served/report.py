"""The whole fairness report (`core.fairness.fairness_report`) read from a served log instead of a model.

What production served stands in for a model's lists, one variant at a time:

- each user's list is their *latest* list of the variant (rank ≤ K), served at time s;
- the user's history is their events strictly before s; the test target is their first event at or after s, and
  its rank is its position in the list (not in the list = a miss, as a model's target ranked below K is);
  users with no event after their list have a list (item-side figures) but no quality (user-side figures);
- pop(i) counts item i among those histories (the events the lists were served on), the catalogue is every item
  of the database and of the log;
- the trend is `core.served.fairness.served_trend` (the latest list of each user in each calendar window).

So every figure of the model-based page has its served counterpart, computed by the same functions.
"""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np
import pandas as pd

from core.errors import NotFoundError, UserInputError
from core.fairness import MIN_GROUP_SIZE, TREND_USERS, FairnessInputs, FairnessReport, fairness_report
from core.fairness.inputs import _items, _user_attributes, known_attributes
from core.served.fairness import served_trend
from core.served.metrics import latest_lists, read_served
from core.store import connect_read
from core.store.queries import EVENT_ORDER

__all__ = ["served_variants", "served_inputs", "served_report"]


def served_variants(db: str | os.PathLike | None) -> list[str]:
    """The variants of the database's served log, sorted; [] when it has no served log."""
    with connect_read(db) as con:
        has = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'served'").fetchone()[0]
        if not has:
            return []
        return [str(v) for (v,) in con.execute("SELECT DISTINCT variant FROM served ORDER BY 1").fetchall()]


def served_inputs(db: str | os.PathLike | None, variant: str | None, k: int = 10) -> FairnessInputs:
    """`FairnessInputs` from the served lists of `variant` (None: the log has one variant, or all together).

    Raises
    ------
    NotFoundError : the database has no served log, or none for `variant`.
    UserInputError : K below 1.
    """
    if k < 1:
        raise UserInputError(f"K must be a positive integer, not {k}.")
    with connect_read(db) as con:
        served = read_served(con, variant)
        events = con.execute(f"SELECT user_id, item_id, ts FROM events ORDER BY {EVENT_ORDER}").df()
        item_categories, item_attributes = _items(con)
        users = _user_attributes(con)
    if served.empty:
        raise NotFoundError(f"The served log has no lists of variant {variant!r}." if variant is not None
                            else "The served log is empty.")
    events = events.astype({"user_id": str, "item_id": str})
    lists = latest_lists(served)
    # one list per user: with several variants together, the latest of all (ties: the first variant by name)
    at = lists.groupby("user_id")["served_at"].max()
    lists = lists[lists["served_at"].to_numpy() == at.reindex(lists["user_id"]).to_numpy()]
    lists = lists[lists["variant"] == lists.groupby("user_id")["variant"].transform("min")]
    served_at = lists.groupby("user_id")["served_at"].first()

    ev = events.join(served_at.rename("served_at"), on="user_id", how="inner")
    before = ev["ts"] < ev["served_at"]
    histories = ev.loc[before, ["user_id", "item_id", "ts"]].reset_index(drop=True)
    # events are in canonical order, so the first at or after s is each user's first row of that part
    targets = ev.loc[~before, ["user_id", "item_id", "ts"]].groupby("user_id", sort=True).head(1)
    recs = lists.loc[lists["rank"] <= k, ["user_id", "rank", "item_id"]].astype({"rank": np.int64})
    hit = targets[["user_id", "item_id"]].merge(recs, on=["user_id", "item_id"], how="left")
    eval_users = hit[["user_id", "rank"]].reset_index(drop=True)  # NaN rank = not in the list = a miss
    pop = histories["item_id"].value_counts().rename("pop")
    catalogue = [str(i) for i in pd.Index(item_categories.index.astype(str)).union(events["item_id"].unique())
                 .union(recs["item_id"].unique())]
    pop = pop.reindex(catalogue, fill_value=0).astype(np.int64)
    return FairnessInputs(
        recs=recs.reset_index(drop=True), eval_users=eval_users, histories=histories, pop=pop,
        item_categories=item_categories, catalogue=catalogue, user_attributes=users,
        targets=targets.reset_index(drop=True), item_attributes=item_attributes, events=events,
    )


def served_report(
    db: str | os.PathLike | None, variant: str | None = None, k: int = 10, by: list[str] | None = None,
    n_boot: int | None = 200, freq: str = "month", trend: bool = True, min_group_size: int = MIN_GROUP_SIZE,
    trend_users: int | None = TREND_USERS, inputs: FairnessInputs | None = None,
) -> FairnessReport:
    """`fairness_report` over `served_inputs`, its trend from the served lists per window (`served_trend`).

    Parameters are those of `fairness_report`; `variant` picks the served variant; `inputs` may pass
    `served_inputs(db, variant, k)` already read (the caller's Lorenz curve needs them too). The report's settings gain
    ``source = "served"`` and ``variant``.

    Raises
    ------
    UserInputError : an unknown attribute in `by`, or K below 1.
    NotFoundError : no served log, or none for `variant`.
    """
    inputs = served_inputs(db, variant, k) if inputs is None else inputs
    known = known_attributes(inputs.user_attributes)
    unknown = [b for b in (by or []) if b not in known]
    if unknown:
        raise UserInputError(f"Unknown user attribute {unknown[0]!r}; known attributes: {', '.join(known)}.")
    report = fairness_report(inputs, k=k, by=by, n_boot=n_boot, freq=freq, min_group_size=min_group_size)
    rows = (served_trend(db, variant, k, by, freq, max_users=trend_users, min_users=min_group_size,
                         n_boot=n_boot or 0) if trend else [])
    return replace(report, over_time=rows, settings={**report.settings, "source": "served", "variant": variant,
                                                     "trend_users": trend_users})

