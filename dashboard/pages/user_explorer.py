"""User explorer: find a user, see their events, how their interests moved, and what the model recommends."""

from __future__ import annotations

import streamlit as st

from dashboard import data
from dashboard.components import charts, model_charts, panels
from dashboard.components.charts import md_text
from dashboard.components.guards import require_db, require_user
from dashboard.components.user_finder import changed_most, user_finder, user_input

st.title("User explorer")

# State set-up: a usable database; the model is optional (the timeline needs none).
require_db()
model_dir = data.active_model_dir()

# Inputs: the user (bound to ?user=), the finder and the "interests changed most" list.
user = user_input()
left, right = st.columns([3, 2])
with left:
    user_finder(expanded=not user)
with right:
    changed_most(model_dir, expanded=not user)
user = require_user(user)

# Cached calls into core.
history = data.query("user_history", user)
attrs = data.query("user_attributes", user)

# Layout.
c = st.columns(4)
c[0].metric("Events", f"{len(history):,}")
c[1].metric("Items", f"{history['item_id'].nunique():,}")
c[2].metric("First event", f"{history['ts'].min():%Y-%m-%d}" if len(history) else "—")
c[3].metric("Last event", f"{history['ts'].max():%Y-%m-%d}" if len(history) else "—")
if attrs:
    st.caption("Attributes: " + " · ".join(f"{md_text(k)} = {md_text(v)}" for k, v in sorted(attrs.items())))
if history.empty:
    st.info("This user has no events yet.")
    st.stop()



@st.fragment
def trajectory_panel() -> None:
    if model_dir is None:
        panels.no_model()
        return
    view = st.segmented_control(
        "Interest", list(model_charts.VIEWS), default="model", key="view", bind="query-params"
    ) or "model"
    traj = panels.model_result("trajectory", model_dir, user)
    if traj is None:
        return
    st.plotly_chart(model_charts.trajectory_area(traj, view), key="user_trajectory")
    st.plotly_chart(model_charts.gate_line(traj), key="user_gate")
    st.caption(panels.trajectory_caption(traj))


@st.fragment
def recommendations_panel() -> None:
    if model_dir is None:
        return
    k = st.slider("Recommendations", 5, 50, 10, step=5, key="k", bind="query-params")
    recs = panels.model_result("recommend", model_dir, user, k)
    if recs is None:
        return
    picked = panels.recommendation_table(recs, key="user_recs")
    if picked is not None:
        st.page_link(
            "pages/explain.py", label=f"Explain why item {md_text(picked)} is recommended", icon=":material/lightbulb:",
            query_params={"user": user, "item": picked},
        )
    st.download_button(
        "Download recommendations (CSV)", panels.csv(recs), f"recommendations_{user}.csv", "text/csv",
        key="user_recs_csv",
    )


left, right = st.columns([3, 2])
with left:
    st.subheader("Interest trajectory")
    trajectory_panel()
with right:
    st.subheader("Top recommendations")
    recommendations_panel()

st.plotly_chart(charts.timeline(history), key="user_timeline")

with st.expander("Events as a table"):
    table = panels.history_table(history)
    st.dataframe(table, hide_index=True, width="stretch")
    st.download_button("Download events (CSV)", panels.csv(table), f"events_{user}.csv", "text/csv", key="user_csv")

if model_dir is not None:
    panels.report_download(model_dir, user, history)
