"""Read-only views the dashboard (and any CLI that wants them) needs beyond `core.store.queries`:
user look-ups, attribute values for filters, cohort category shares, and how well a trained model still fits
the database. Every value goes in as a `?` parameter.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import duckdb
import pandas as pd

from core.errors import UserInputError

__all__ = [
    "ModelFit",
    "user_exists",
    "user_attributes",
    "attribute_values",
    "cohort_category_share",
    "cohort_sizes",
    "model_fit",
    "ingest_runs",
    "run_rejects",
]

_PERIODS = {"day", "week", "month", "quarter", "year"}


def user_exists(con: duckdb.DuckDBPyConnection, user_id: str) -> bool:
    """True when the user has a row in `users` or at least one event."""
    row = con.execute(
        """SELECT EXISTS (SELECT 1 FROM users WHERE user_id = ?) OR EXISTS (SELECT 1 FROM events WHERE user_id = ?)""",
        [str(user_id), str(user_id)],
    ).fetchone()
    return bool(row[0])


def user_attributes(con: duckdb.DuckDBPyConnection, user_id: str) -> dict[str, str]:
    """One user's attributes ({} for a user without any, or unknown)."""
    rows = con.execute("SELECT attributes FROM users WHERE user_id = ?", [str(user_id)]).fetchall()
    m = rows[0][0] if rows else None
    return {str(k): str(v) for k, v in (m.items() if isinstance(m, dict) else [])}


def attribute_values(con: duckdb.DuckDBPyConnection, key: str, limit: int = 200) -> list[str]:
    """The distinct values of one user attribute, most common first (at most `limit`)."""
    rows = con.execute(
        """SELECT attributes[?] AS v, count(*) AS n FROM users
           WHERE attributes[?] IS NOT NULL GROUP BY 1 ORDER BY n DESC, v LIMIT ?""",
        [key, key, int(limit)],
    ).fetchall()
    return [str(r[0]) for r in rows]


def _cohort_where(attributes: Sequence[tuple[str, str]], users: Sequence[str] | None) -> tuple[str, list]:
    where, params = ["TRUE"], []
    for key, value in attributes:
        where.append("u.attributes[?] = ?")
        params += [str(key), str(value)]
    if users is not None:  # the ids go in as one list parameter, never into the SQL text
        where.append("u.user_id IN (SELECT unnest(?::VARCHAR[]))")  # a hash semi-join, not a scan per row
        params.append([str(x) for x in users])
    return " AND ".join(where), params


def cohort_sizes(
    con: duckdb.DuckDBPyConnection, attributes: Sequence[tuple[str, str]], users: Sequence[str] | None = None
) -> dict:
    """Users and events in the cohort whose attributes match every (key, value) pair and, when `users` is given,
    whose id is one of them (e.g. an activity quartile, `core.fairness.group_members`)."""
    where, params = _cohort_where(attributes, users)
    users, events = con.execute(
        f"""SELECT count(DISTINCT u.user_id), count(e.user_id)
            FROM users u LEFT JOIN events e USING (user_id) WHERE {where}""",
        params,
    ).fetchone()
    return {"users": int(users), "events": int(events)}


def cohort_category_share(
    con: duckdb.DuckDBPyConnection,
    attributes: Sequence[tuple[str, str]],
    period: str = "month",
    users: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Observed category share per calendar period for one cohort (attribute filters; none = everyone; `users`
    further restricts it to those ids, as in `cohort_sizes`).

    An item's weight is split equally over its categories, as in `queries.category_share_over_time`.
    Columns: period, category, weight, share (shares sum to 1 within a period).
    """
    if period not in _PERIODS:
        raise UserInputError(f"Unknown period {period!r}; expected one of {', '.join(sorted(_PERIODS))}.")
    where, params = _cohort_where(attributes, users)
    return con.execute(
        f"""WITH w AS (
               SELECT date_trunc(?, e.ts) AS period, unnest(i.categories) AS category,
                      1.0 / len(i.categories) AS weight
               FROM events e JOIN items i USING (item_id) JOIN users u USING (user_id)
               WHERE len(i.categories) > 0 AND {where})
           SELECT period, category, sum(weight) AS weight,
                  sum(weight) / sum(sum(weight)) OVER (PARTITION BY period) AS share
           FROM w GROUP BY 1, 2 ORDER BY 1, 2""",
        [period, *params],
    ).df()


@dataclass(frozen=True)
class ModelFit:
    """How a trained model relates to the database as it is now."""

    events_now: int  # events in the database
    events_after: int  # events with ts later than the last event the model was trained on
    unseen_items: int  # items with events in the database that are not in the model's vocabulary
    unseen_categories: list[str] = field(default_factory=list)  # categories the model has never seen
    unseen_event_types: list[str] = field(default_factory=list)  # event types the model has never seen

    @property
    def fits(self) -> bool:
        """True when every item, category and event type in the database is known to the model."""
        return not (self.unseen_items or self.unseen_categories or self.unseen_event_types)


def model_fit(
    con: duckdb.DuckDBPyConnection,
    items: Sequence[str],
    categories: Sequence[str],
    event_types: Sequence[str],
    trained_until: dt.datetime | None,
) -> ModelFit:
    """Compare a model's vocabulary and training cut-off with the database.

    Parameters
    ----------
    items, categories, event_types
        The model's vocabulary (`Vocab.items`, `Vocab.categories`, `Vocab.event_types`).
    trained_until
        The latest event time the model was trained on (naive UTC), or None when unknown.
    """
    events_now = int(con.execute("SELECT count(*) FROM events").fetchone()[0])
    after = 0
    if trained_until is not None:
        after = int(con.execute("SELECT count(*) FROM events WHERE ts > ?", [trained_until]).fetchone()[0])
    # Anti-joins against the vocabulary (a list_contains per row would be O(events × catalogue)).
    unseen_items = int(
        con.execute(
            """SELECT count(*) FROM (SELECT DISTINCT item_id FROM events) e
               ANTI JOIN (SELECT unnest(?::VARCHAR[]) AS item_id) v USING (item_id)""",
            [[str(i) for i in items]],
        ).fetchone()[0]
    )
    cats = con.execute(
        """SELECT DISTINCT c.c FROM (SELECT unnest(categories) AS c FROM items
                                   WHERE item_id IN (SELECT DISTINCT item_id FROM events)) c
           ANTI JOIN (SELECT unnest(?::VARCHAR[]) AS c) v USING (c)
           WHERE c.c IS NOT NULL ORDER BY 1""",
        [[str(c) for c in categories]],
    ).fetchall()
    types = con.execute(
        """SELECT t.event_type FROM (SELECT DISTINCT event_type FROM events) t
           ANTI JOIN (SELECT unnest(?::VARCHAR[]) AS event_type) v USING (event_type) ORDER BY 1""",
        [[str(t) for t in event_types]],
    ).fetchall()
    return ModelFit(
        events_now=events_now,
        events_after=after,
        unseen_items=unseen_items,
        unseen_categories=[r[0] for r in cats],
        unseen_event_types=[r[0] for r in types],
    )


def ingest_runs(con: duckdb.DuckDBPyConnection, limit: int = 50) -> pd.DataFrame:
    """The latest ingest runs, newest first (failed ones too). Columns as in the `ingest_runs` table."""
    return con.execute(
        """SELECT run_id, source, preset, status, accepted, rejected, duplicates, message, started_at, finished_at
           FROM ingest_runs ORDER BY run_id DESC LIMIT ?""",
        [int(limit)],
    ).df()


def run_rejects(con: duckdb.DuckDBPyConnection, run_id: int, limit: int = 1000) -> pd.DataFrame:
    """The rows one run rejected, in source order: row_number, reason, raw (the row as text)."""
    return con.execute(
        "SELECT row_number, reason, raw FROM rejects WHERE run_id = ? ORDER BY row_number LIMIT ?",
        [int(run_id), int(limit)],
    ).df()
