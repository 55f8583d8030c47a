"""Search by meaning: items whose text matches a free-text query ("space adventure"), and users whose current
interest does (the model's expected item text after their last event, `core.semantic.search_users`)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.errors import InterestLensError
from dashboard.cache import semantic as sem
from dashboard.components import nav, panels
from dashboard.components.charts import md_text
from dashboard.components.guards import require_db, require_model
from dashboard.components.messages import error_text
from dashboard.components.user_finder import select_user


def _pick_user() -> None:
    """A row picked in the users' table selects that user (in a callback, before the sidebar box is drawn)."""
    rows = st.session_state["search_results"].selection.rows
    ids = st.session_state.get("search_user_ids", [])
    if rows and rows[0] < len(ids):
        select_user(ids[rows[0]])


st.title("Search by meaning")

# State set-up: a database whose item text vectors are cached, and the encoder that made them.
db = require_db()
status = sem.status(db)
if not status.search:
    st.info(status.message)
    st.stop()

# Inputs (in the URL: ?q=…&search_what=users).
c = st.columns([4, 2, 2])
query = c[0].text_input("Search", key="q", bind="query-params", placeholder="e.g. space adventure").strip()
what = c[1].segmented_control("Find", ["items", "users"], default="items", key="search_what",
                              bind="query-params") or "items"
k = c[2].slider("Results", 5, 50, 10, step=5, key="search_k", bind="query-params",
                help="How many of the closest items (or users) to list.")
if not query:
    st.info("Type a few words: items are ranked by the meaning of their text (title, categories, tags), users by "
            "what the model believes they want next.")
    st.stop()

# Cached calls into core.
try:
    if what == "items":
        table = sem.search_items(status, query, int(k))
    else:
        model = require_model()
        found = panels.computed(sem.search_users, db, model, status, query, int(k))
        if found is None:
            st.stop()
        table = pd.DataFrame({"user_id": [m.user_id for m in found], "similarity": [m.score for m in found]})
except InterestLensError as exc:
    st.error(error_text(exc))
    st.stop()

# Layout.
st.caption(f"The {len(table)} {what} nearest to “{md_text(query)}” in meaning: similarity is the cosine of the text "
           f"vectors (1 = the same meaning; encoder {md_text(status.encoder)})."
           + (" “Why” names the item's categories or tags nearest to the query." if what == "items" else
              " A user matches when the items the model expects them to pick next read like the query."))
if what == "users":  # a picked user becomes the selection (the sidebar box), which the explorer link then shows
    st.session_state["search_user_ids"] = table["user_id"].astype(str).tolist()
event = st.dataframe(
    table, hide_index=True, width="stretch", key="search_results", selection_mode="single-row",
    on_select=_pick_user if what == "users" else "rerun",
    column_config={"similarity": st.column_config.NumberColumn(format="%.3f"),
                   "text": st.column_config.TextColumn("item", width="large"),
                   "why": st.column_config.TextColumn("why it matched", width="large")},
)
rows = event.selection.rows if event is not None else []
if what == "users" and rows:
    picked = str(table["user_id"].iloc[rows[0]])
    nav.page_link("open_user", "user", f"Open user {md_text(picked)} in the explorer", {"user": picked},
                  icon=":material/person_search:")
st.download_button("Download (CSV)", panels.csv(table), f"search_{what}.csv", "text/csv", key="search_csv")
