"""The user box, the user finder (search by id, filter by attributes and activity, pick a row to select that user)
and the "interests changed most" list.

The selected user lives in one `user` widget, drawn by the app for every page, and in the URL (`?user=ID`), so every
view is a link.
"""

from __future__ import annotations

import streamlit as st

from core.store.queries import UserFilter
from dashboard import cache, demo
from dashboard.cache import ModelRef

__all__ = ["USER_KEY", "user_box", "selected_user", "select_user", "user_finder", "changed_most", "lazy"]

USER_KEY = "user"  # the widget key and the URL query parameter


def user_box() -> None:
    """The one "User id" box, drawn by `dashboard/app.py` in the sidebar before the page runs, on every page.

    Drawn outside the pages, it is the same widget on all of them, so an id typed while a page switch is under way
    is never sent to the box of the page being left (each page had its own box, and an id typed right after
    returning from Explain was lost). Bound to `?user=`, it is carried by the browser across page switches without
    the server rewriting the URL, which would have added a history entry per switch and broken the back button.
    A link, a reload and back/forward set it from the URL.
    """
    st.sidebar.text_input(
        "User id", key=USER_KEY, bind="query-params", placeholder="e.g. 17",
        help="The user that User explorer, Attention and Explain show; kept in the link as ?user=.",
    )


def selected_user() -> str:
    """The selected user id (stripped), '' when none."""
    return str(st.session_state.get(USER_KEY) or "").strip()


def select_user(user_id: str) -> None:
    """Make `user_id` the selected user ('' for none); the box and `?user=` follow. Call it from a widget's
    callback: the box is drawn before the page, so the page itself can no longer change it in the same run."""
    st.session_state[USER_KEY] = user_id.strip()


def _pick() -> None:
    """Row picked in the table → that user becomes the selection."""
    rows = st.session_state["finder_table"].selection.rows
    ids = st.session_state.get("finder_ids", [])
    if rows and rows[0] < len(ids):
        select_user(ids[rows[0]])


def lazy(name: str, expanded: bool) -> dict:
    """A lazy expander's settings: its content runs only while it is open (opening it reruns the page). Drawing
    these two tables closed, on every user switch, was ~20 % of a revisited user's script run on ML-100k (cProfile,
    docs/serving.md). One widget per starting state, so picking a user still collapses the finder. Also used by the
    explorer's "Events as a table" (its table, CSV and download button on every switch: ~8 % of a new user's run)."""
    return dict(key=f"{name}_open_{int(expanded)}", on_change="rerun")


def user_finder(expanded: bool) -> None:
    """Search, filters and a table of matching users; picking a row selects the user."""
    with st.expander("Find a user", expanded=expanded, icon=":material/search:", **lazy("finder", expanded)) as box:
        if not box.open:
            return
        c = st.columns([2, 1, 1])
        # the finder's settings are bound to the URL (a reload keeps them; its open state is the page's own)
        search = c[0].text_input("Search user ids", key="finder_search", bind="query-params")
        order = c[1].selectbox(
            "Order", ["events_desc", "events_asc", "recent", "user_id"], key="finder_order",
            format_func={"events_desc": "most active", "events_asc": "least active", "recent": "most recent",
                         "user_id": "by id"}.get, bind="query-params",
        )
        min_events = c[2].number_input("Min events", 0, value=0, key="finder_min", bind="query-params")
        db = cache.database()
        keys = cache.user_attribute_keys(db)
        filters = []
        if keys:
            cols = st.columns(min(len(keys), 4))
            for n, key in enumerate(keys):
                values = cache.attribute_values(db, key)
                choice = cols[n % len(cols)].selectbox(key, ["any", *values], key=f"finder_attr_{key}",
                                                       bind="query-params")
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
    with st.expander("Interests changed most", expanded=expanded, icon=":material/trending_up:",
                     **lazy("changed", expanded)) as box:
        if not box.open:
            return
        found = cache.changed_most(model.dir, top) if model is not None else None
        if found is None or found.n_users == 0:
            st.caption("Drift summaries are built with the model (`interestlens drift`); none for this model yet.")
            return
        if found.outdated:
            st.caption("These drift summaries predate the ranking by largest change; run `interestlens drift` again.")
            return
        table = found.table
        st.caption(f"{found.n_changed:,} of {found.n_users:,} users have a change point; "
                   f"{found.n_bulk:,} entered most of their history in bulk.")
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
