"""Overview: the counters are the store's summary, the charts are drawn, the period lives in the URL."""

from __future__ import annotations

import html

from dashboard_helpers import figure, open_page, problems, title

from core.store import connect_read, dataset_summary, events_over_time


def test_overview_shows_the_dataset_summary(dash_env):
    db, _ = dash_env
    with connect_read(db) as con:
        s = dataset_summary(con)
    at = open_page()
    assert not problems(at)
    assert at.title[0].value == "Overview"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {
        "Users": f"{s['users']:,}",
        "Items": f"{s['items']:,}",
        "Events": f"{s['events']:,}",
        "Categories": f"{len(s['categories']):,}",
    }
    assert title(figure(at, "overview_events")) == "Events over time"
    share = figure(at, "overview_share")
    assert {t["name"] for t in share["data"]} == {html.escape(c) for c in s["categories"]}  # shown as text


def _periods(fig: dict) -> set[str]:
    return {x[:10] for trace in fig["data"] for x in trace["x"]}


def test_period_switch_regroups_events_and_comes_from_the_url(dash_env):
    db, _ = dash_env
    with connect_read(db) as con:
        weeks = events_over_time(con, "week")
        quarters = events_over_time(con, "quarter")
    at = open_page()
    at.segmented_control(key="overview_period").set_value("week").run()
    assert not problems(at)
    assert _periods(figure(at, "overview_events")) == {f"{p:%Y-%m-%d}" for p in weeks["period"]}
    linked = open_page(None, overview_period="quarter")
    assert linked.segmented_control(key="overview_period").value == "quarter"
    assert _periods(figure(linked, "overview_events")) == {f"{p:%Y-%m-%d}" for p in quarters["period"]}
