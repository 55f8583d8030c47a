"""Store views the dashboard reads: user attributes, model fit, ingest runs and rejects (known answers by hand)."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from core.ingest import ingest_frames
from core.store import connect_read
from core.store.views import ingest_runs, model_fit, run_rejects, user_attributes


def test_user_attributes(synthetic_db):
    with connect_read(synthetic_db) as con:
        uid, gender = con.execute("SELECT user_id, attributes['gender'] FROM users ORDER BY user_id LIMIT 1").fetchone()
        assert user_attributes(con, uid)["gender"] == gender
        assert user_attributes(con, "nobody") == {}


def test_model_fit_counts_only_what_has_events(writable_db):
    events = pd.DataFrame({"user_id": ["a", "a", "b"], "item_id": ["x", "new", "x"],
                           "ts": pd.to_datetime(["2026-06-01", "2026-06-02", "2026-06-03"]),
                           "event_type": ["click", "zap", "click"]})
    items = pd.DataFrame({"item_id": ["x", "new", "never"], "title": ["X", "N", "V"],
                          "categories": [["Sports"], ["Brand New Cat"], ["Unused Cat"]]})
    ingest_frames(writable_db, events, None, items)
    with connect_read(writable_db) as con:
        vocab_items = [r[0] for r in con.execute("SELECT DISTINCT item_id FROM events WHERE item_id <> 'new'").fetchall()]
        cats = [r[0] for r in con.execute(
            "SELECT DISTINCT unnest(categories) FROM items WHERE item_id IN (SELECT item_id FROM events)"
            " AND item_id <> 'new'").fetchall()]
        types = [r[0] for r in con.execute("SELECT DISTINCT event_type FROM events WHERE event_type <> 'zap'").fetchall()]
        fit = model_fit(con, vocab_items, cats, types, dt.datetime(2026, 5, 31))
    assert fit.unseen_items == 1  # "new"; "never" has no events and is not counted
    assert fit.unseen_categories == ["Brand New Cat"]
    assert fit.unseen_event_types == ["zap"]
    assert fit.events_after == 3 and not fit.fits


def test_ingest_runs_and_rejects(writable_db):
    events = pd.DataFrame({"user_id": ["a", None], "item_id": ["x", "y"],
                           "ts": pd.to_datetime(["2026-06-01", "2026-06-02"])})
    result = ingest_frames(writable_db, events)
    with connect_read(writable_db) as con:
        runs = ingest_runs(con, 5)
        rejects = run_rejects(con, result.run_id)
    assert runs["run_id"].iloc[0] == result.run_id
    assert (runs["accepted"].iloc[0], runs["rejected"].iloc[0]) == (1, 1)
    assert len(rejects) == result.rejected == 1
