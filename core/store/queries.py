"""The read API over the event store. Every value goes in as a `?` parameter; identifiers that vary
(attribute keys) are matched against a fixed pattern or passed as parameters, never formatted in.

Event order everywhere (training, explanations, replay) is `ORDER BY ts, run_id, seq`: time first,
then ingestion run, then the row's position in its source file.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from core.errors import NotFoundError, UserInputError
from core.store.source import user_predicate

__all__ = [
    "EVENT_ORDER",
    "UserFilter",
    "dataset_summary",
    "list_users",
    "user_history",
    "events_over_time",
    "category_share_over_time",
    "item_lookup",
    "find_items",
    "user_attribute_keys",
    "top_items",
    "activity_distribution",
]

EVENT_ORDER = "ts, run_id, seq"
_PERIODS = {"day", "week", "month", "quarter", "year"}


@dataclass(frozen=True)
class UserFilter:
    """Filters for `list_users`; every field is optional."""

    search: str | None = None  # substring of the user id (case-insensitive)
    attributes: tuple[tuple[str, str], ...] = ()  # (key, value) pairs that must all match
    min_events: int | None = None
    max_events: int | None = None


def _to_dict(m) -> dict:
    """DuckDB MAP values arrive as dicts (or NULL/NA); normalise to a dict."""
    if isinstance(m, dict):
        return m
    return dict(m) if isinstance(m, (list, tuple)) else {}


def _to_list(c) -> list:
    """DuckDB LIST values arrive as lists/arrays (or NULL/NA); normalise to a list."""
    if c is None or c is pd.NA or isinstance(c, float):
        return []
    return list(c)


def dataset_summary(con: duckdb.DuckDBPyConnection) -> dict:
    """Counts, time span, event types and category counts (an event counts once per category of its item)."""
    users, items, events = (con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("users", "items", "events"))
    first, last = con.execute("SELECT min(ts), max(ts) FROM events").fetchone()
    types = dict(con.execute("SELECT event_type, count(*) FROM events GROUP BY 1 ORDER BY 2 DESC").fetchall())
    cats = dict(
        con.execute(
            """SELECT c, count(*) FROM (SELECT unnest(i.categories) AS c FROM events e JOIN items i USING (item_id))
               GROUP BY 1 ORDER BY 2 DESC, 1"""
        ).fetchall()
    )
    return {
        "users": int(users),
        "items": int(items),
        "events": int(events),
        "first_event": first,
        "last_event": last,
        "event_types": {str(k): int(v) for k, v in types.items()},
        "categories": {str(k): int(v) for k, v in cats.items()},
    }


def user_attribute_keys(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The attribute names present on users (e.g. gender, age, occupation)."""
    rows = con.execute("SELECT DISTINCT unnest(map_keys(attributes)) AS k FROM users ORDER BY k").fetchall()
    return [r[0] for r in rows if r[0] is not None]


def list_users(
    con: duckdb.DuckDBPyConnection,
    flt: UserFilter | None = None,
    order: str = "events_desc",
    limit: int = 50,
    offset: int = 0,
) -> pd.DataFrame:
    """Users with their event counts and time span, filtered, ordered and paged.

    Columns: user_id, events, first_event, last_event, attributes (a dict).
    `order` is one of events_desc, events_asc, user_id, recent.
    """
    flt = flt or UserFilter()
    orders = {
        "events_desc": "events DESC, user_id",
        "events_asc": "events ASC, user_id",
        "user_id": "user_id",
        "recent": "last_event DESC NULLS LAST, user_id",
    }
    if order not in orders:
        raise UserInputError(f"Unknown order {order!r}; expected one of {', '.join(orders)}.")
    where, params = ["TRUE"], []
    if flt.search:
        where.append("contains(lower(u.user_id), lower(?))")
        params.append(flt.search)
    for key, value in flt.attributes:
        where.append("u.attributes[?] = ?")
        params += [key, value]
    having, hparams = ["TRUE"], []
    if flt.min_events is not None:
        having.append("coalesce(s.events, 0) >= ?")
        hparams.append(int(flt.min_events))
    if flt.max_events is not None:
        having.append("coalesce(s.events, 0) <= ?")
        hparams.append(int(flt.max_events))
    sql = f"""
        WITH s AS (SELECT user_id, count(*) AS events, min(ts) AS first_event, max(ts) AS last_event
                   FROM events GROUP BY user_id)
        SELECT u.user_id, coalesce(s.events, 0) AS events, s.first_event, s.last_event, u.attributes
        FROM users u LEFT JOIN s USING (user_id)
        WHERE {' AND '.join(where)} AND {' AND '.join(having)}
        ORDER BY {orders[order]}
        LIMIT ? OFFSET ?"""
    df = con.execute(sql, params + hparams + [int(limit), int(offset)]).df()
    df["attributes"] = df["attributes"].map(_to_dict)
    return df


_HISTORY = """SELECT e.ts, e.run_id, e.seq, e.item_id, i.title, i.categories, e.event_type, e.value, e.context
    FROM events e LEFT JOIN items i USING (item_id) WHERE """


def user_history(con: duckdb.DuckDBPyConnection, user_id: str, limit: int | None = None) -> pd.DataFrame:
    """One user's events in the canonical order, with item titles and categories.

    Columns: step, ts, item_id, title, categories, event_type, value, context.
    With `limit`, the latest `limit` events (still in order). Raises NotFoundError for an unknown user.

    This is the app's most frequent lookup, so it is kept cheap: the user's rows sit in one or two row groups
    (ingest stores each run sorted by user), they come back as numpy columns (no per-row pandas objects
    beyond the lists and maps themselves), and the canonical order is applied with one `lexsort` in numpy
    rather than an ORDER BY operator.
    """
    where, params = user_predicate(con, str(user_id))  # names the user's partition on a Parquet store
    r = con.execute(_HISTORY + where, params).fetchnumpy()
    n = len(r["ts"])
    if n == 0:
        known = con.execute("SELECT count(*) FROM users WHERE user_id = ?", [str(user_id)]).fetchall()[0][0]
        if not known:
            raise NotFoundError(f"There is no user {user_id!r} in this database.")
    order = np.lexsort((_plain(r["seq"], 0), _plain(r["run_id"], 0), r["ts"]))  # ts first, then run, then seq
    if limit is not None:
        order = order[max(0, n - int(limit)) :]
    df = pd.DataFrame(
        {
            "step": np.arange(len(order)),
            "ts": r["ts"][order],
            "item_id": r["item_id"][order],
            "title": _plain(r["title"], None)[order],
            "categories": [_to_list(c) for c in _plain(r["categories"], None)[order]],
            "event_type": r["event_type"][order],
            "value": _plain(r["value"], np.nan)[order],
            "context": [_to_dict(m) for m in _plain(r["context"], None)[order]],
        }
    )
    return df


def _plain(col, fill) -> np.ndarray:
    """A fetched column without its NULL mask (NULLs become `fill`; object columns keep None)."""
    if isinstance(col, np.ma.MaskedArray):
        if fill is None:
            out = np.asarray(col.data, dtype=object).copy()
            out[np.ma.getmaskarray(col)] = None
            return out
        return col.filled(fill)
    return np.asarray(col)


def _period(period: str) -> str:
    if period not in _PERIODS:
        raise UserInputError(f"Unknown period {period!r}; expected one of {', '.join(sorted(_PERIODS))}.")
    return period


def events_over_time(con: duckdb.DuckDBPyConnection, period: str = "month") -> pd.DataFrame:
    """Event counts per calendar period and event type. Columns: period, event_type, events."""
    return con.execute(
        """SELECT date_trunc(?, ts) AS period, event_type, count(*) AS events
           FROM events GROUP BY 1, 2 ORDER BY 1, 2""",
        [_period(period)],
    ).df()


def category_share_over_time(con: duckdb.DuckDBPyConnection, period: str = "month") -> pd.DataFrame:
    """Share of events per category and period; an item's weight is split equally over its categories.

    Columns: period, category, weight, share (shares sum to 1 within a period).
    """
    return con.execute(
        """WITH w AS (
               SELECT date_trunc(?, e.ts) AS period, unnest(i.categories) AS category,
                      1.0 / len(i.categories) AS weight
               FROM events e JOIN items i USING (item_id) WHERE len(i.categories) > 0)
           SELECT period, category, sum(weight) AS weight,
                  sum(weight) / sum(sum(weight)) OVER (PARTITION BY period) AS share
           FROM w GROUP BY 1, 2 ORDER BY 1, 2""",
        [_period(period)],
    ).df()


def item_lookup(con: duckdb.DuckDBPyConnection, item_ids: list[str]) -> pd.DataFrame:
    """Titles, categories and popularity of the given items, in the order asked (unknown ids are absent).

    Columns: item_id, title, categories, events.
    """
    ids = [str(i) for i in item_ids]
    df = con.execute(
        """SELECT i.item_id, i.title, i.categories,
                  (SELECT count(*) FROM events e WHERE e.item_id = i.item_id) AS events
           FROM items i WHERE list_contains(?, i.item_id)""",
        [ids],
    ).df()
    pos = {k: n for n, k in enumerate(ids)}
    df = df.sort_values("item_id", key=lambda s: s.map(pos)).reset_index(drop=True)
    df["categories"] = df["categories"].map(_to_list)
    return df


def find_items(con: duckdb.DuckDBPyConnection, text: str, limit: int = 20) -> pd.DataFrame:
    """Items whose title or id contains `text` (case-insensitive), titles starting with it first, then by title.

    Columns: item_id, title. The text is matched literally (``%`` and ``_`` are not wildcards).
    """
    needle = str(text).strip().lower()
    if not needle:
        return pd.DataFrame({"item_id": pd.Series(dtype=object), "title": pd.Series(dtype=object)})
    return con.execute(
        """SELECT item_id, title FROM items
           WHERE contains(lower(coalesce(title, '')), ?) OR contains(lower(item_id), ?)
           ORDER BY NOT starts_with(lower(coalesce(title, '')), ?), title, item_id LIMIT ?""",
        [needle, needle, needle, int(limit)],
    ).df()


def top_items(con: duckdb.DuckDBPyConnection, limit: int = 20) -> pd.DataFrame:
    """The most interacted-with items. Columns: item_id, title, categories, events, users."""
    df = con.execute(
        """SELECT e.item_id, any_value(i.title) AS title, any_value(i.categories) AS categories,
                  count(*) AS events, count(DISTINCT e.user_id) AS users
           FROM events e LEFT JOIN items i USING (item_id)
           GROUP BY e.item_id ORDER BY events DESC, e.item_id LIMIT ?""",
        [int(limit)],
    ).df()
    df["categories"] = df["categories"].map(_to_list)
    return df


def activity_distribution(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Events per user. Columns: user_id, events."""
    return con.execute("SELECT user_id, count(*) AS events FROM events GROUP BY 1 ORDER BY 2 DESC, 1").df()
