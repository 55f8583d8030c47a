"""Explain: choosing a recommendation shows its explanation, which adds up (base + Σφ = f(x)) and is core's."""

from __future__ import annotations

from dashboard_helpers import USER, figure, open_page, problems

from core.checkpoint import load_checkpoint
from core.recommend import recommend_users
from core.store import connect_read


def _top(db, model) -> list[str]:
    with connect_read(db) as con:
        return recommend_users(load_checkpoint(model), con, [USER], 10)["item_id"].astype(str).tolist()


def test_choosing_a_recommendation_shows_its_explanation(dash_env):
    db, model = dash_env
    top = _top(db, model)
    at = open_page("explain", user=USER)
    assert not problems(at)
    box = at.selectbox(key="explain_item")
    assert box.value is None and any("Choose a recommendation" in i.value for i in at.info)
    assert [o.split(" · ")[0] for o in box.options] == [f"#{r}" for r in range(1, 11)]
    box.set_value(top[1]).run()
    assert not problems(at)
    assert at.query_params["item"] == top[1]
    metrics = {m.label: m.value for m in at.metric}
    fx, base = float(metrics["Score"]), float(metrics["Base (no history)"])
    table = next(d.value for d in at.dataframe if "shap" in d.value.columns)
    assert abs(base + table["shap"].sum() - fx) < 2e-3  # shown rounded to 3 decimals
    assert float(metrics["Check: sum error"]) <= 1e-4 * max(1.0, abs(fx))
    waterfall = figure(at, "explain_waterfall")["data"][0]["y"]
    assert len(waterfall) >= 2 and waterfall[-1] == "score"  # the total bar in plain words


def test_the_list_is_the_explorers_top_10_and_nothing_is_ranked_again(dash_env, monkeypatch):
    """The Explain page offers the top-10 the explorer showed for the user (the shared user view), in its order,
    without ranking the catalogue a second time (`cache.recommend`: a forward pass and a title lookup per visit)."""
    from dashboard import cache

    at = open_page("user_explorer", user=USER)
    shown = next(d.value for d in at.dataframe if {"rank", "score", "item_id"} <= set(d.value.columns))

    def ranked_again(*args, **kwargs):
        raise AssertionError("the Explain page ranked the catalogue again")

    monkeypatch.setattr(cache, "recommend", ranked_again)
    at = open_page("explain", user=USER)
    assert not problems(at)
    want = [f"#{r} · {t or i}" for r, t, i in zip(shown["rank"], shown["title"], shown["item_id"], strict=True)]
    assert at.selectbox(key="explain_item").options == want[:10]


def test_explanation_deep_link_selects_user_and_item(dash_env):
    db, model = dash_env
    top = _top(db, model)
    at = open_page("explain", user=USER, item=top[0])
    assert not problems(at)
    assert at.selectbox(key="explain_item").value == top[0]
    assert {m.label for m in at.metric} >= {"Score", "Base (no history)"}


def test_time_windows_are_labelled_bars(dash_env):
    db, model = dash_env
    at = open_page("explain", user=USER, item=_top(db, model)[0], explain_tab="Time windows")
    assert not problems(at)
    windows = figure(at, "explain_windows")  # periods are categories: one month is one labelled bar
    assert windows["layout"]["xaxis"]["type"] == "category"
    assert windows["layout"]["yaxis"]["title"]["text"] == "contribution to the score"  # plain words, no "logit"
    assert all(isinstance(x, str) for x in windows["data"][0]["x"])


def test_the_time_window_level_lives_in_the_url(dash_env):
    db, model = dash_env
    item = _top(db, model)[0]
    at = open_page("explain", user=USER, item=item, explain_tab="Time windows")
    levels = at.get("button_group")[0].options if at.get("button_group") else []
    shown = figure(at, "explain_windows")["layout"]["title"]["text"]
    assert len(levels) >= 2, levels  # the fixture's history spans several levels, so a link can pick another
    other = next(lv for lv in ("month", "week", "session", "day") if lv not in shown and any(lv in str(o) for o in levels))
    at = open_page("explain", user=USER, item=item, explain_tab="Time windows", explain_level=other)
    assert not problems(at) and f"per {other}" in figure(at, "explain_windows")["layout"]["title"]["text"]


def test_what_if_marks_items_new_to_the_top_10_and_a_repeated_item(dash_env):
    from core.store import user_history

    db, model = dash_env
    with connect_read(db) as con:
        last = user_history(con, USER).iloc[-1]
    seen, title = str(last["item_id"]), last["title"] or str(last["item_id"])
    at = open_page("explain", user=USER, item=_top(db, model)[0], explain_tab="What-if")
    assert not problems(at)
    at.text_input(key="explain_whatif_search").set_value(title.upper()).run()  # found by its title, any case
    assert seen in at.selectbox(key="explain_whatif_add").options or seen in [
        o.split("(")[-1].rstrip(")") for o in at.selectbox(key="explain_whatif_add").options]
    at.selectbox(key="explain_whatif_add").set_value(seen).run()
    assert not problems(at)
    table = next(d.value for d in at.dataframe if "rank before" in d.value.columns)
    assert table["rank before"].map(lambda r: r == "new" or r.isdigit()).all()  # never None / NaN
    assert any(f"Item {seen} is already in this history" in c.value.replace("\\", "") for c in at.caption)
