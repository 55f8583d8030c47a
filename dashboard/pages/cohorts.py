"""Cohorts: define segments by user attributes, activity and tenure, and compare how their interests moved over calendar time."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import cache, demo
from dashboard.components import charts, panels
from dashboard.components.charts import md_text
from dashboard.components.communities import communities_section
from dashboard.components.guards import require_db

st.title("Cohorts")

# State set-up: every setting is bound to the URL (?cohorts_by=, ?cohorts_period=, ...), so a link or a reload
# gives the same comparison.
db = require_db()
c = st.columns(2)
segment = c[0].segmented_control(
    "Segment by", ["attributes", "graph communities"], default="attributes", key="cohorts_by", bind="query-params",
    help="attributes: users who match filters on their attributes, activity or tenure; graph communities: groups of "
         "users found in the friend graph.",
) or "attributes"
period = c[1].segmented_control(
    "Period", ["week", "month", "quarter", "year"], default="month", key="cohorts_period", bind="query-params",
    help="The calendar window each point of the charts covers (UTC).",
) or "month"
if segment == "graph communities":
    communities_section(db, period)
    st.stop()
keys = cache.user_attribute_keys(db)
# Activity and tenure quarters, built from the log as the Fairness page builds them (core.fairness.log_user_groups).
GROUPINGS = {"activity_quartile": ("activity", "Quarter of users by their number of events."),
             "tenure_quartile": ("tenure", "Quarter of users by the days from their first to their last event.")}
if not keys:
    st.caption("Demo mode hides user attributes: cohorts are cut by activity and tenure." if demo.active() is not None
               else "The users in this database have no attributes (gender, age, …): cohorts are cut by activity "
                    "and tenure, which are built from the log.")

# Inputs: two cohorts, each a set of attribute filters (bound to the URL so a comparison can be shared).
model = cache.active_model()
source = st.segmented_control(
    "Interest from", ["events", "model"], default="events", key="cohorts_source", bind="query-params",
    help="events: the categories of what members did in each period; model: the mean of members' model interest "
         "(core.trajectory.cohort_trajectory; slower, every member's trajectory is computed)",
) or "events"
if source == "model" and model is None:
    st.info("Model interest needs a trained model; showing the events instead.")
    source = "events"
cohorts: dict[str, tuple[tuple[str, str], ...]] = {}  # attribute filters
derived: dict[str, tuple[tuple[str, str], ...]] = {}  # activity/tenure group filters
for name, col in zip("AB", st.columns(2), strict=True):
    with col.container(border=True):
        st.markdown(f"**Cohort {name}**")
        chosen, groups = [], []
        for key in keys:
            values = ["any", *cache.attribute_values(db, key)]
            v = st.selectbox(key, values, key=f"cohorts_{name.lower()}_{key}", bind="query-params")
            if v and v != "any":
                chosen.append((key, v))
        for grouping, (text, help_) in GROUPINGS.items():
            v = st.selectbox(text, ["any", *cache.group_labels(db, grouping)], key=f"cohorts_{name.lower()}_{grouping}",
                             bind="query-params", help=help_)
            if v and v != "any":
                groups.append((grouping, v))
        cohorts[name], derived[name] = tuple(chosen), tuple(groups)


def label(filters: tuple[tuple[str, str], ...], groups: tuple[tuple[str, str], ...]) -> str:
    parts = [f"{md_text(k)}={md_text(v)}" for k, v in filters]
    parts += [f"{GROUPINGS[k][0]} {md_text(v)}" for k, v in groups]
    return " & ".join(parts) or "everyone"


# Cached calls into core.
sizes = {n: cache.cohort_sizes(db, f, derived[n]) for n, f in cohorts.items()}
if source == "model":
    model_shares = {n: panels.computed(cache.cohort_trajectories, db, model, f, period, derived[n])
                    for n, f in cohorts.items()}
    shares = {n: (r.fold(10).frame() if r is not None else pd.DataFrame(columns=["period", "category", "share"]))
              for n, r in model_shares.items()}
else:
    shares = {n: cache.cohort_category_share(db, f, period, derived[n]) for n, f in cohorts.items()}

# Layout.
cols = st.columns(2)
for (n, f), col in zip(cohorts.items(), cols, strict=True):
    with col:
        s = sizes[n]
        st.metric(f"Cohort {n}: {label(f, derived[n])}", f"{s['users']:,} users", f"{s['events']:,} events", delta_color="off",
                  help="A cohort is the group of users who match every filter above ('everyone' when none is set).")
        if s["users"] < 30:
            st.caption("Fewer than 30 users: differences from this cohort are mostly noise.")
        if shares[n].empty:
            st.info("No categorised events in this cohort.")
        else:
            st.plotly_chart(
                charts.category_share(shares[n], title=f"{'Model interest' if source == 'model' else 'Category share'}, cohort {n}"),
                key=f"cohorts_share_{n}",
            )
            st.caption(f"Of cohort {n}'s {'model interest' if source == 'model' else 'events'} in each {period}, "
                       "the share in each category.")

both = pd.concat([df.assign(cohort=n) for n, df in shares.items() if not df.empty], ignore_index=True)
if both.empty:
    st.stop()
categories = sorted(both["category"].unique())
category = st.selectbox("Compare one category", categories, key="cohorts_category", bind="query-params")
st.plotly_chart(charts.cohort_comparison(both, category), key="cohorts_compare")
st.caption("Each line is one cohort: the share of its members' interest in this category, period by period.")

if "weight" not in both.columns:  # model interest: no event weights to pool over the whole period
    st.download_button("Download (CSV)", panels.csv(both), "cohorts.csv", "text/csv", key="cohorts_csv")
    st.stop()
overall = both.groupby(["cohort", "category"])["weight"].sum().unstack("cohort").fillna(0.0)
overall = (overall / overall.sum()).rename(columns=lambda n: f"share {n}")
if {"share A", "share B"} <= set(overall.columns):
    overall["B − A"] = overall["share B"] - overall["share A"]
overall = overall.sort_values(overall.columns[-1]).reset_index()
st.subheader("Share of each category over the whole period")
st.caption("Of each cohort's events, the share in each category; 'B − A' is how many points more cohort B gives it "
           "than cohort A (negative: less).")
st.dataframe(overall, hide_index=True, width="stretch", column_config={
    c: st.column_config.NumberColumn(format="percent") for c in overall.columns if c != "category"
})
st.download_button("Download (CSV)", panels.csv(both), "cohorts.csv", "text/csv", key="cohorts_csv")
