"""Attention: the weights shown are core's for the chosen step; moving the step moves the query."""

from __future__ import annotations

import numpy as np
from dashboard_helpers import USER, figure, open_page, problems, title

from core.attention import AttentionAnalyzer
from core.checkpoint import load_checkpoint
from core.store import connect_read, user_history


def _table(at):
    tables = [d.value for d in at.dataframe if "rollout" in d.value.columns]
    assert len(tables) == 1
    return tables[0]


def _query(at) -> str:
    return next(c.value for c in at.main.caption if c.value.startswith("Query:"))


def test_attention_page_shows_cores_weights_for_the_last_step(dash_env):
    db, model = dash_env
    with connect_read(db) as con:
        n = len(user_history(con, USER))
        expected = AttentionAnalyzer(load_checkpoint(model)).user(con, USER)
    at = open_page("attention", user=USER)
    assert not problems(at)
    assert at.slider(key="step").value == n - 1
    assert _query(at).startswith(f"Query: step {n - 1} ")
    table = _table(at)
    assert table["step"].tolist() == expected.steps.tolist()
    # float32 attention: the app's script thread runs torch with 1 thread, this test's with 2, and the sums of a
    # matrix product differ in their last bits between the two (about 1e-8 here)
    np.testing.assert_allclose(table["rollout"].to_numpy(), expected.rollout, atol=1e-6)
    heat = figure(at, "attention_heatmap")
    layers, heads = expected.weights.shape[:2]
    assert len(heat["data"][0]["y"]) == layers * heads + 1  # every layer x head, then the rollout row
    assert title(figure(at, "attention_category")) == "Attention by category"


def test_moving_the_step_recomputes_attention(dash_env):
    db, model = dash_env
    at = open_page("attention", user=USER)
    at.slider(key="step").set_value(10).run()
    assert not problems(at)
    with connect_read(db) as con:
        expected = AttentionAnalyzer(load_checkpoint(model)).user(con, USER, 10)
    table = _table(at)
    assert table["step"].max() <= 10
    # float32 attention: the app's script thread runs torch with 1 thread, this test's with 2, and the sums of a
    # matrix product differ in their last bits between the two (about 1e-8 here)
    np.testing.assert_allclose(table["rollout"].to_numpy(), expected.rollout, atol=1e-6)
    assert _query(at).startswith("Query: step 10 ")


def test_attention_charts_offer_a_date_axis_beside_the_event_index(dash_env):
    import pandas as pd

    db, _ = dash_env
    with connect_read(db) as con:
        history = user_history(con, USER)
    by_event = open_page("attention", user=USER)
    assert not problems(by_event)
    events = figure(by_event, "attention_events")["data"][0]["x"]
    assert all(str(x).startswith("#") for x in events)
    assert figure(by_event, "attention_timeline")["layout"]["xaxis"]["title"]["text"] == "event number"
    by_date = open_page("attention", user=USER, attention_axis="date")
    assert not problems(by_date)
    dates = pd.to_datetime(figure(by_date, "attention_events")["data"][0]["x"])
    window = history.set_index("step").loc[[int(x[1:]) for x in events], "ts"]
    assert list(dates) == list(pd.to_datetime(window.to_numpy()))  # the same events, now at their dates
    heat = figure(by_date, "attention_heatmap")
    assert heat["data"][0]["y"][0] == "layer 1, head 1"
