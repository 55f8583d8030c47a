"""Overview: what the database holds and how the population's interests move over time; in live mode the event
counters and the volume chart refresh as new events land."""

from __future__ import annotations

import streamlit as st

from dashboard import cache
from dashboard.components import charts, live
from dashboard.components.guards import require_db

st.title("Overview")

# State set-up: a usable, non-empty database or a way forward.
db = require_db()

# Inputs.
period = st.segmented_control(
    "Period", ["day", "week", "month", "quarter", "year"], default="month", key="overview_period", bind="query-params",
    help="The calendar window the charts below count in (UTC).",
) or "month"
every = live.controls("overview")


@st.fragment(run_every=every)
def counters() -> None:
    """Counters and the volume chart: redrawn from cache while nothing changed (`cache.version`), re-queried after a
    writer committed; in live mode every `every` seconds."""
    v = cache.version()
    now = cache.database()  # the fragment reruns alone: read the file's state afresh
    s = cache.dataset_summary(now)
    start = st.session_state.get("_live_since")
    c = st.columns(4)
    c[0].metric("Users", f"{s['users']:,}", help="People with at least one event.")
    c[1].metric("Items", f"{s['items']:,}", help="Things users interacted with (films, products…) with at least one event.")
    c[2].metric("Events", f"{s['events']:,}",
                delta=f"+{v.events - start.events:,} live" if start is not None and v.events > start.events else None,
                help="Single interactions in the log: one user, one item, one time (a view, a rating, a purchase…).")
    c[3].metric("Categories", f"{len(s['categories']):,}", help="The item categories (genres, departments) the "
                "charts group interest by.")
    st.caption(
        f"From {s['first_event']:%Y-%m-%d %H:%M} to {s['last_event']:%Y-%m-%d %H:%M} UTC · event types: "
        + ", ".join(f"{k} {v:,}" for k, v in s["event_types"].items())
    )
    st.plotly_chart(charts.events_over_time(cache.events_over_time(now, period)), key="overview_events")
    st.caption(f"How many events the log holds in each {period}, by event type.")
    if every is not None:
        cache.release()
        st.caption(f"Live: the counters and this chart refresh every {every:g} s (latest run {v.last_run_id}).")


counters()

# Cached calls into core, then layout.
left, right = st.columns(2)
with left:
    st.plotly_chart(charts.category_share(cache.category_share_over_time(db, period)), key="overview_share")
    st.caption("Of all events in each period, the share in each category (an item in several categories counts "
               "a fraction in each): how the population's interest moves.")
with right:
    st.plotly_chart(charts.activity_histogram(cache.activity_distribution(db)), key="overview_activity")
    st.caption("How many users have how many events: most logs have many light users and a few heavy ones.")

top = cache.top_items(db, 15)
st.plotly_chart(charts.top_items(top), key="overview_top")
st.caption("The 15 items with the most events, whatever the event type.")

with st.expander("Top items as a table"):
    table = top.assign(categories=top["categories"].map(", ".join))
    st.dataframe(table, hide_index=True, width="stretch")
    from dashboard.components.panels import csv  # titles that look like formulas are quoted for spreadsheets

    st.download_button("Download CSV", csv(table), "top_items.csv", "text/csv", key="overview_csv")
