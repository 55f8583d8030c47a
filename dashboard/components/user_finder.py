"""The user finder: search by id, filter by attributes and activity, pick a row to select that user.

The selected user lives in the `user` widget and in the URL (`?user=ID`), so every view is a link.
"""

from __future__ import annotations

import streamlit as st

from core.store.queries import UserFilter
from dashboard import cache, demo
from dashboard.cache import ModelRef

__all__ = ["USER_KEY", "user_input", "select_user", "user_finder", "changed_most"]

USER_KEY = "user"  # the widget key and the URL query parameter
_CARRIED = "_user_carried"  # the last selected user, kept when the widget's page is left


def select_user(user_id: str) -> None:
    """Make `user_id` the selected user ('' for none), in the session and in the URL (called from a widget's
    callback, before the script creates the user box)."""
    user_id = user_id.strip()
    st.session_state[_CARRIED] = user_id
    if user_id:
        st.query_params[USER_KEY] = user_id
    elif USER_KEY in st.query_params:
        del st.query_params[USER_KEY]


def _typed() -> None:
    select_user(st.session_state.get(USER_KEY) or "")


def user_input() -> str:
    """The user id box, kept in the URL as `?user=`; returns the stripped id, '' when none.

    The URL and the session agree after every run. A link, a reload or the browser's back and forward buttons bring
    a `?user=` that wins; a switch between pages arrives with an empty query string, so the session's user is
    written back to it. (A widget bound with `bind=` alone lost the user on the first switch after a deep link: the
    new page's widget was seeded neither from the emptied URL nor from the old page's state.)
    """
    url = st.query_params.get(USER_KEY)
    if url is not None:
        st.session_state[_CARRIED] = url.strip()
    chosen = st.session_state.get(_CARRIED) or ""
    st.session_state[USER_KEY] = chosen  # the box on this page starts from the selection, whichever page made it
    st.text_input("User id", key=USER_KEY, on_change=_typed, placeholder="e.g. 17")
    if chosen and url != chosen:
        st.query_params[USER_KEY] = chosen
    return chosen


def _pick() -> None:
    """Row picked in the table → that user becomes the selection."""
    rows = st.session_state["finder_table"].selection.rows
    ids = st.session_state.get("finder_ids", [])
    if rows and rows[0] < len(ids):
        select_user(ids[rows[0]])


def user_finder(expanded: bool) -> None:
    """Search, filters and a table of matching users; picking a row selects the user."""
    with st.expander("Find a user", expanded=expanded, icon=":material/search:"):
        c = st.columns([2, 1, 1])
        search = c[0].text_input("Search user ids", key="finder_search")
        order = c[1].selectbox(
            "Order", ["events_desc", "events_asc", "recent", "user_id"], key="finder_order",
            format_func={"events_desc": "most active", "events_asc": "least active", "recent": "most recent",
                         "user_id": "by id"}.get,
        )
        min_events = c[2].number_input("Min events", 0, value=0, key="finder_min")
        db = cache.database()
        keys = cache.user_attribute_keys(db)
        filters = []
        if keys:
            cols = st.columns(min(len(keys), 4))
            for n, key in enumerate(keys):
                values = cache.attribute_values(db, key)
                choice = cols[n % len(cols)].selectbox(key, ["any", *values], key=f"finder_attr_{key}")
                if choice != "any":
                    filters.append((key, choice))
        flt = UserFilter(search=search or None, attributes=tuple(filters), min_events=min_events or None)
        users = cache.list_users(db, flt, order, 200)
        if users.empty:
            st.info("No user matches these filters.")
            return
        st.session_state["finder_ids"] = users["user_id"].tolist()
        table = users.assign(
            attributes=users["attributes"].map(lambda a: ", ".join(f"{k}={v}" for k, v in sorted(a.items())))
        )
        if demo.active() is not None or not table["attributes"].astype(bool).any():  # hidden, or none to show
            table = table.drop(columns="attributes")
        st.dataframe(
            table, hide_index=True, width="stretch", height=260, key="finder_table",
            on_select=_pick, selection_mode="single-row",
        )
        st.caption(f"Showing {len(users)} users (at most 200). Pick a row to open that user.")


def _pick_changed() -> None:
    rows = st.session_state["changed_table"].selection.rows
    ids = st.session_state.get("changed_ids", [])
    if rows and rows[0] < len(ids):
        select_user(ids[rows[0]])


def changed_most(model: ModelRef | None, expanded: bool, top: int = 50) -> None:
    """Users whose interests changed most (from `drift.parquet` beside the model), ranked by the size of their
    largest change point, which does not grow with the history's length; picking a row selects one."""
    with st.expander("Interests changed most", expanded=expanded, icon=":material/trending_up:"):
        drift = cache.model_parquet(model.dir, "drift") if model is not None else None
        if drift is None or drift.empty:
            st.caption("Drift summaries are built with the model (`interestlens drift`); none for this model yet.")
            return
        if "largest_change" not in drift.columns:
            st.caption("These drift summaries predate the ranking by largest change; run `interestlens drift` again.")
            return
        cols = ["user_id", "largest_change", "shift", "n_events", "mostly_bulk"]
        changed = drift[drift["largest_change"] > 0]
        table = changed.sort_values(["largest_change", "user_id"], ascending=[False, True]).head(top)[cols]
        table = table.reset_index(drop=True)
        st.caption(f"{len(changed):,} of {len(drift):,} users have a change point; "
                   f"{int(drift['mostly_bulk'].sum()):,} entered most of their history in bulk.")
        if table.empty:
            return
        p = demo.active()
        if p is not None:  # demo mode: the same pseudonyms as everywhere else
            table = demo.scrub(table, p)
        st.session_state["changed_ids"] = table["user_id"].astype(str).tolist()
        st.dataframe(
            table, hide_index=True, width="stretch", height=260, key="changed_table",
            on_select=_pick_changed, selection_mode="single-row",
            column_config={
                "largest_change": st.column_config.NumberColumn(
                    "largest change (bits)", format="%.2f",
                    help="Drift at the user's largest change point: JS divergence between the categories of the 20 "
                         "events before and after it (0–1, the same scale for every user)."),
                "shift": st.column_config.TextColumn("shift"),
                "n_events": st.column_config.NumberColumn("events"),
                "mostly_bulk": st.column_config.CheckboxColumn("bulk", help="Most events entered in bulk sessions."),
            },
        )
