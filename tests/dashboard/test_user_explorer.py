"""User explorer: a deep link lands on the user, the numbers shown are core's, and choosing another user changes the
trajectory and the recommendations."""

from __future__ import annotations

import base64

import numpy as np
import pandas as pd
from dashboard_helpers import OTHER_USER, USER, figure, open_page, problems, title

from core.checkpoint import load_checkpoint
from core.recommend import recommend_users
from core.store import connect_read, user_history


def _core_view(db, model_dir, user: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    with connect_read(db) as con:
        return user_history(con, user), recommend_users(load_checkpoint(model_dir), con, [user], 10)


def _recs_table(at) -> pd.DataFrame:
    tables = [d.value for d in at.dataframe if "rank" in d.value.columns and "score" in d.value.columns]
    assert len(tables) == 1
    return tables[0]


def test_root_deep_link_lands_on_the_users_explorer(dash_env):
    db, model = dash_env
    at = open_page(None, user=USER)
    assert not problems(at)
    assert at.title[0].value == "User explorer"
    assert at.text_input(key="user").value == USER
    history, recs = _core_view(db, model, USER)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Events"] == f"{len(history):,}"
    assert metrics["Items"] == f"{history['item_id'].nunique():,}"
    assert metrics["First event"] == f"{history['ts'].min():%Y-%m-%d}"
    assert all(m.proto.help for m in at.metric)  # each figure says in one line what it counts
    shown = _recs_table(at)
    assert shown["item_id"].tolist() == recs["item_id"].tolist()
    assert shown["score"].round(5).tolist() == recs["score"].round(5).tolist()
    # the app follows the model card's seen rule (core.evaluate.protocol), as core's lists above do: this tiny log
    # re-consumes items, so `auto` keeps seen items in the ranking
    assert load_checkpoint(model).card["seen"]["exclude"] is False
    assert title(figure(at, "user_timeline")) == "Event timeline"
    traj = figure(at, "user_trajectory")
    assert len(traj["data"]) >= 2  # one stacked area per category
    assert title(figure(at, "user_gate")).startswith("How much the long-term profile weighs")
    assert at.query_params["user"] == USER


def test_choosing_another_user_changes_trajectory_and_recommendations(dash_env):
    db, model = dash_env
    at = open_page("user_explorer", user=USER)
    before_recs = _recs_table(at)
    before_traj = figure(at, "user_trajectory")["data"]
    at.text_input(key="user").set_value(OTHER_USER).run()
    assert not problems(at)
    assert at.text_input(key="user").value == OTHER_USER  # (the browser writes a bound box into the URL itself)
    history, recs = _core_view(db, model, OTHER_USER)
    assert {m.label: m.value for m in at.metric}["Events"] == f"{len(history):,}"
    after_recs = _recs_table(at)
    assert after_recs["item_id"].tolist() == recs["item_id"].tolist()
    assert after_recs["item_id"].tolist() != before_recs["item_id"].tolist()
    assert figure(at, "user_trajectory")["data"] != before_traj


def test_trajectory_view_switches_and_comes_from_the_url(dash_env):
    at = open_page("user_explorer", user=USER)
    assert title(figure(at, "user_trajectory")) == "Interest over categories — model"
    at.segmented_control(key="view").set_value("short-term").run()
    assert not problems(at)
    assert title(figure(at, "user_trajectory")) == "Interest over categories — short-term"
    linked = open_page("user_explorer", user=USER, view="baseline")  # a shared link with the view in it
    assert linked.segmented_control(key="view").value == "baseline"
    assert title(figure(linked, "user_trajectory")) == "Interest over categories — baseline (decayed history)"


def test_interests_changed_most_ranks_by_the_largest_change(dash_env):
    _, model = dash_env
    drift = pd.read_parquet(model / "drift.parquet")
    drift = drift[drift["largest_change"] > 0].sort_values(["largest_change", "user_id"], ascending=[False, True])
    assert len(drift) >= 5
    at = open_page("user_explorer")
    tables = [d.value for d in at.dataframe if "largest_change" in d.value.columns]
    assert len(tables) == 1
    assert tables[0]["user_id"].head(5).tolist() == drift["user_id"].head(5).tolist()
    assert tables[0]["shift"].head(5).tolist() == drift["shift"].head(5).tolist()
    assert "total_drift" not in tables[0].columns
    assert any("Pick a user" in i.value for i in at.info)


def test_time_grid_control_changes_the_axis_and_comes_from_the_url(dash_env):
    db, model = dash_env
    history, _ = _core_view(db, model, USER)
    at = open_page("user_explorer", user=USER)
    fig = figure(at, "user_trajectory")
    assert fig["layout"]["yaxis2"]["title"]["text"] == "drift (bits)" and fig["layout"]["yaxis2"]["range"] == [0, 1]
    at.segmented_control(key="grain").set_value("week").run()
    assert not problems(at) and at.segmented_control(key="grain").value == "week"
    fig = figure(at, "user_trajectory")
    assert fig["layout"]["xaxis2"]["title"]["text"] == "week (from Monday)"
    weeks = _n_points(fig["data"][0]["x"])
    linked = open_page("user_explorer", user=USER, grain="event")  # the per-event view is still one link away
    assert linked.segmented_control(key="grain").value == "event"
    per_event = figure(linked, "user_trajectory")
    assert per_event["layout"]["xaxis2"]["title"]["text"] == "event"
    assert _n_points(per_event["data"][0]["x"]) == len(history) > weeks


def _n_points(arr) -> int:
    """Points of a Plotly array (numeric arrays come as base64 `bdata` with a dtype)."""
    if isinstance(arr, dict) and "bdata" in arr:
        return len(base64.b64decode(arr["bdata"])) // np.dtype(arr["dtype"]).itemsize
    return len(arr)


def test_unknown_user_in_the_url_gets_a_message_not_a_traceback(dash_env):
    at = open_page(None, user="nosuchuser")
    assert not at.exception
    assert any("There is no user 'nosuchuser'" in w.value for w in at.warning)


def test_events_download_is_offered(dash_env):
    """"Events as a table" is drawn only once opened (a switch neither builds nor sends its table and CSV); opened,
    it shows every event of the user, in order, and offers them as CSV, and it stays open across a switch."""
    db, _ = dash_env
    at = open_page("user_explorer", user=USER)
    labels = [b.label for b in at.download_button]
    assert "Download recommendations (CSV)" in labels and "Download events (CSV)" not in labels
    assert not any("step" in d.value.columns and "item_id" in d.value.columns for d in at.dataframe)
    for user in (USER, OTHER_USER):
        at.session_state["events_open_0"] = True  # the analyst opens the expander (it reruns the page)
        at.query_params["user"] = user
        at.text_input(key="user").set_value(user).run()
        assert not problems(at)
        with connect_read(db) as con:
            items = [str(i) for i in user_history(con, user)["item_id"]]
        events = next(d.value for d in at.dataframe if "step" in d.value.columns and "item_id" in d.value.columns)
        assert [str(i) for i in events["item_id"]] == items
        labels = [b.label for b in at.download_button]
        assert "Download events (CSV)" in labels and "Download recommendations (CSV)" in labels


def test_markup_in_a_linked_user_id_is_shown_as_text(dash_env):
    at = open_page(None, user="[x](javascript:alert(1))")
    assert not at.exception
    assert any(r"\[x\]\(javascript\:alert\(1\)\)" in w.value for w in at.warning)


def test_html_report_of_the_user_is_offered_for_download(dash_env):
    at = open_page("user_explorer", user=USER)
    at.button(key="user_report_build").click().run()
    assert not problems(at)
    assert "Download the report (HTML)" in [b.label for b in at.download_button]


def test_the_user_finders_settings_live_in_the_url(dash_env):
    """A link with the finder's search, order (by its shown label) and minimum opens the finder with them; the
    table lists only the users they select."""
    at = open_page("user_explorer", finder_search="u01", finder_order="by id", finder_min="5")
    assert not problems(at)
    assert at.text_input(key="finder_search").value == "u01"
    assert at.selectbox(key="finder_order").value == "user_id"
    assert at.number_input(key="finder_min").value == 5
    listed = next(d.value for d in at.dataframe if "user_id" in d.value.columns)["user_id"].tolist()
    assert listed and all("u01" in u for u in listed) and listed == sorted(listed)
