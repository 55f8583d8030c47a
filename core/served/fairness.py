"""A fairness trend read from a served log instead of a model: the same per-window metrics as
`core.fairness.over_time`, the lists being what was served (each user's latest list in the window)."""

from __future__ import annotations

import os

from core.fairness import MIN_GROUP_SIZE, WindowRow, over_time, popularity_recommender
from core.fairness.inputs import _items, _user_attributes
from core.served.metrics import read_served, served_lists
from core.store import connect_read
from core.store.queries import EVENT_ORDER

__all__ = ["served_trend"]


def served_trend(
    db: str | os.PathLike | None, variant: str | None = None, k: int = 10, by: list[str] | None = None,
    freq: str = "month", max_users: int | None = None, min_users: int = MIN_GROUP_SIZE, n_boot: int = 200,
) -> list[WindowRow]:
    """`over_time` on the served lists of `variant` (None: every variant together) in database `db`.

    Lists served in [start, end) are scored against each user's first event of the next window, exactly as a
    model's lists made at `end` are; so a log written from a model's lists gives that model's trend. `min_users`
    and `n_boot` as in `over_time` (windows below the minimum marked, bootstrap intervals per window).
    """
    with connect_read(db) as con:
        served = read_served(con, variant)
        events = con.execute(f"SELECT user_id, item_id, ts FROM events ORDER BY {EVENT_ORDER}").df()
        item_categories, _ = _items(con)
        users = _user_attributes(con)
    # popularity_recommender is never called: `lists` supplies every window's lists
    return over_time(events, popularity_recommender, k, item_categories, users, by, freq, min_users=min_users,
                     max_users=max_users, lists=served_lists(served), n_boot=n_boot)
