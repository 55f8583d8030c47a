"""Plain language: every chart on every page has a one-line caption right after it, and every metric a help text.
The walk opens each page (and each lazily drawn tab) of the app on the test log, then Compare (two models), the
Friends panel, the graph communities and the friends' Shapley bars (a social log and model) and the model card's
reliability diagram, and fails on a chart without a caption, naming its key."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from dashboard_helpers import USER, open_page, problems, uncaptioned_charts, unexplained_metrics
from streamlit.testing.v1 import AppTest

from core.checkpoint import load_checkpoint
from core.recommend import recommend_users
from core.store import connect_read

SOCIAL_USER = "s00"  # a user of the social log (conftest.social_env)

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


# (environment fixture, page, URL parameters, chart keys the view must draw): the pages and panels that need more
# than the test log and its model, each with the charts it is walked for (so a view that stopped drawing them
# fails instead of checking nothing)
MORE_VIEWS = [
    ("compare_env", "compare", {}, ["compare_traj_"]),  # two models: ours and a registered popularity baseline
    ("friends_env", "user_explorer", {"user": SOCIAL_USER}, ["friends_ego", "friends_share"]),  # the Friends panel
    ("friends_env", "cohorts", {"cohorts_by": "graph communities"}, ["cohorts_comm_share_"]),
    ("friends_env", "explain", {"user": SOCIAL_USER, "item": "top", "explain_tab": "Feature groups"},
     ["explain_friends_groups"]),
    ("card_env", "data_models", {"data_tab": "Models"}, ["data_reliability"]),  # a card with a reliability table
]


def _top_item(db, model, user: str) -> str:
    """The user's top recommendation: the Explain page explains the item in ?item=."""
    with connect_read(db) as con:
        return recommend_users(load_checkpoint(model), con, [user], 1)["item_id"].astype(str).iloc[0]


def _walk(page: str, query: dict[str, str]):
    at = open_page(page, **query)
    assert not problems(at)
    assert at.get("plotly_chart"), f"{page} {query} drew no chart: the walk would check nothing"
    assert uncaptioned_charts(at) == []
    assert unexplained_metrics(at) == []
    return at


@pytest.mark.parametrize(("page", "query"), VIEWS, ids=[f"{p}-{'-'.join(q.values()) or 'default'}" for p, q in VIEWS])
def test_every_chart_has_a_caption_and_every_metric_a_help(dash_env, page, query):
    if query.get("item") == "top":
        query = {**query, "item": _top_item(*dash_env, USER)}
    _walk(page, query)


@pytest.fixture
def card_env(monkeypatch, synthetic_db, dash_model, tmp_path) -> tuple[Path, Path]:
    """The test model with a card that holds the interest forecast's reliability table (as `interestlens train`
    writes it), the only model of its models folder."""
    model = tmp_path / "models" / "carded"
    shutil.copytree(dash_model, model)
    card = json.loads((model / "metrics.json").read_text()) if (model / "metrics.json").is_file() else {}
    card["interest"] = {"forecast": {"ece": 0.02, "log_loss": 1.4}, "histogram": {"log_loss": 1.5},
                        "reliability": [{"lo": 0.0, "hi": 0.5, "count": 40, "forecast": 0.2, "observed": 0.25},
                                        {"lo": 0.5, "hi": 1.0, "count": 10, "forecast": 0.7, "observed": 0.6}]}
    (model / "metrics.json").write_text(json.dumps(card))
    monkeypatch.setenv("INTERESTLENS_DB", str(synthetic_db))
    monkeypatch.setenv("INTERESTLENS_MODEL", str(model))
    monkeypatch.setenv("INTERESTLENS_MODELS", str(model.parent))
    return synthetic_db, model


@pytest.mark.parametrize(("env", "page", "query", "charts"), MORE_VIEWS,
                         ids=[f"{p}-{'-'.join(q.values()) or 'default'}" for _, p, q, _ in MORE_VIEWS])
def test_compare_friends_and_the_model_card_have_captions_too(request, env, page, query, charts):
    made = request.getfixturevalue(env)
    if query.get("item") == "top":
        db, model = made
        query = {**query, "item": _top_item(db, model, query["user"])}
    at = _walk(page, query)
    drawn = [c.proto.id for c in at.get("plotly_chart")]
    for key in charts:  # the panel this view is walked for was drawn (and so checked above)
        assert any(f"-{key}" in d for d in drawn), f"{page} {query} did not draw {key!r}: {drawn}"


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
