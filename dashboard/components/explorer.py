"""The user explorer's model panels: the interest trajectory (with its drift points and the interest in words at
the end of each segment), the top recommendations (with similar items for a picked one).

All of them draw one cached `user_view` (`core.trajectory.user_view`: history, trajectory, top-K and attention from
one read of the store); each is a fragment, so moving one control redraws one panel.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.contract import supports
from core.errors import InterestLensError
from core.trajectory import GRAINS
from dashboard import cache
from dashboard.cache import DbRef, ModelRef
from dashboard.cache import semantic as sem
from dashboard.components import explorer_views, model_charts, nav, panels
from dashboard.components.charts import md_text
from dashboard.components.live import Marks

__all__ = ["trajectory_panel", "recommendations_panel", "words_table"]


@st.fragment
def trajectory_panel(db: DbRef, model: ModelRef, user: str, marks: Marks, live: bool) -> None:
    """The trajectory (model, long-term, short-term or baseline), the gate and drift, and interests in words."""
    try:
        states = supports(cache.loaded_model(model).scorer, "states")  # an external model: no gate, no components
    except InterestLensError:  # a damaged model: the user view below names the problem in one sentence
        states = True
    views = list(model_charts.VIEWS) if states else ["model", "baseline"]
    view = st.segmented_control("Interest", views, default="model", key="view", bind="query-params") or "model"
    view = view if view in views else "model"
    grain = st.segmented_control(
        "Time grid", ["auto", *GRAINS], default="auto", key="grain", bind="query-params",
        help="auto picks session, day, week or month from the history's span; event is one point per event.",
    ) or "auto"
    uv = panels.computed(cache.user_view, db, model, user)
    if uv is None:
        return
    traj = uv.trajectory
    # built once per user, view, grain and marks, shared by every session (explorer_views)
    new, after = marks.new_steps if live else None, marks.after_training
    figs = explorer_views.trajectory_figures(db, model, user, view, grain, states, explorer_views.steps_key(new),
                                             explorer_views.steps_key(after))
    if figs.bulk is not None:
        st.info(figs.bulk, icon=":material/inventory_2:")
    st.plotly_chart(figs.chart, key="user_trajectory")
    st.caption(figs.caption)
    if figs.gate is not None:
        st.plotly_chart(figs.gate, key="user_gate")
        st.caption(traj.reading())  # how much the recent events weigh, in words (core.trajectory.horizons)
    else:
        st.caption("How much the recent events weigh against the long-term profile is not shown for this model (its interest is read from each "
                   "prefix's scores).")
    with st.expander("Interests in words", expanded=True, icon=":material/translate:"):
        s = sem.status(db)  # any model: the words read its scores (core.semantic.interest_scores)
        if not s.describe:
            st.info(s.message)
            return
        steps = tuple(sorted({max(0, int(c) - 1) for c in traj.change_points} | {len(traj) - 1}))
        words = panels.computed(sem.interest_words, db, model, s, user, steps)
        if words is not None:
            st.dataframe(words_table(words, traj), hide_index=True, width="stretch", key="user_words")
            st.caption("The category names and tags that set this user's interest apart from the catalogue as a "
                       "whole (the model's expected item text minus the catalogue's mean text), and the items nearest "
                       "to it, at the end of each segment between drift points and now.")


def words_table(words, traj) -> pd.DataFrame:
    """One row per described step: when, the nearest terms and the nearest items (titles)."""
    last = len(traj) - 1
    return pd.DataFrame(
        {
            "until": ["now" if p.step == last else f"event {p.step}" for p in words.points],
            "time": [p.ts for p in words.points],
            "interest in words": [p.summary for p in words.points],
            "nearest items": [" · ".join(m.text.split(". ")[0] for m in p.items[:3]) for p in words.points],
        }
    )


@st.fragment
def recommendations_panel(db: DbRef, model: ModelRef, user: str) -> None:
    """The top-K (K from a slider bound to ?k=), a link to explain the picked one and items similar to it."""
    k = st.slider("Recommendations", 5, cache.MAX_K, 10, step=5, key="k", bind="query-params")
    uv = panels.computed(cache.user_view, db, model, user)
    if uv is None:
        return
    recs = uv.recommendations.head(int(k))
    picked = panels.recommendation_table(recs, key="user_recs")
    if picked is not None:
        nav.page_link("explain", "explain", f"Explain why item {md_text(picked)} is recommended",
                      {"user": user, "item": picked}, icon=":material/lightbulb:")
        _similar(db, picked)
    st.download_button(
        "Download recommendations (CSV)", explorer_views.recommendations_csv(db, model, user, int(k)),
        f"recommendations_{user}.csv", "text/csv", key="user_recs_csv",
    )


def _similar(db: DbRef, item: str) -> None:
    s = sem.status(db)
    if not s.describe:
        st.caption(s.message)
        return
    try:
        found = sem.similar(s, item, 5)
    except InterestLensError:  # an item without a text vector
        st.caption(f"No text vector for item {md_text(item)}, so no similar items.")
        return
    table = pd.DataFrame({"item_id": [m.key for m in found], "text": [m.text for m in found],
                          "similarity": [m.score for m in found]})
    st.caption(f"Items whose text is nearest to item {md_text(item)}'s:")
    st.dataframe(table, hide_index=True, width="stretch", key="user_similar",
                 column_config={"similarity": st.column_config.NumberColumn(format="%.3f")})
