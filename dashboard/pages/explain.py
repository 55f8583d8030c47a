"""Explain: why the model recommends an item to a user — SHAP values of past events and of time windows, feature
groups, attention against SHAP with deletion curves, and a what-if editor that re-ranks without touching the
database. Each tab computes only when it is opened (the open tab is in the URL as ?explain_tab=)."""

from __future__ import annotations

import numpy as np
import streamlit as st

from dashboard import cache
from dashboard.components import explain_panels, model_charts, panels
from dashboard.components.guards import require_db, require_model, require_user
from dashboard.components.user_finder import selected_user

st.title("Explain a recommendation")

# State set-up.
db = require_db()
model = require_model()

# Inputs: the user, then one of their recommendations (both bound to the URL: ?user=…&item=…).
user = require_user(db, selected_user())
# The top-10 of the user's view, which the explorer has just drawn for this user (the shared pool): the list the
# explorer showed, without ranking the catalogue again for every visit (cache.recommend: ~22 ms of CPU, ML-100k).
view = panels.computed(cache.user_view, db, model, user)
if view is None:
    st.stop()
recs = view.recommendations.head(10)
options = recs["item_id"].astype(str).tolist()
asked = st.query_params.get("item")  # kept in the URL by hand: the widget shows titles, the URL holds the id
if asked and asked not in options:
    options.append(asked)
# A new `?item=` (a link, a typed URL) sets the box. The item this page wrote to the URL itself comes back with every
# later rerun, and must not undo a pick made since (`_explain_url_item`); but when the box has no value (a visit to
# another page drops it), the URL's item is the link's, even the one explained last (it used to show no score).
fresh = "explain_item" not in st.session_state  # not drawn in the last run (a box cleared by the user holds None)
if asked and st.session_state.get("explain_item") != asked and (fresh or st.session_state.get("_explain_url_item") != asked):
    st.session_state["explain_item"] = asked
titles = dict(zip(recs["item_id"].astype(str), recs["title"], strict=True))
if asked and asked not in titles:
    known = cache.item_lookup(db, (asked,))
    titles.update(zip(known["item_id"].astype(str), known["title"], strict=True))
ranks = dict(zip(recs["item_id"].astype(str), recs["rank"], strict=True))
item = st.selectbox(
    "Recommendation to explain", options, index=None, key="explain_item", placeholder="Choose one of the user's top-10",
    format_func=lambda i: f"#{ranks[i]} · {titles.get(i) or i}" if i in ranks else f"{titles.get(i) or i} (not in the top 10)",
)
st.session_state["_explain_url_item"] = item
if item:
    st.query_params["item"] = item
elif "item" in st.query_params:
    del st.query_params["item"]
if not item:
    st.info("Choose a recommendation above to see why the model ranks it.")
    st.dataframe(recs[["rank", "item_id", "title", "score"]], hide_index=True, width="stretch")
    st.stop()

# Cached call into core.
expl = panels.computed(cache.explain, db, model, user, item)
if expl is None:  # the sentence is shown; a busy server (ExplainBusy) or a held database may answer on a retry
    st.button("Try again", key="explain_retry", icon=":material/refresh:")
    st.stop()

# Layout.
name = titles.get(item) or item
c = st.columns(4)
c[0].metric("Score", f"{expl.fx:.3f}", help="The model's score for this item after the whole history, f(x), on "
             "the logit scale: higher ranks the item higher; only differences between scores matter.")
c[1].metric("Base (no history)", f"{expl.base:.3f}", help="The score the item would get with every explained "
             "event removed; the contributions below add up from here to the score.")
c[2].metric("Events explained", f"{len(expl.positions):,}", help="Past events the model reads for this score.")
c[3].metric("Check: sum error", f"{expl.additivity_error:.1e}", help="Base plus all contributions minus the "
             "score: near 0 means the contributions account for the whole score.")
st.caption(
    f"Why **{explain_panels.md_text(name)}** for user **{explain_panels.md_text(user)}**: each past event's Shapley "
    "value (its contribution) says how much it moved the item's score; they add up from the base to the score."
)

if len(expl.labels) < len(expl.positions):
    st.caption(f"The latest {sum(lab.n_events == 1 for lab in expl.labels)} events are explained one by one and the "
               f"{len(expl.positions) - sum(lab.n_events == 1 for lab in expl.labels)} older ones the model reads in "
               "periods (rows with an event range): each period is one player.")

events_tab, windows_tab, groups_tab, faith_tab, whatif_tab = st.tabs(
    ["Events", "Time windows", "Feature groups", "Attention vs SHAP", "What-if"], key="explain_tab", bind="query-params"
)
with events_tab:
    if events_tab.open:
        labels = [lab.text() for lab in expl.labels]
        st.plotly_chart(model_charts.waterfall(labels, expl.values, expl.base, expl.fx, "Contribution of each event"),
                        key="explain_waterfall")
        st.caption("From the base (the score with no history) each past event adds its push up (red) or down "
                   "(blue), ending at the item's score.")
        table = explain_panels.event_table(expl)
        st.dataframe(table, hide_index=True, width="stretch")
        st.download_button("Download (CSV)", panels.csv(table), f"explanation_{user}_{item}.csv", "text/csv",
                           key="explain_csv")
with windows_tab:
    if windows_tab.open:
        explain_panels.windows_panel(db, model, user, item)
with groups_tab:
    groups = explain_panels.group_table(expl)
    if not groups_tab.open:
        pass
    elif groups.empty:
        st.info("No feature-group attribution for this explanation.")
    else:
        st.plotly_chart(model_charts.bars(groups, "group", "value", "Contribution per feature group", horizontal=True),
                        key="explain_groups")
        st.caption("An absent group means its embedding is replaced by the learned 'unknown' one at every step "
                   f"(base {groups.attrs.get('base', float('nan')):.3f}, all groups unknown).")
    if groups_tab.open:
        explain_panels.friends_panel(db, model, user, item)
with faith_tab:
    if faith_tab.open:
        explain_panels.attention_vs_shap(db, model, user, item)
with whatif_tab:
    if whatif_tab.open:
        explain_panels.what_if_editor(db, model, user, item, np.asarray(expl.positions), recs)
