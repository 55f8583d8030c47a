"""Fairness: the report's numbers on the page match the recommendations they come from."""

from __future__ import annotations

import pytest
from dashboard_helpers import figure, numbers, open_page, problems

from core.checkpoint import load_checkpoint
from core.recommend import recommend_users
from core.store import connect_read


def test_fairness_page_shows_groups_items_and_trends(dash_env):
    db, model = dash_env
    loaded = load_checkpoint(model)
    with connect_read(db) as con:
        users = [r[0] for r in con.execute("SELECT DISTINCT user_id FROM events ORDER BY 1").fetchall()]
        recs = recommend_users(loaded, con, users, 10)
        genders = dict(con.execute("SELECT attributes['gender'], count(*) FROM users GROUP BY 1").fetchall())
    at = open_page("fairness", fairness_by="gender", fairness_min_size="1")  # every window of the tiny log drawn
    assert not problems(at)
    assert at.multiselect(key="fairness_by").value == ["gender"]
    groups = next(d.value for d in at.dataframe if {"attribute", "group", "size"} <= set(d.value.columns))
    by_gender = groups[groups["attribute"] == "gender"]
    assert dict(zip(by_gender["group"], by_gender["size"], strict=True)) == genders
    assert (by_gender["NDCG@10 low"] <= by_gender["NDCG@10"]).all()
    assert (by_gender["NDCG@10"] <= by_gender["NDCG@10 high"]).all()
    assert not any(c.proto.id.endswith("-fairness_lorenz") for c in at.get("plotly_chart"))  # only the open tab

    items = open_page("fairness", fairness_by="gender", fairness_min_size="1", fairness_tab="Items & exposure")
    assert not problems(items)
    metrics = {m.label: m.value for m in items.metric}
    assert metrics["Coverage"] == f"{recs['item_id'].nunique() / len(loaded.vocab.items):.1%}"
    lorenz = figure(items, "fairness_lorenz")
    assert lorenz["layout"]["title"]["text"].startswith("Exposure Lorenz curve (Gini ")
    assert metrics["Concentration (Gini)"] in lorenz["layout"]["title"]["text"]

    trend = open_page("fairness", fairness_by="gender", fairness_min_size="1", fairness_tab="Over time")
    assert not problems(trend)
    assert any(d.value.shape[0] > 0 and "start" in d.value.columns for d in trend.dataframe)  # the trend table

    calib = open_page("fairness", fairness_by="gender", fairness_min_size="1", fairness_tab="Calibration")
    assert not problems(calib)
    table = next(d.value for d in calib.dataframe if "miscalibration" in d.value.columns)
    assert not [c for c in table.columns if "C_KL" in c]  # the plain word in the table, C_KL only in the help
    bars = figure(calib, "fairness_calib_gender")["data"][0]
    assert sorted(numbers(bars["x"])) == pytest.approx(sorted(table.loc[table["attribute"] == "gender", "miscalibration"]))


def test_the_default_grouping_is_the_reports_default(dash_env):
    """Without ?fairness_by= the page groups by the attributes the report would pick itself (never a raw age or
    an attribute of hundreds of values such as a zip code)."""
    import pandas as pd

    from core.fairness.inputs import default_attributes, known_attributes
    from core.store.views import attribute_values

    db, _ = dash_env
    with connect_read(db) as con:
        keys = [r[0] for r in con.execute("SELECT DISTINCT unnest(map_keys(attributes)) FROM users ORDER BY 1").fetchall()]
        groups = {k: len(attribute_values(con, k)) for k in keys}
    known = known_attributes(pd.DataFrame(columns=["user_id", *keys]))
    at = open_page("fairness")
    assert not problems(at)
    assert at.multiselect(key="fairness_by").value == default_attributes(known, groups)[:4]


def test_groups_under_the_minimum_size_are_grey_and_left_out_of_the_gap(dash_env):
    db, _ = dash_env
    with connect_read(db) as con:
        sizes = dict(con.execute("SELECT attributes['gender'], count(*) FROM users GROUP BY 1").fetchall())
    threshold = max(sizes.values())  # only the largest gender group is large enough: no gap to show
    at = open_page("fairness", fairness_by="gender", fairness_min_size=str(threshold))
    assert not problems(at)
    gaps = next(d.value for d in at.dataframe if "groups too small" in d.value.columns)
    row = gaps[gaps["grouped by"] == "gender"].iloc[0]
    assert row["groups too small"] == sum(n < threshold for n in sizes.values()) and row["groups compared"] == 1
    assert row["gap (best − worst)"] != row["gap (best − worst)"]  # NaN: one group cannot have a gap
    bars = figure(at, "fairness_bars_gender")["data"][0]
    grey = [c == "#cbd5e1" for c in bars["marker"]["color"]]
    assert sum(grey) == sum(n < threshold for n in sizes.values())
    assert all(("too small" in label) == g for label, g in zip(bars["y"], grey, strict=True))

    every = open_page("fairness", fairness_by="gender", fairness_min_size="1")
    gaps = next(d.value for d in every.dataframe if "groups too small" in d.value.columns)
    row = gaps[gaps["grouped by"] == "gender"].iloc[0]
    assert row["groups too small"] == 0 and row["groups compared"] == len(sizes)


def test_fairness_page_reads_a_served_log_per_variant(dash_env, writable_db, tmp_path, monkeypatch):
    """Source = a served log's variant: the page shows core.served's report of what was served, not the model's."""
    import pandas as pd

    from core.fairness import calendar_windows, popularity_recommender, window_split
    from core.served import ingest_served, served_report

    with connect_read(writable_db) as con:
        events = con.execute("SELECT user_id, item_id, ts FROM events ORDER BY ts, run_id, seq").df()
    rows, windows = [], calendar_windows(events["ts"], "week")
    for (start, end), (_, nxt) in zip(windows[:-1], windows[1:], strict=True):
        histories, _ = window_split(events, start, end, nxt)
        if len(histories):
            recs = popularity_recommender(histories, 10)
            rows.append(recs.assign(served_at=(end - pd.Timedelta(seconds=1)).isoformat(), variant="pop"))
    pd.concat(rows).to_csv(tmp_path / "served.csv", index=False)
    ingest_served(writable_db, tmp_path / "served.csv")
    monkeypatch.setenv("INTERESTLENS_DB", str(writable_db))

    at = open_page("fairness", fairness_source="served:pop", fairness_by="gender", fairness_min_size="1")
    assert not problems(at)
    assert at.selectbox(key="fairness_source").options == ["model", "served:pop"]
    core = served_report(writable_db, "pop", k=10, by=["gender"], n_boot=200, freq="week", min_group_size=1)
    items = open_page("fairness", fairness_source="served:pop", fairness_by="gender", fairness_min_size="1",
                      fairness_tab="Items & exposure")
    assert not problems(items)
    metrics = {m.label: m.value for m in items.metric}
    assert metrics["Coverage"] == f"{core.items.coverage:.1%}" and metrics["Concentration (Gini)"] == f"{core.items.gini:.3f}"
    assert metrics["Average popularity"] == f"{core.items.arp:.1f}"
    groups = next(d.value for d in at.dataframe if {"attribute", "group", "size"} <= set(d.value.columns))
    by_gender = groups[groups["attribute"] == "gender"].set_index("group")
    expected = [r for r in core.users if r.attribute == "gender"]
    assert {r.group: r.size for r in expected} == by_gender["size"].astype(int).to_dict()
    assert {r.group: r.values["NDCG@10"] for r in expected} == pytest.approx(by_gender["NDCG@10"].to_dict())
    assert any("served log, variant pop" in c.value for c in at.caption)
    # the Over time tab reads the served lists per window (core.served's trend), not a model's
    trend = open_page("fairness", fairness_source="served:pop", fairness_by="gender", fairness_min_size="1",
                      fairness_window="week", fairness_tab="Over time")
    assert not problems(trend)
    table = next(d.value for d in trend.dataframe if "start" in d.value.columns)
    assert table["users"].tolist() == [r.users for r in core.over_time if r.users >= 1]

    model = open_page("fairness", fairness_by="gender", fairness_min_size="1")  # the default source is the model
    assert not problems(model) and model.selectbox(key="fairness_source").value == "model"
    assert not any("served log" in c.value for c in model.caption)

    # a served log needs no model at all: the app without one still audits what was served
    monkeypatch.delenv("INTERESTLENS_MODEL")
    monkeypatch.setenv("INTERESTLENS_MODELS", str(tmp_path / "no-models"))
    bare = open_page("fairness", fairness_source="served:pop", fairness_by="gender", fairness_min_size="1",
                     fairness_tab="Items & exposure")
    assert not problems(bare)
    assert {m.label: m.value for m in bare.metric}["Coverage"] == f"{core.items.coverage:.1%}"


def test_the_trend_leaves_out_the_windows_core_marks_and_draws_its_intervals_as_bands(dash_env):
    from core.fairness import TREND_USERS, over_time, shown_windows
    from core.fairness.inputs import load_inputs

    db, model = dash_env
    loaded = load_inputs(db, model, k=10)
    inp = loaded.inputs
    every = over_time(inp.events, loaded.recommend_fn, 10, inp.item_categories, inp.user_attributes, ["gender"],
                      "month", min_users=1, max_users=TREND_USERS)
    sizes = sorted({w.users for w in every})
    assert len(sizes) >= 2  # the tiny log has windows of different sizes
    threshold = sizes[-1]  # only the largest windows are drawn
    expected, left_out = shown_windows(over_time(inp.events, loaded.recommend_fn, 10, inp.item_categories,
                                                 inp.user_attributes, ["gender"], "month", min_users=threshold,
                                                 max_users=TREND_USERS))
    assert expected and left_out
    at = open_page("fairness", fairness_by="gender", fairness_min_size=str(threshold), fairness_window="month",
                   fairness_tab="Over time")
    assert not problems(at)
    table = next(d.value for d in at.dataframe if "start" in d.value.columns)
    assert list(table["start"]) == [w.start for w in expected]
    assert any(c.value.startswith(f"{len(left_out)} months with fewer than {threshold} users") for c in at.caption)
    fig = figure(at, "fairness_trend_quality")
    bands = {t["name"]: t for t in fig["data"] if t.get("fill") == "toself"}
    assert set(bands) == {"NDCG@10 interval", "HR@10 interval"}
    y = bands["NDCG@10 interval"]["y"]
    lows, highs = [w.intervals["NDCG@10"][0] for w in expected], [w.intervals["NDCG@10"][1] for w in expected]
    assert [round(v, 9) for v in y] == [round(v, 9) for v in highs + lows[::-1]]
    assert all(lo <= w.metrics["NDCG@10"] <= hi for w, lo, hi in zip(expected, lows, highs, strict=True))
    gaps = figure(at, "fairness_trend_gaps")
    assert any(t["name"] == "gap:gender interval" for t in gaps["data"])
