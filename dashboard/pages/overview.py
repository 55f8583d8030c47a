"""Overview: what the database holds and how the population's interests move over time."""

from __future__ import annotations

import streamlit as st

from dashboard import data
from dashboard.components import charts
from dashboard.components.guards import require_db

st.title("Overview")

# State set-up: a usable, non-empty database or a way forward.
summary = require_db()

# Inputs.
period = st.segmented_control(
    "Period", ["day", "week", "month", "quarter", "year"], default="month", key="overview_period", bind="query-params"
) or "month"


@st.fragment
def counters() -> None:
    s = data.query("dataset_summary")
    c = st.columns(4)
    c[0].metric("Users", f"{s['users']:,}")
    c[1].metric("Items", f"{s['items']:,}")
    c[2].metric("Events", f"{s['events']:,}")
    c[3].metric("Categories", f"{len(s['categories']):,}")
    st.caption(
        f"From {s['first_event']:%Y-%m-%d %H:%M} to {s['last_event']:%Y-%m-%d %H:%M} UTC · event types: "
        + ", ".join(f"{k} {v:,}" for k, v in s["event_types"].items())
    )


counters()

# Cached calls into core, then layout.
left, right = st.columns(2)
with left:
    st.plotly_chart(charts.events_over_time(data.query("events_over_time", period)), key="overview_events")
with right:
    st.plotly_chart(charts.category_share(data.query("category_share_over_time", period)), key="overview_share")

left, right = st.columns(2)
with left:
    st.plotly_chart(charts.activity_histogram(data.query("activity_distribution")), key="overview_activity")
with right:
    top = data.query("top_items", 15)
    st.plotly_chart(charts.top_items(top), key="overview_top")

with st.expander("Top items as a table"):
    table = top.assign(categories=top["categories"].map(", ".join))
    st.dataframe(table, hide_index=True, width="stretch")
    from dashboard.components.panels import csv  # titles that look like formulas are quoted for spreadsheets

    st.download_button("Download CSV", csv(table), "top_items.csv", "text/csv", key="overview_csv")
