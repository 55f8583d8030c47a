"""User explorer: find a user, see their events, how their interests moved (also in words), and what the model
recommends; in live mode the page redraws as new events land and marks what is new."""

from __future__ import annotations

import streamlit as st

from dashboard import cache
from dashboard.components import explorer_views, live, panels
from dashboard.components.charts import md_text
from dashboard.components.explorer import recommendations_panel, trajectory_panel
from dashboard.components.friends import friends_panel
from dashboard.components.guards import require_db, require_user
from dashboard.components.user_finder import changed_most, lazy, selected_user, user_finder

st.title("User explorer")

# State set-up: a usable database; the model is optional (the timeline needs none).
db = require_db()
model = cache.active_model()

# Inputs: the user (the sidebar box, bound to ?user=), the finder and the "interests changed most" list, the live switch (?live=).
user = selected_user()
left, right = st.columns([3, 2])
with left:
    user_finder(expanded=not user)
with right:
    changed_most(model, expanded=not user)
user = require_user(db, user)
every = live.controls("user")
drawn = cache.version() if every else None

# Cached calls into core.
history = cache.user_history(db, user)
attrs = cache.user_attributes(db, user)
marks = live.user_marks(db, user, history, model)

# Layout.
c = st.columns(4)
new = len(marks.new_steps) if every else 0
c[0].metric("Events", f"{len(history):,}", delta=f"+{new:,} live" if new else None,
            help="This user's interactions in the log (each view, rating or purchase counts once).")
c[1].metric("Items", f"{history['item_id'].nunique():,}", help="Different items among those events.")
c[2].metric("First event", f"{history['ts'].min():%Y-%m-%d}" if len(history) else "—",
            help="The day of this user's earliest event.")
c[3].metric("Last event", f"{history['ts'].max():%Y-%m-%d}" if len(history) else "—",
            help="The day of this user's latest event: the trajectory and recommendations read up to here.")
if attrs:
    st.caption("Attributes: " + " · ".join(f"{md_text(k)} = {md_text(v)}" for k, v in sorted(attrs.items())))
note = live.caption(marks, every is not None)
if note:
    st.caption("New: " + note)
if history.empty:
    st.info("This user has no events yet.")
    live.watch(every, drawn)
    st.stop()

left, right = st.columns([3, 2])
with left:
    st.subheader("Interest trajectory")
    if model is None:
        panels.no_model()
    else:
        trajectory_panel(db, model, user, marks, every is not None)
with right:
    st.subheader("Top recommendations")
    if model is not None:
        recommendations_panel(db, model, user)

if model is not None and cache.read_card(model.dir)["metrics"].get("social"):
    st.subheader("Friends")
    friends_panel(model, user)

st.plotly_chart(  # built once per user and marks, shared by every session (explorer_views)
    explorer_views.timeline_figure(db, user, explorer_views.steps_key(marks.new_steps if every else None),
                                   explorer_views.steps_key(marks.skipped_steps), marks.trained_until),
    key="user_timeline",
)
st.caption("Every event of this user: time across, category down, one marker shape per event type (crossed: "
           "items new to the model; the dotted line: where its training data ends).")

# drawn only while open (lazy): on a switch its table, CSV and download button are neither built nor sent
with st.expander("Events as a table", **lazy("events", False)) as events_box:
    if events_box.open:
        if every:
            table = panels.history_table(history)
            table.insert(1, "new", table["step"].isin(set(marks.new_steps.tolist())))
            data = panels.csv(table)
        else:
            table, data = explorer_views.events_download(db, user)
        st.dataframe(table, hide_index=True, width="stretch")
        st.download_button("Download events (CSV)", data, f"events_{user}.csv", "text/csv", key="user_csv")

if model is not None:
    panels.report_download(db, model, user, history)
live.watch(every, drawn)
