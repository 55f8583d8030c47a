"""The user explorer's Friends panel (models trained with the social branch): the ego network (colour = the
friend's dominant category now, size = how much of the user's interest they supplied), the social share over time,
and "influenced by" with links to each friend's page. Demo mode shows friends as pseudonyms too."""

from __future__ import annotations

import math
from dataclasses import dataclass
from urllib.parse import quote

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.errors import InterestLensError
from dashboard import cache, demo
from dashboard.cache import DbRef, ModelRef
from dashboard.cache.social import friend_context
from dashboard.components.charts import md_text
from dashboard.components.messages import error_text
from dashboard.reader import READER

__all__ = ["FriendsView", "friends_view", "friends_panel", "ego_figure", "share_figure"]


@dataclass(frozen=True)
class FriendsView:
    """What the panel draws; ids are what the page shows (pseudonyms in demo mode)."""

    friends: pd.DataFrame  # user_id, influence (share of interest supplied), category (dominant now, or "—")
    share: pd.DataFrame  # time, social_share: one row per step of the user's history


@st.cache_data(max_entries=64, show_spinner=False)
def friends_view(db: str, stamp: tuple[int, int, int], model_dir: str, model_stamp: str, user: str) -> FriendsView | None:
    """The panel's data for `user` (the id the page holds), None for a model without the social branch."""
    from core.social.communities import dominant_categories
    from core.social.evidence import user_social_evidence

    model = ModelRef(model_dir, model_stamp)
    loaded = cache.loaded_model(model)
    if loaded.model is None or loaded.model.social is None:
        return None
    p = demo.active()
    with READER.cursor(db, stamp) as con:  # the app's shared read-only connection
        real = (p.resolve(con, user) or demo.NOBODY) if p is not None else user
        # the context the explorer's view of this switch built (one per switch, dashboard.cache.social), which read
        # the friends' dominant categories with their events
        context = friend_context(DbRef(db, stamp), model, con, real)
        ev = user_social_evidence(con, loaded, real, context=context)
        held = context[0].dominant if context is not None else None
        dom = held if held is not None and set(ev.friends) <= held.keys() else dominant_categories(con, ev.friends)
    shown = p.pseudonyms(ev.friends) if p is not None else list(ev.friends)
    friends = pd.DataFrame({"user_id": shown, "influence": ev.influence,
                            "category": [dom[f] or "—" for f in ev.friends]})  # fmt: skip
    share = pd.DataFrame({"time": pd.to_datetime(ev.times, unit="s"), "social_share": ev.social_share})
    return FriendsView(friends.sort_values("influence", ascending=False, ignore_index=True), share)


def ego_figure(view: FriendsView, user: str) -> go.Figure:
    """The user in the middle, friends on a circle: colour = dominant category now, size = influence."""
    f = view.friends
    n = max(len(f), 1)
    ang = [2 * math.pi * k / n for k in range(len(f))]
    x, y = [math.cos(a) for a in ang], [math.sin(a) for a in ang]
    top = float(f["influence"].max()) if len(f) and f["influence"].max() > 0 else 1.0
    fig = go.Figure()
    for xi, yi, w in zip(x, y, f["influence"], strict=True):
        fig.add_trace(go.Scatter(x=[0, xi], y=[0, yi], mode="lines", hoverinfo="skip", showlegend=False,
                                 line={"width": 1 + 5 * float(w) / top, "color": "#bbb"}))  # fmt: skip
    for cat in sorted(set(f["category"])):
        m = f["category"] == cat
        fig.add_trace(go.Scatter(
            x=[xi for xi, k in zip(x, m, strict=True) if k], y=[yi for yi, k in zip(y, m, strict=True) if k],
            mode="markers", name=str(cat), text=list(f.loc[m, "user_id"]),
            customdata=f.loc[m, "influence"].to_numpy(), hovertemplate="%{text}<br>influence %{customdata:.1%}",
            marker={"size": (12 + 30 * f.loc[m, "influence"] / top).tolist()},
        ))  # fmt: skip
    fig.add_trace(go.Scatter(x=[0], y=[0], mode="markers", name="this user", text=[user], hoverinfo="text",
                             marker={"size": 22, "color": "black", "symbol": "star"}))  # fmt: skip
    fig.update_layout(title="Friends (colour: dominant category now; size: influence)", height=380,
                      xaxis={"visible": False}, yaxis={"visible": False, "scaleanchor": "x"},
                      margin={"l": 10, "r": 10, "t": 40, "b": 10})  # fmt: skip
    return fig


def share_figure(view: FriendsView) -> go.Figure:
    """The social share of each step's interest, on the trajectory's time axis."""
    share = view.share
    fig = go.Figure(go.Scatter(x=share["time"].tolist(), y=share["social_share"].tolist(), mode="lines+markers"))
    return fig.update_layout(title="Social share of the interest", yaxis={"tickformat": ".0%", "rangemode": "tozero"},
                             height=260, margin={"l": 10, "r": 10, "t": 40, "b": 10})  # fmt: skip


@st.fragment
def friends_panel(model: ModelRef, user: str) -> None:
    """The Friends panel, or one sentence when the model has no social branch or the user no friends."""
    try:
        db = cache.database()
        view = friends_view(db.path, db.stamp, model.path, model.stamp, user)
    except InterestLensError as exc:
        st.info(error_text(exc))
        return
    if view is None:
        st.info("This model was trained without friends (interestlens train --social uses the social graph).")
        return
    if view.friends.empty:
        st.info("This user has no friends with events in the social graph.")
        return
    left, right = st.columns([3, 2])
    with left:
        st.plotly_chart(ego_figure(view, user), key="friends_ego")
        st.caption("The user (star) and their friends: colour is a friend's main category now, a larger dot "
                   "and a thicker link a friend whose events weigh more in this user's interest.")
        st.plotly_chart(share_figure(view), key="friends_share")
        st.caption("At each step, the share of the user's interest that comes from friends rather than their own "
                   "events.")
    with right:
        st.markdown("**Influenced by**")
        for r in view.friends.head(10).itertuples(index=False):
            st.markdown(f"[{md_text(r.user_id)}](?user={quote(str(r.user_id), safe='')}) — {r.influence:.1%} of "
                        f"the interest · now into {md_text(r.category)}")  # fmt: skip
