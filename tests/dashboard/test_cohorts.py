"""Cohorts: a segment's size and category shares are the store's for that segment."""

from __future__ import annotations

import html

from dashboard_helpers import figure, numbers, open_page, problems

from core.checkpoint import load_checkpoint
from core.store import connect_read
from core.store.views import cohort_category_share
from core.trajectory import TrajectoryAnalyzer, cohort_trajectory


def test_cohort_filters_select_the_right_users(dash_env):
    db, _ = dash_env
    with connect_read(db) as con:
        women = con.execute("SELECT count(*) FROM users WHERE attributes['gender'] = ?", ["F"]).fetchone()[0]
        everyone = con.execute("SELECT count(*) FROM users").fetchone()[0]
        share = cohort_category_share(con, [("gender", "F")], "month")
    at = open_page("cohorts")
    assert not problems(at)
    assert [m.value for m in at.metric] == [f"{everyone:,} users", f"{everyone:,} users"]
    at.selectbox(key="cohorts_a_gender").set_value("F").run()
    assert not problems(at)
    assert at.metric[0].label == "Cohort A: gender=F"
    assert at.metric[0].value == f"{women:,} users"
    assert 0 < women < everyone
    assert figure(at, "cohorts_compare")["layout"]["yaxis"]["tickformat"] == ".1%"  # close shares, distinct ticks
    fig = figure(at, "cohorts_share_A")
    shown = {(t["name"], x[:10]): y for t in fig["data"] for x, y in zip(t["x"], numbers(t["y"]), strict=True)}
    for row in share.itertuples():
        assert abs(shown[(html.escape(row.category), f"{row.period:%Y-%m-%d}")] - row.share) < 1e-9


def test_cohorts_are_shareable_by_link(dash_env):
    at = open_page("cohorts", cohorts_b_gender="M", cohorts_period="quarter")
    assert not problems(at)
    assert at.metric[1].label == "Cohort B: gender=M"
    assert at.segmented_control(key="cohorts_period").value == "quarter"


def test_cohort_model_interest_is_cores_cohort_trajectory(dash_env):
    db, model = dash_env
    with connect_read(db) as con:
        expected = cohort_trajectory(con, TrajectoryAnalyzer(load_checkpoint(model)), [("gender", "F")], period="month")
    frame = expected.fold(10).frame()
    at = open_page("cohorts", cohorts_source="model", cohorts_a_gender="F")
    assert not problems(at)
    fig = figure(at, "cohorts_share_A")
    assert fig["layout"]["title"]["text"] == "Model interest, cohort A"
    shown = {(t["name"], x[:10]): y for t in fig["data"] for x, y in zip(t["x"], numbers(t["y"]), strict=True)}
    for row in frame.itertuples():
        assert abs(shown[(html.escape(row.category), str(row.period)[:10])] - row.share) < 1e-9


def test_a_log_without_attributes_is_cut_by_activity_and_tenure(monkeypatch, writable_db, dash_model):
    from core.fairness import group_members, log_user_groups
    from core.store import connect_write
    from core.store.views import cohort_sizes
    from dashboard.components.charts import md_text

    with connect_write(writable_db) as con:
        con.execute("UPDATE users SET attributes = MAP {}::MAP(VARCHAR, VARCHAR)")
    monkeypatch.setenv("INTERESTLENS_DB", str(writable_db))
    monkeypatch.setenv("INTERESTLENS_MODEL", str(dash_model))
    monkeypatch.setenv("INTERESTLENS_MODELS", str(dash_model.parent))
    with connect_read(writable_db) as con:
        groups = log_user_groups(con)
        heavy = sorted(groups["activity_quartile"].unique())[-1]  # Q4: the most active quarter
        long_ = sorted(groups["tenure_quartile"].unique())[0]
        size = cohort_sizes(con, [], group_members(groups, [("activity_quartile", heavy)]))
        everyone = cohort_sizes(con, [])
        share = cohort_category_share(con, [], "month", group_members(groups, [("activity_quartile", heavy)]))
    at = open_page("cohorts")
    assert not problems(at)
    assert not any("nothing to segment" in i.value for i in at.info)
    assert [s.key for s in at.selectbox][:2] == ["cohorts_a_activity_quartile", "cohorts_a_tenure_quartile"]
    assert at.selectbox(key="cohorts_a_activity_quartile").options == ["any", *sorted(groups["activity_quartile"].unique())]
    at.selectbox(key="cohorts_a_activity_quartile").set_value(heavy).run()
    assert not problems(at)
    assert at.metric[0].label == f"Cohort A: activity {md_text(heavy)}"  # escaped as markdown, shown as text
    assert at.metric[0].value == f"{size['users']:,} users"
    assert at.metric[1].value == f"{everyone['users']:,} users"
    assert 0 < size["users"] < everyone["users"]
    shown = {(t["name"], x[:10]): y for t in figure(at, "cohorts_share_A")["data"] for x, y in zip(t["x"], numbers(t["y"]), strict=True)}
    for row in share.itertuples():
        assert abs(shown[(html.escape(row.category), f"{row.period:%Y-%m-%d}")] - row.share) < 1e-9
    # the tenure groups go into the URL like any filter
    at = open_page("cohorts", cohorts_b_tenure_quartile=long_)
    assert not problems(at)
    assert at.metric[1].label == f"Cohort B: tenure {md_text(long_)}"
