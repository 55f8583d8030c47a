"""Plain language: every chart on every page has a one-line caption right after it, and every metric a help text.
The walk opens each page (and each lazily drawn tab) of the app on the test log and fails on a chart without a
caption, naming its key."""

from __future__ import annotations

import pytest
from dashboard_helpers import USER, open_page, problems, uncaptioned_charts, unexplained_metrics
from streamlit.testing.v1 import AppTest

from core.checkpoint import load_checkpoint
from core.recommend import recommend_users
from core.store import connect_read

# (page, URL parameters): every page with a chart, every tab of the pages that draw only their open tab
VIEWS = [
    ("overview", {}),
    ("user_explorer", {"user": USER}),
    ("attention", {"user": USER}),
    ("cohorts", {}),
    ("cohorts", {"cohorts_source": "model"}),
    *[("explain", {"user": USER, "item": "top", "explain_tab": tab})
      for tab in ("Events", "Time windows", "Feature groups", "Attention vs SHAP")],
    *[("fairness", {"fairness_tab": tab}) for tab in ("User groups", "Items & exposure", "Calibration", "Over time")],
]


@pytest.mark.parametrize(("page", "query"), VIEWS, ids=[f"{p}-{'-'.join(q.values()) or 'default'}" for p, q in VIEWS])
def test_every_chart_has_a_caption_and_every_metric_a_help(dash_env, page, query):
    if query.get("item") == "top":  # the Explain page explains the item in ?item= (its top recommendation here)
        db, model = dash_env
        with connect_read(db) as con:
            top = recommend_users(load_checkpoint(model), con, [USER], 1)["item_id"].astype(str).iloc[0]
        query = {**query, "item": top}
    at = open_page(page, **query)
    assert not problems(at)
    assert at.get("plotly_chart"), f"{page} {query} drew no chart: the walk would check nothing"
    assert uncaptioned_charts(at) == []
    assert unexplained_metrics(at) == []


def test_the_walk_finds_a_chart_without_a_caption():
    def script() -> None:
        import plotly.graph_objects as go
        import streamlit as st

        st.plotly_chart(go.Figure(), key="told")
        st.caption("What the chart shows.")
        st.plotly_chart(go.Figure(), key="untold")
        st.dataframe([1, 2])
        st.caption("A caption after a table does not count for the chart above it.")
        with st.columns(2)[0]:
            st.plotly_chart(go.Figure(), key="last_in_column")
        st.caption("Outside the column: not beside the chart.")
        st.metric("plain", 1, help="What the number is.")
        st.metric("bare", 2)

    at = AppTest.from_function(script).run()
    assert uncaptioned_charts(at) == ["untold", "last_in_column"]
    assert unexplained_metrics(at) == ["bare"]
