"""Fairness: does the recommender serve user groups equally well, and does it spread exposure over the catalogue?
Definitions: ../shared/METRICS.md §3 and docs/fairness.md (all numbers from `core.fairness`)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.errors import InterestLensError
from core.fairness.inputs import default_attributes, known_attributes
from core.fairness.over_time import panel_note
from dashboard import cache
from dashboard.components import fairness_charts as fc
from dashboard.components import panels
from dashboard.components.charts import md_text
from dashboard.components.guards import require_db, require_model

st.title("Fairness")

# State set-up.
db = require_db()
model = require_model()
keys = cache.user_attribute_keys(db)
known = known_attributes(pd.DataFrame(columns=["user_id", *keys]))

# Inputs (bound to the URL so a view can be shared).
c = st.columns([1, 3, 1, 1])
k = c[0].selectbox("K", [5, 10, 20], index=1, key="fairness_k", bind="query-params")
groups = {key: len(cache.attribute_values(db, key)) for key in keys}  # (at most 200 are listed)
by = c[1].multiselect("Group users by", known, default=default_attributes(known, groups)[:4],
                      key="fairness_by", bind="query-params")
freq = c[2].selectbox("Trend window", ["month", "quarter", "week"], key="fairness_window", bind="query-params")
trend = c[3].toggle("Trends", value=True, key="fairness_trend")

# The cached call into core.
try:
    with st.spinner("Computing the fairness report (first time for this model: a few seconds)…", show_time=True):
        view = cache.fairness(db, model, int(k), tuple(by), freq, 200, bool(trend))
except InterestLensError as exc:
    st.error(md_text(exc))
    st.stop()
report = view.report
if view.computed:
    st.caption("Some inputs of this report were computed now because they were not saved with the model; "
               "training saves them, so the next model's report opens at once.")
nd, hr = f"NDCG@{k}", f"HR@{k}"

# Layout.
users_tab, items_tab, calib_tab, trend_tab = st.tabs(["User groups", "Items & exposure", "Calibration", "Over time"])
with users_tab:
    table = fc.group_table(report.users, [nd, hr])
    if table.empty:
        st.info("No user groups to compare: pick attributes above.")
    else:
        gaps = fc.gap_table(report.user_gaps)
        st.dataframe(gaps[gaps["metric"] == nd] if len(gaps) else gaps, hide_index=True, width="stretch")
        for attribute in table["attribute"].unique():
            sub = table[table["attribute"] == attribute]
            st.plotly_chart(fc.group_bars(table, nd, attribute), key=f"fairness_bars_{attribute}")
            if (sub["size"] < 30).any():
                st.caption("Groups with fewer than 30 users are mostly noise; read their intervals.")
        st.dataframe(table, hide_index=True, width="stretch")
        st.download_button("Download user groups (CSV)", panels.csv(table), "fairness_users.csv", "text/csv",
                           key="fairness_users_csv")
with items_tab:
    it = report.items
    m = st.columns(6)
    m[0].metric("Coverage", f"{it.coverage:.1%}")
    m[1].metric(f"Gini@{k}", f"{it.gini:.3f}")
    m[2].metric(f"ARP@{k}", f"{it.arp:.1f}")
    m[3].metric(f"APLT@{k}", f"{it.aplt:.3f}")
    m[4].metric("Popularity lift", f"{it.popularity_lift:+.1%}")
    m[5].metric("Novelty", f"{it.novelty:.2f} bits")
    st.caption(f"{it.users:,} lists over a catalogue of {it.catalogue:,} items; the short head is "
               f"{it.short_head_items:,} items holding 80% of training interactions.")
    st.plotly_chart(fc.lorenz(view.counts, it.gini), key="fairness_lorenz")
    for t in it.exposure:
        st.plotly_chart(fc.exposure_bars(t), key=f"fairness_exposure_{t.grouping}")
        st.dataframe(fc.exposure_table(t), hide_index=True, width="stretch")
with calib_tab:
    cal = report.calibration
    st.metric("Mean miscalibration C_KL(history ‖ list)", f"{cal.mean:.4f}", f"{cal.users:,} users", delta_color="off")
    ctable = fc.group_table(cal.by_group, ["C_KL"]) if cal.by_group else pd.DataFrame()
    if ctable.empty:
        st.info("No calibration by group for these settings.")
    else:
        for attribute in ctable["attribute"].unique():
            st.plotly_chart(fc.group_bars(ctable, "C_KL", attribute), key=f"fairness_calib_{attribute}")
        st.dataframe(ctable, hide_index=True, width="stretch")
with trend_tab:
    frame = fc.trend_frame(report.over_time)
    if frame.empty:
        st.info("No trend: turn **Trends** on, or the log spans too few calendar windows.")
    else:
        note = panel_note(report.over_time)
        if note:
            st.caption(f"Each window scores {note}; item-side figures are those of the panel's lists. "
                       "`interestlens fairness --trend-users 0` scores all.")
        st.plotly_chart(fc.trend_lines(frame, [nd, hr, "coverage", "gini", "aplt"], f"Quality and exposure per {freq}"),
                        key="fairness_trend_quality")
        gap_cols = [col for col in frame.columns if col.startswith("gap:")]
        if gap_cols:
            st.plotly_chart(fc.trend_lines(frame, gap_cols, f"{nd} gap between groups per {freq}"),
                            key="fairness_trend_gaps")
        st.dataframe(frame, hide_index=True, width="stretch")
        st.download_button("Download trends (CSV)", panels.csv(frame), "fairness_trends.csv", "text/csv",
                           key="fairness_trend_csv")
