"""Fairness: does the recommender serve user groups equally well, and does it spread exposure over the catalogue?
Definitions: ../shared/METRICS.md §3 and docs/fairness.md (all numbers from `core.fairness`)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.errors import InterestLensError
from core.fairness import MIN_GROUP_SIZE
from core.fairness.inputs import default_attributes, known_attributes
from core.fairness.over_time import panel_note, shown_windows
from dashboard import cache
from dashboard.components import fairness_charts as fc
from dashboard.components import panels
from dashboard.components.charts import md_text
from dashboard.components.guards import require_db, require_model
from dashboard.components.messages import error_text

st.title("Fairness")

# State set-up: the source is the active model, or one variant of a served log (`interestlens ingest-recs`).
db = require_db()
MODEL_SOURCE, SERVED = "model", "served:"  # the URL holds the option itself: ?fairness_source=served:<variant>
variants = cache.served_variants(db)
source = MODEL_SOURCE
if variants:
    source = st.selectbox("Source", [MODEL_SOURCE, *(SERVED + v for v in variants)], key="fairness_source",
                          bind="query-params",
                          help="The active model's lists, or a variant of the served log (what production showed: "
                               "each user's latest list of that variant, judged against their next event after it).")
served = source.startswith(SERVED)
variant = source.removeprefix(SERVED)
model = None if served else require_model()
keys = cache.user_attribute_keys(db)
GROUPINGS = {"activity_quartile": "activity (events per user, in quarters)",
             "tenure_quartile": "tenure (time since first event, in quarters)",
             "new_vs_returning": "new (first event in the test period) vs returning", "age_band": "age band"}
known = known_attributes(pd.DataFrame(columns=["user_id", *keys]))

# Inputs (bound to the URL so a view can be shared).
c = st.columns([1, 3, 1, 1])
k = c[0].selectbox("List length (K)", [5, 10, 20], index=1, key="fairness_k", bind="query-params",
                   help="How many recommendations per user are judged.")
groups = {key: len(cache.attribute_values(db, key)) for key in keys}  # (at most 200 are listed)
by = c[1].multiselect("Group users by", known, default=default_attributes(known, groups)[:4],
                      key="fairness_by", bind="query-params", format_func=lambda a: GROUPINGS.get(a, a),
                      help="Activity and tenure groups are built from the log: users are split into four equal "
                           "quarters by how many events they have (activity) or how long ago they started (tenure).")
freq = c[2].selectbox("Trend window", ["quarter", "year", "month", "week"], key="fairness_window",
                      bind="query-params", help="Calendar windows of the trend; short windows on a sparse log hold "
                                                "few users and swing.")
min_size = c[3].number_input("Smallest group", 1, 10_000, MIN_GROUP_SIZE, key="fairness_min_size",
                             bind="query-params", help="Groups with fewer users are shown in grey and left out of "
                                                        "the gaps: their means are mostly noise.")

# The cached call into core.
try:
    with st.spinner("Computing the fairness report (every user's list is scored if training did not save them)…",
                    show_time=True):
        view = (cache.served_fairness(db, variant, int(k), tuple(by), 200, int(min_size)) if served
                else cache.fairness(db, model, int(k), tuple(by), 200, int(min_size)))
except InterestLensError as exc:
    st.error(error_text(exc))
    st.stop()
report = view.report
if served:
    st.caption(f"From the served log, variant {md_text(variant or '(none)')}: each user's latest list, judged against "
               "their first event after it; popularity counts the events before each list.")
if view.computed:
    st.caption("Every user's list and the rank of their next item were computed now, because none were saved for "
               "this model and database; they are kept beside the model, so the next open reads them.")
nd, hr = f"NDCG@{k}", f"HR@{k}"

# Layout.
# Only the open tab is drawn (it is in the URL as ?fairness_tab=); the trend is computed when its tab opens.
users_tab, items_tab, calib_tab, trend_tab = st.tabs(["User groups", "Items & exposure", "Calibration", "Over time"],
                                                     key="fairness_tab", bind="query-params")
with users_tab:
    if users_tab.open:
        table = fc.group_table(report.users, [nd, hr])
        if table.empty:
            st.info("No user groups to compare: pick attributes above.")
        else:
            st.caption(f"{nd} is the ranking quality of each user's list (1 = the item they chose next is first, "
                       f"0 = not in the top {k}); {hr} the share of users whose next item is in the list. A gap is the "
                       f"best group's mean minus the worst's, over groups of at least {int(min_size)} users.")
            gaps = fc.gap_table(report.user_gaps)
            st.dataframe(gaps[gaps["measure"] == nd] if len(gaps) else gaps, hide_index=True, width="stretch")
            for attribute in table["attribute"].unique():
                sub = table[table["attribute"] == attribute]
                st.plotly_chart(fc.group_bars(table, nd, attribute, int(min_size)), key=f"fairness_bars_{attribute}")
                grey = (f" Grey groups have fewer than {int(min_size)} users: shown, but left out of the gaps."
                        if (sub["size"] < int(min_size)).any() else "")
                st.caption(f"Mean {nd} of each {md_text(attribute)} group: a longer bar is better served.{grey}")
            st.dataframe(table, hide_index=True, width="stretch")
            st.download_button("Download user groups (CSV)", panels.csv(table), "fairness_users.csv", "text/csv",
                               key="fairness_users_csv")
with items_tab:
    if items_tab.open:
        it = report.items
        m = st.columns(6)
        m[0].metric("Coverage", f"{it.coverage:.1%}", help="Share of the catalogue that appears in at least one list.")
        m[1].metric("Concentration (Gini)", f"{it.gini:.3f}",
                    help="How unevenly list slots are spread over items: 0 = every item equally often, 1 = one item.")
        m[2].metric("Average popularity", f"{it.arp:.1f}",
                    help="Mean number of training interactions of the recommended items (ARP).")
        m[3].metric("Long-tail share", f"{it.aplt:.3f}",
                    help="Share of each list from the long tail, the items outside the popular head (APLT).")
        m[4].metric("Popularity lift", f"{it.popularity_lift:+.1%}",
                    help="How much more popular the recommended items are than the items in the users' own histories.")
        m[5].metric("Novelty", f"{it.novelty:.2f} bits",
                    help="How surprising the recommended items are: −log2 of their popularity, averaged.")
        st.caption(f"{it.users:,} lists over a catalogue of {it.catalogue:,} items; the short head is "
                   f"{it.short_head_items:,} items holding 80% of training interactions.")
        st.plotly_chart(fc.lorenz(view.counts, it.gini), key="fairness_lorenz")
        st.caption("How concentrated the recommendations are: items from least to most recommended against their "
                   "cumulative share of all slots (the diagonal = every item equally often).")
        for t in it.exposure:
            st.plotly_chart(fc.exposure_bars(t), key=f"fairness_exposure_{t.grouping}")
            left = (" Left out of the parity: " + ", ".join(md_text(g) for g in t.left_out)
                    + " (no category, or no items), which would otherwise decide it." if t.left_out else "")
            st.caption(f"Each {md_text(t.grouping)} group's share of the attention the lists give (higher ranks "
                       f"count more) beside its share of what users chose next.{left}")
            st.dataframe(fc.exposure_table(t), hide_index=True, width="stretch")
with calib_tab:
    if calib_tab.open:
        cal = report.calibration
        st.metric("How far lists stray from users' tastes", f"{cal.mean:.4f}", f"{cal.users:,} users", delta_color="off",
                  help="Miscalibration C_KL: the divergence between the categories of a user's history and of their "
                       "list (0 = the list mirrors the history's mix of categories).")
        # C_KL (Steck's miscalibration) is named in the help; the table and bars use the plain word.
        ctable = (fc.group_table(cal.by_group, ["C_KL"]).rename(columns=lambda c: c.replace("C_KL", "miscalibration"))
                  if cal.by_group else pd.DataFrame())
        if ctable.empty:
            st.info("No calibration by group for these settings.")
        else:
            for attribute in ctable["attribute"].unique():
                st.plotly_chart(fc.group_bars(ctable, "miscalibration", attribute), key=f"fairness_calib_{attribute}")
                st.caption(f"Mean miscalibration of each {md_text(attribute)} group: how far its users' lists stray "
                           "from the mix of categories in their histories (0 = none).")
            st.dataframe(ctable, hide_index=True, width="stretch")
with trend_tab:
    if trend_tab.open:
        try:
            with st.spinner("Computing the trend window by window…", show_time=True):
                windows = (cache.served_fairness_trend(db, variant, int(k), tuple(by), freq, int(min_size)) if served
                           else cache.fairness_trend(db, model, int(k), tuple(by), freq, int(min_size)))
        except InterestLensError as exc:
            st.error(error_text(exc))
            st.stop()
        shown, sparse = shown_windows(windows)  # core's rule, as `interestlens fairness` applies it
        frame = fc.trend_frame(shown)
        if sparse:  # a window of a handful of users swings its gaps between 0 and 1
            st.caption(f"{len(sparse)} {freq}{'s' if len(sparse) > 1 else ''} with fewer than {int(min_size)} users "
                       "scored are left out; a longer trend window holds more users.")
        if frame.empty:
            st.info("No trend to draw: pick a longer window (the log spans too few calendar windows with enough "
                    "users).")
        else:
            note = panel_note(windows)
            if note:
                st.caption(f"Each window scores {note}; item-side figures are those of the panel's lists. "
                           "`interestlens fairness --trend-users 0` scores all.")
            st.plotly_chart(fc.trend_lines(frame, [nd, hr, "coverage", "gini", "aplt"],
                                           f"Quality and exposure per {freq} (long-tail share: aplt, concentration: gini)"),
                            key="fairness_trend_quality")
            st.caption(f"Shaded bands: 95% bootstrap intervals of {nd}, {hr} and the gaps, over each window's users.")
            gap_cols = [col for col in frame.columns if col.startswith("gap:")]
            if gap_cols:
                st.plotly_chart(fc.trend_lines(frame, gap_cols, f"{nd} gap between groups per {freq}"),
                                key="fairness_trend_gaps")
                st.caption(f"For each grouping, the best group's mean {nd} minus the worst's, {freq} by {freq} "
                           "(0 = served alike).")
            st.dataframe(frame, hide_index=True, width="stretch")
            st.download_button("Download trends (CSV)", panels.csv(frame), "fairness_trends.csv", "text/csv",
                               key="fairness_trend_csv")
