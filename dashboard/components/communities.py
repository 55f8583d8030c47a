"""Cohorts from the friend graph: Louvain communities (core.social.communities), two compared side by side."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard.cache import DbRef
from dashboard.components import charts
from dashboard.reader import READER

__all__ = ["communities_table", "community_share", "communities_section"]


@st.cache_data(max_entries=8, show_spinner="Finding communities…")
def communities_table(db: str, stamp: tuple[int, int, int]) -> pd.DataFrame:
    """user_id, community for every user named by an edge (empty without edges)."""
    from core.social.communities import graph_communities

    with READER.cursor(db, stamp) as con:
        return graph_communities(con, seed=0)


@st.cache_data(max_entries=32, show_spinner=False)
def community_share(db: str, stamp: tuple[int, int, int], community: int, period: str) -> pd.DataFrame:
    from core.social.communities import members_category_share

    members = communities_table(db, stamp)
    users = members.loc[members["community"] == community, "user_id"].tolist()
    with READER.cursor(db, stamp) as con:
        return members_category_share(con, users, period)


def communities_section(ref: DbRef, period: str) -> None:
    """Pick two communities and compare their category share over time (sizes first)."""
    db, stamp = ref.path, ref.stamp
    table = communities_table(str(db), stamp)
    if table.empty:
        st.info("This database has no social edges, so there are no graph communities.")
        return
    sizes = table.groupby("community").size()
    st.caption(f"{len(sizes):,} communities (networkx Louvain, seed 0) over {len(table):,} users named by an edge.")
    options = [int(c) for c in sizes.index]
    cols = st.columns(2)
    for name, col, default in zip("AB", cols, (0, min(1, len(options) - 1)), strict=True):
        with col:
            # the option shown is the id alone: a bound selectbox writes the shown text into the URL
            # (?cohorts_comm_a=3), which must not change when the sizes do; the size is the caption below
            c = st.selectbox(f"Community {name}", options, index=default, key=f"cohorts_comm_{name.lower()}",
                             format_func=str, bind="query-params",
                             help="A group of users more linked to each other than to the rest (Louvain on the "
                                  "friend graph), by its id.")  # fmt: skip
            share = community_share(str(db), stamp, int(c), period)
            if share.empty:
                st.info(f"No categorised events in this community ({sizes[c]:,} users).")
            else:
                st.plotly_chart(charts.category_share(share, title=f"Category share, community {c}"),
                                key=f"cohorts_comm_share_{name}")  # fmt: skip
                st.caption(f"{sizes[c]:,} users; of their events in each {period}, the share in each category.")
