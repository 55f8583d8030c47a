"""What is new relative to a model (users, items, categories, event types, context values), that the model skips
items it has never seen, and the cheap change markers a live reader polls."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from core.checkpoint import load_checkpoint
from core.ingest import ingest_frames
from core.live import data_version, events_since, new_since_model, trained_until_of
from core.recommend import recommend_users, unknown_history_items
from core.sequences import load_sequences, make_batch
from core.store import connect_read


def _last_ts(db) -> dt.datetime:
    with connect_read(db) as con:
        return con.execute("SELECT max(ts) FROM events").fetchall()[0][0]


def _append(db, last: dt.datetime):
    """Later than everything the model saw: a known user on a new item (new category), a new user on a known
    item with a new event type and a new device."""
    events = pd.DataFrame(
        {
            "user_id": ["u000", "new-user"],
            "item_id": ["i-new", "i000"],
            "ts": [last + dt.timedelta(hours=1), last + dt.timedelta(hours=2)],
            "event_type": ["view", "share"],
            "value": [1.0, 1.0],
            "device": ["mobile", "smart-tv"],
        }
    )
    items = pd.DataFrame({"item_id": ["i-new"], "title": ["Brand New"], "categories": [["Robotics"]]})
    return ingest_frames(db, events, items=items, context=["device"])


def test_new_since_model_lists_exactly_what_the_model_has_not_seen(writable_db, untrained_model_dir):
    loaded = load_checkpoint(untrained_model_dir)
    last = _last_ts(writable_db)
    with connect_read(writable_db) as con:
        before = new_since_model(con, loaded.vocab, last)
    assert not before.anything_new and before.n_new_users == before.n_new_items == 0
    _append(writable_db, last)
    with connect_read(writable_db) as con:
        new = new_since_model(con, loaded.vocab, last)
        capped = new_since_model(con, loaded.vocab, None, limit=0)
    assert (new.events_after, new.n_new_users, new.new_users) == (2, 1, ["new-user"])
    assert (new.n_new_items, new.new_items) == (1, ["i-new"])
    assert (new.new_categories, new.new_event_types, new.new_context) == (["Robotics"], ["share"], {"device": ["smart-tv"]})
    assert new.anything_new and new.as_dict()["new_items"] == ["i-new"]
    # without a cut-off nothing is "after" it; counts stay exact when the lists are capped
    assert (capped.events_after, capped.n_new_users, capped.n_new_items, capped.new_items) == (0, 0, 1, [])


def test_trained_until_of_reads_the_model_card():
    assert trained_until_of({"trained_until": "2025-12-31T23:00:00Z"}) == dt.datetime(2025, 12, 31, 23, 0)
    assert trained_until_of({"epochs": 0}) is None


def test_the_model_skips_an_item_it_has_never_seen(writable_db, untrained_model_dir):
    loaded = load_checkpoint(untrained_model_dir)
    with connect_read(writable_db) as con:
        before = recommend_users(loaded, con, ["u000"], k=20)
    _append(writable_db, _last_ts(writable_db))  # u000's latest event is now an unseen item
    with connect_read(writable_db) as con:
        after = recommend_users(loaded, con, ["u000"], k=20)
        seqs = load_sequences(con, loaded.vocab, users=["u000"])
        unknown = unknown_history_items(loaded, con, "u000")
    history = seqs.history(0)
    assert history.items[-1] == 0 and (history.items[:-1] > 0).all()  # mapped to index 0 ...
    batch = make_batch([history], loaded.config.max_len, n_context=len(loaded.vocab.context))
    assert int(batch.mask.sum()) == min(len(history) - 1, loaded.config.max_len)  # ... and left out of the window
    assert unknown.item_ids == ["i-new"]
    pd.testing.assert_frame_equal(before, after)  # same scores as if the event had not happened
    assert np.isfinite(after["score"]).all()


def test_data_version_and_events_since_mark_a_new_batch(writable_db):
    with connect_read(writable_db) as con:
        v0 = data_version(con)
    result = _append(writable_db, _last_ts(writable_db))
    with connect_read(writable_db) as con:
        v1 = data_version(con)
        new = events_since(con, v0.last_run_id)
        mine = events_since(con, v0.last_run_id, user_id="new-user")
    assert v1.last_run_id == result.run_id == v0.last_run_id + 1
    assert v1.events == v0.events + 2 and v1.last_event > v0.last_event
    assert list(new["item_id"]) == ["i-new", "i000"] and (new["run_id"] == result.run_id).all()
    assert list(mine["user_id"]) == ["new-user"]
