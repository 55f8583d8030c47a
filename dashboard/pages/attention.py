"""Attention: where the model looked at one step of a user's history — per layer and head, rolled out across
layers, and summed by category and by calendar window. Attention is not attribution: see Explain for that."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import cache
from dashboard.components import charts, model_charts, panels
from dashboard.components.charts import md_text
from dashboard.components.guards import require_db, require_model, require_user
from dashboard.components.user_finder import selected_user

st.title("Attention")

# State set-up.
db = require_db()
model = require_model()

# Inputs.
user = require_user(db, selected_user())
history = cache.user_history(db, user)
if history.empty:
    st.info("This user has no events, so there is no attention to show.")
    st.stop()
n = len(history)
c = st.columns([3, 2, 2, 2])
step = c[0].slider("Step (the query event)", 0, n - 1, n - 1, key="step", bind="query-params") if n > 1 else 0
source = c[1].selectbox("Weights", ["rollout", "mean"], key="attention_source", bind="query-params",
                        help="rollout: how much of the query's attention reaches each event through all layers; "
                             "mean: the plain average over every layer and head")
period = c[2].segmented_control("Time window", ["day", "week", "month"], default="week", key="attention_period",
                                bind="query-params", help="The calendar window attention is summed over.") or "week"
axis = c[3].segmented_control("Axis", ["event", "date"], default="event", key="attention_axis", bind="query-params",
                              help="Draw events by their order (event 0 is the first) or by their date.") or "event"

# Cached call into core.
att = panels.computed(cache.attention, db, model, user, int(step))
if att is None:
    st.stop()

# Layout.
row = history.iloc[int(step)]
st.caption(
    f"Query: step {int(step)} — {md_text(row['title'] if isinstance(row['title'], str) else row['item_id'])} "
    f"({row['ts']:%Y-%m-%d %H:%M}); the window holds the latest {len(att.steps)} known events up to it."
)
labels = [f"#{s}" for s in att.steps]
L, H, _ = att.weights.shape
matrix = att.weights.reshape(L * H, -1)
names = [f"layer {lay + 1}, head {h + 1}" for lay in range(L) for h in range(H)]
st.plotly_chart(
    model_charts.heatmap(np.vstack([matrix, att.rollout[None, :]]), labels, [*names, "rollout"],
                         "Attention of the query over the history (rows: layer × head, then rollout)"),
    key="attention_heatmap",
)
st.caption(f"The model reads the history through {L} layer{'s' * (L > 1)} of {H} attention head{'s' * (H > 1)}; "
           "each head weighs the past events in its own way (a row: darker = looked at more). The last row, "
           "rollout, follows the attention through all layers to the events themselves.")

weights = att.values(source)
window = history.set_index("step").loc[att.steps].reset_index()
aligned = window.assign(attention=weights)
left, right = st.columns(2)
with left:
    st.plotly_chart(charts.timeline(history.iloc[: int(step) + 1], axis=axis), key="attention_timeline")
    st.caption("The user's events up to the query step: time across, category down, one marker shape per event type.")
    per_event = (aligned.assign(event="#" + aligned["step"].astype(str)) if axis == "event"
                 else aligned.assign(event=aligned["ts"]))
    st.plotly_chart(
        model_charts.bars(per_event, "event", "attention", f"Attention per event ({source})",
                          categorical=axis == "event", value_title="share of attention"),
        key="attention_events",
    )
    st.caption(f"The share of the model's attention ({source}) on each event of the window; the shares add up to 1.")
with right:
    by_cat = att.by_category(source)
    st.plotly_chart(model_charts.bars(by_cat, "category", "weight", "Attention by category", horizontal=True),
                    key="attention_category")
    st.caption("The same attention summed over the categories of the events (an event in several categories "
               "splits its share).")
    by_time = att.by_time(period, source)
    st.plotly_chart(
        model_charts.bars(by_time.assign(period=by_time["period"].astype(str).str[:10]), "period", "weight",
                          f"Attention by {period}", categorical=True),
        key="attention_time",
    )
    st.caption(f"The same attention summed {period} by {period}: how far back the model looks.")

with st.expander("Weights as a table"):
    table = pd.DataFrame({"step": att.steps, "time": att.times, "title": window["title"].to_numpy(),
                          "item_id": att.items, "rollout": att.rollout, "mean": att.values("mean")})
    st.dataframe(table, hide_index=True, width="stretch")
    st.download_button("Download (CSV)", panels.csv(att.frame()), f"attention_{user}_{int(step)}.csv", "text/csv",
                       key="attention_csv")
st.caption("Attention weights say where the model looked, not how much each event changed the score; "
           "the Explain page compares them with SHAP values and deletion curves.")
