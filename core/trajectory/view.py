"""One user's view for the explorer: history, trajectory, recommendations and attention from one read of the store.

Reading the store is most of the time a user switch takes (bench/dashboard.py), so the history is read once,
mapped to model indices in memory (`TrajectoryAnalyzer.history_of`, the same mapping as `load_sequences`), and the
trajectory, the top-K (`core.recommend.recommend`, so the list is exactly the one `recommend_users` gives) and the
attention at the last step (`core.attention.AttentionAnalyzer.at_step`) are computed from it; the forward passes
themselves take a few milliseconds. A social model's trajectory and top-K both read the user's friends (one friend
context, `TrajectoryAnalyzer.friends_hook`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd

from core.errors import NotFoundError, UserInputError
from core.friends.context import SocialContext
from core.recommend import recommend
from core.store import user_history
from core.trajectory.analyzer import TrajectoryAnalyzer
from core.trajectory.result import Trajectory
from core.trajectory.sidecar import UserViews

__all__ = ["UserView", "user_view", "item_titles"]


@dataclass
class UserView:
    """What the user explorer draws for one user."""

    user_id: str
    history: pd.DataFrame  # `core.store.user_history` (step, ts, item_id, title, categories, event_type, value, context)
    trajectory: Trajectory
    recommendations: pd.DataFrame  # rank, item_id, score, title, categories (seen items excluded)
    attention: Any | None  # core.attention.StepAttention at the last step; None when not asked or nothing is known
    unknown_items: list[str]  # items of the history the model has never seen (it skips them), first seen first


def item_titles(con: duckdb.DuckDBPyConnection, item_ids: list[str]) -> pd.DataFrame:
    """Titles and categories of the given items, in the order asked (ids without a row get empty ones).

    Columns: item_id, title, categories (a list).
    """
    ids = [str(i) for i in item_ids]
    rows = con.execute(
        "SELECT item_id, title, categories FROM items WHERE item_id IN (SELECT unnest(?::VARCHAR[]))", [ids]
    ).fetchall()
    found = {r[0]: (r[1], list(r[2]) if r[2] is not None else []) for r in rows}
    return pd.DataFrame(
        {
            "item_id": ids,
            "title": [found.get(i, (None, []))[0] for i in ids],
            "categories": [found.get(i, (None, []))[1] for i in ids],
        }
    )


def user_view(
    analyzer: TrajectoryAnalyzer, con: duckdb.DuckDBPyConnection, user_id: str, k: int = 10, attention: Any | None = None,
    views: UserViews | None = None, history: pd.DataFrame | None = None,
    friends: tuple[SocialContext, int] | None = None,
) -> UserView:
    """The explorer's view of one user (see the module docstring); with an `attention` analyser
    (`core.attention.AttentionAnalyzer` of the same model) also the attention at the last step.

    `views`: the model's views sidecar (`core.trajectory.sidecar`, checked with `usable_for` by the caller); when
    it holds this user's view computed from this very history, the trajectory and top-K are read from it (equal
    to the live computation to ~1e-7) instead of running the model and the change points. `history`: the user's
    `core.store.user_history` frame when the caller has read it already (it is not read again). `friends`: a
    social model's friend context for this user and their row in it (`core.friends.context.user_context`) when the
    caller holds it already, e.g. to share it with the Friends panel (`core.social.evidence.user_social_evidence`);
    without it the view builds its own.

    Raises NotFoundError for a user without events.
    """
    loaded = analyzer.loaded
    df = user_history(con, str(user_id)) if history is None else history
    if df.empty:
        raise NotFoundError(f"User {user_id!r} has no events, so there is no trajectory to show.")
    history = analyzer.history_of(df)
    steps = pd.DataFrame({"index": range(len(df)), "time": df["ts"], "item": df["item_id"], "title": df["title"]})
    stored = views.stored(str(user_id), history, int(k)) if views is not None and not analyzer.social else None
    if stored is not None:  # the top-k of a stored longer list is the live top-k (best first, same ties)
        traj = analyzer.stored(str(user_id), history, steps, stored.series, stored.change_points)
        top = stored.top
    else:
        hook = analyzer.friends_hook(con, str(user_id), friends)  # a social model reads the user's friends for both
        traj = analyzer.build(str(user_id), history, steps, analyzer.social_outputs(con, str(user_id), history, hook))
        top = recommend(loaded, [history], int(k), friends=hook)[0]
    ids = [loaded.vocab.item_id(i) for i, _ in top]
    info = item_titles(con, ids)
    recs = pd.DataFrame({"rank": range(1, len(top) + 1), "item_id": ids, "score": [s for _, s in top]})
    recs = recs.assign(title=info["title"].to_numpy(), categories=info["categories"].to_list())
    att = None
    if attention is not None and (history.items > 0).any():
        try:
            att = attention.at_step(history, None)
        except UserInputError:  # nothing the model knows up to the last step
            att = None
    unknown = list(dict.fromkeys(str(i) for i, x in zip(df["item_id"], history.items, strict=True) if x == 0))
    return UserView(str(user_id), df, traj, recs, att, unknown)
