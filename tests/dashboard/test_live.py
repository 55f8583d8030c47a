"""Live mode: with the switch on, a batch appended to the database between two runs shows up on the user explorer
(events, trajectory, recommendations) and on the overview, marked as new; items and categories the model has
never seen are marked and skipped; the app holds no read connection between refreshes."""

from __future__ import annotations

from pathlib import Path

import pytest
from dashboard_helpers import USER, figure, numbers, open_page, problems

from core.checkpoint import load_checkpoint
from core.ingest import ColumnMapping, ingest
from core.recommend import recommend_users
from core.store import connect_read, dataset_summary, user_history
from dashboard.reader import READER

KNOWN = "user_id,item_id,timestamp,event,device\n" + f"{USER},i086,2025-12-18T10:00:00,view,desktop\n"
NEW = ("user_id,item_id,timestamp,event,category,title,device\n"
       f"{USER},znew1,2025-12-18T10:05:00,view,Space,Brand New Rocket,mobile\n")


@pytest.fixture
def live_env(monkeypatch, writable_db, dash_model) -> tuple[Path, Path]:
    """The app on a private, writable copy of the tiny database."""
    monkeypatch.setenv("INTERESTLENS_DB", str(writable_db))
    monkeypatch.setenv("INTERESTLENS_MODEL", str(dash_model))
    monkeypatch.setenv("INTERESTLENS_MODELS", str(dash_model.parent))
    return writable_db, dash_model


def append_batch(db: Path, tmp: Path) -> None:
    """Two ingest runs, as `interestlens follow` writes them: a known item, then a new item in a new category."""
    for name, text, mapping in [
        ("known.csv", KNOWN, ColumnMapping(event="event", context=("device",))),
        ("new.csv", NEW, ColumnMapping(event="event", category="category", title="title", context=("device",))),
    ]:
        (tmp / name).write_text(text)
        with READER.writing():  # this process holds no read connection while it writes (DuckDB's rule)
            ingest(db, "generic", tmp / name, mapping=mapping)


def _metrics(at) -> dict[str, tuple[str, str | None]]:
    return {m.label: (m.value, m.proto.delta or None) for m in at.metric}


def test_a_batch_appended_while_live_shows_up_marked_new(live_env, tmp_path):
    db, model = live_env
    at = open_page("user_explorer", user=USER, grain="event")  # the per-event view: one x per event
    at.session_state["events_open_0"] = True  # "Events as a table" draws only once opened (a lazy expander)
    at.toggle(key="live").set_value(True).run()
    assert not problems(at)
    with connect_read(db) as con:
        n0 = len(user_history(con, USER))
    assert _metrics(at)["Events"] == (f"{n0:,}", None)
    assert any("Live since run" in c.value for c in at.caption)
    assert not READER.is_open  # a live page keeps no connection between refreshes

    append_batch(db, tmp_path)
    at.run()
    assert not problems(at)
    assert _metrics(at)["Events"] == (f"{n0 + 2:,}", "+2 live")
    note = next(c.value for c in at.caption if c.value.startswith("New: "))
    assert "2 events since live mode was switched on" in note
    assert "1 new item the model has never seen, skipped by it (✕): znew1" in note
    assert "new categories: Space" in note
    fit = [w.value.replace("\\", "") for w in at.sidebar.warning]  # markdown escapes off
    assert fit == ["The database has data this model has never seen: 1 item; the category Space. The model skips "
                   "them in its inputs; retrain it to include them."]
    timeline = figure(at, "user_timeline")
    ringed = next(t for t in timeline["data"] if t["name"] == "new since live on")
    assert {h.rsplit("step ", 1)[1] for h in ringed["hovertext"]} == {str(n0), str(n0 + 1)}
    crossed = next(t for t in timeline["data"] if t["name"] == "new to the model (skipped)")
    assert [h.split("<br>")[0] for h in crossed["hovertext"]] == ["Brand New Rocket"]
    traj = figure(at, "user_trajectory")
    assert max(numbers(traj["data"][0]["x"])) == n0 + 1  # one interest per event, the new ones included
    assert "new since live on" in [a["text"] for a in traj["layout"]["annotations"]]
    table = next(d.value for d in at.dataframe if "new" in d.value.columns)
    assert table.loc[table["new"], "step"].tolist() == [n0, n0 + 1]
    with connect_read(db) as con:
        recs = recommend_users(load_checkpoint(model), con, [USER], 10)
    shown = next(d.value for d in at.dataframe if "rank" in d.value.columns and "score" in d.value.columns)
    assert shown["item_id"].tolist() == recs["item_id"].tolist()  # the model reads the new known event, skips znew1
    assert "znew1" not in shown["item_id"].tolist()
    assert not READER.is_open


def test_the_overview_counter_and_volume_follow_the_batch(live_env, tmp_path):
    db, _ = live_env
    with connect_read(db) as con:
        before = dataset_summary(con)
    at = open_page()
    at.toggle(key="live").set_value(True).run()
    assert _metrics(at)["Events"] == (f"{before['events']:,}", None)
    append_batch(db, tmp_path)
    at.run()
    assert not problems(at)
    assert _metrics(at)["Events"] == (f"{before['events'] + 2:,}", "+2 live")
    assert _metrics(at)["Items"][0] == f"{before['items'] + 1:,}"
    volume = figure(at, "overview_events")
    assert sum(sum(numbers(t["y"])) for t in volume["data"]) == before["events"] + 2
    assert any(c.value.startswith("Live: the counters and this chart refresh every 2 s") for c in at.caption)


def test_without_live_nothing_is_marked_as_new(live_env, tmp_path):
    db, _ = live_env
    append_batch(db, tmp_path)
    at = open_page("user_explorer", user=USER)
    assert not problems(at)
    assert at.toggle(key="live").value is False
    names = [t["name"] for t in figure(at, "user_timeline")["data"]]
    assert "new since live on" not in names and "new to the model (skipped)" in names
    note = next(c.value for c in at.caption if c.value.startswith("New: "))
    assert "since live mode" not in note and "znew1" in note


def test_the_refresh_interval_is_part_of_a_shared_link(live_env):
    # The refresh selectbox is bound to ?user_live_every= by its shown label (the browser writes the URL back).
    at = open_page("user_explorer", user=USER, user_live_every="every 5 s")
    at.toggle(key="live").set_value(True).run()  # (the overview registered the switch first, so not from the URL)
    assert not problems(at)
    assert at.selectbox(key="user_live_every").value == 5
    assert any(c.value.startswith("Live · checked") for c in at.caption)
