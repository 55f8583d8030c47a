"""Activity and tenure groups of every user over the whole log, for cohorts (the Cohorts page segments by them).

The groups are the Fairness report's (`core.fairness.groups`, the same quartile rule and labels); only the moment
they are taken at differs: here each user's last event in the database, there the user's test target.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from core.fairness.groups import groups_from_spans

__all__ = ["LOG_GROUPS", "log_user_groups"]

# The derived groupings a cohort can be cut by (new_vs_returning is left out: as of each user's last event almost
# everyone is "returning", so it does not segment a log).
LOG_GROUPS = ("activity_quartile", "tenure_quartile")


def log_user_groups(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every user's activity and tenure quartile over the whole log.

    Activity is the number of the user's events; tenure the days from their first to their last event. The SQL
    aggregates the log to one row per user, so the events themselves are never loaded.

    Returns
    -------
    DataFrame
        One row per user with at least one event, sorted by user_id: ``user_id``, ``activity_quartile``,
        ``tenure_quartile`` (labels such as ``"Q1 (1-20 events)"``; see `core.fairness.groups.quartile_labels`).
    """
    per = con.execute(
        """SELECT CAST(user_id AS VARCHAR) AS user_id, count(*) AS events, min(ts) AS first, max(ts) AS last
           FROM events GROUP BY 1 ORDER BY 1"""
    ).df()
    per["first"], per["last"] = pd.to_datetime(per["first"]), pd.to_datetime(per["last"])
    return groups_from_spans(per.set_index("user_id"))[["user_id", *LOG_GROUPS]]
