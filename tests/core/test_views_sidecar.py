"""The views sidecar (core.trajectory.sidecar): every user's explorer view read from the file equals the live
computation; a changed history, other weights or other settings are never served from it."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pandas as pd
import pytest
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from core.checkpoint import load_checkpoint
from core.store import connect_read, user_history
from core.trajectory import (
    VIEWS_FILE,
    TrajectoryAnalyzer,
    TrajectoryConfig,
    build_drift,
    build_views,
    user_view,
)
from core.trajectory.sidecar import UserViews, history_digest, views_state

ARRAYS = ("distribution", "long_term", "short_term", "baseline", "gate", "drift", "events", "short_weight",
          "model_distribution", "model_gate")


@pytest.fixture
def model_copy(trained_model_dir, tmp_path):
    """The trained test model in a folder of its own (the sidecar is written beside the weights)."""
    return shutil.copytree(trained_model_dir, tmp_path / "model")


def _users(db) -> list[str]:
    with connect_read(db) as con:
        return [r[0] for r in con.execute("SELECT DISTINCT user_id FROM events ORDER BY 1").fetchall()]


def test_every_stored_view_equals_the_live_one(synthetic_db, model_copy, monkeypatch):
    loaded = load_checkpoint(model_copy)
    built = build_views(synthetic_db, loaded, k=20)
    users = _users(synthetic_db)
    assert built.path == model_copy / VIEWS_FILE and built.users == len(users) == 120 and built.steps == 6000
    an = TrajectoryAnalyzer(loaded)
    views = views_state(model_copy, an, 20)
    assert views is not None and views.users == 120
    with connect_read(synthetic_db) as con:
        live = {u: user_view(an, con, u, 20) for u in users}
        # from here on, running the model or the change points would be a failure: the file must answer
        monkeypatch.setattr(an, "build", lambda *a, **kw: pytest.fail("the model ran for a stored user"))
        stored = {u: user_view(an, con, u, 20, views=views) for u in users}
    for u in users:
        a, b = live[u].trajectory, stored[u].trajectory
        for name in ARRAYS:
            x, y = getattr(a, name), getattr(b, name)
            assert x.shape == y.shape and np.array_equal(np.isnan(x), np.isnan(y)), (u, name)
            np.testing.assert_allclose(y, x, rtol=0, atol=1e-6, equal_nan=True, err_msg=f"{u} {name}")
        assert b.change_points == a.change_points and b.categories == a.categories
        pd.testing.assert_frame_equal(b.steps, a.steps)
        ra, rb = live[u].recommendations, stored[u].recommendations
        assert rb["item_id"].tolist() == ra["item_id"].tolist() and rb["title"].tolist() == ra["title"].tolist()
        np.testing.assert_allclose(rb["score"], ra["score"], rtol=0, atol=1e-6)
        assert stored[u].unknown_items == live[u].unknown_items
    assert sum(len(v.trajectory.change_points) for v in live.values()) > 0  # the comparison covered change points


def test_a_shorter_top_k_is_the_head_of_the_stored_one(synthetic_db, model_copy):
    loaded = load_checkpoint(model_copy)
    build_views(synthetic_db, loaded, k=20)
    an = TrajectoryAnalyzer(loaded)
    views = views_state(model_copy, an, 5)
    assert views is not None and views_state(model_copy, an, 21) is None  # more than stored: not usable
    u = _users(synthetic_db)[3]
    with connect_read(synthetic_db) as con:
        live, stored = user_view(an, con, u, 5), user_view(an, con, u, 5, views=views)
    assert stored.recommendations["item_id"].tolist() == live.recommendations["item_id"].tolist()
    assert len(stored.recommendations) == 5


def test_a_changed_history_is_computed_live(synthetic_db, model_copy):
    loaded = load_checkpoint(model_copy)
    build_views(synthetic_db, loaded, k=10)
    an = TrajectoryAnalyzer(loaded)
    views = views_state(model_copy, an, 10)
    u = _users(synthetic_db)[0]
    with connect_read(synthetic_db) as con:
        df = user_history(con, u)
    later = df.iloc[[-1]].assign(ts=df["ts"].iloc[-1] + pd.Timedelta(hours=1), item_id=df["item_id"].iloc[0])
    grown = pd.concat([df, later], ignore_index=True)  # one new event, as live ingest would add
    assert views.stored(u, an.history_of(df), 10) is not None
    assert views.stored(u, an.history_of(grown), 10) is None  # another history: never the stored view
    assert history_digest(an.history_of(grown)) != history_digest(an.history_of(df))
    with connect_read(synthetic_db) as con:
        live = user_view(an, con, u, 10, history=grown)
        via = user_view(an, con, u, 10, views=views, history=grown)
    assert len(via.trajectory) == len(df) + 1
    np.testing.assert_array_equal(via.trajectory.distribution, live.trajectory.distribution)
    assert via.recommendations["item_id"].tolist() == live.recommendations["item_id"].tolist()


def test_other_weights_or_settings_make_the_file_stale_and_a_rebuild_fixes_it(synthetic_db, model_copy):
    loaded = load_checkpoint(model_copy)
    build_views(synthetic_db, loaded, k=10)
    an = TrajectoryAnalyzer(loaded)
    assert views_state(model_copy, an, 10) is not None
    assert views_state(model_copy, TrajectoryAnalyzer(loaded, TrajectoryConfig(window=3)), 10) is None
    weights = model_copy / "model.safetensors"
    st = weights.stat()
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched, same bytes: the same weights
    assert views_state(model_copy, an, 10) is not None
    state = load_file(weights)  # retrained in the same folder: other values, same size, the touched file's mtime
    name = next(k for k, v in state.items() if v.is_floating_point())
    state[name] = state[name] + 0.5
    save_file(state, str(weights), metadata=safe_open(str(weights), "pt").metadata())
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert weights.stat().st_size == st.st_size
    assert views_state(model_copy, an, 10) is None
    build_views(synthetic_db, loaded, k=10)
    assert views_state(model_copy, an, 10) is not None
    (model_copy / VIEWS_FILE).write_bytes(b"not a safetensors file")  # damaged: rebuilt, never trusted
    assert views_state(model_copy, an, 10) is None


def test_the_drift_job_writes_the_same_views(synthetic_db, model_copy):
    loaded = load_checkpoint(model_copy)
    build_drift(synthetic_db, loaded)
    from_drift = UserViews(model_copy / VIEWS_FILE)
    an = TrajectoryAnalyzer(loaded)
    assert from_drift.usable_for(an, 50) and from_drift.users == 120
    build_views(synthetic_db, loaded)
    direct = UserViews(model_copy / VIEWS_FILE)
    u = _users(synthetic_db)[7]
    with connect_read(synthetic_db) as con:
        h = an.history_of(user_history(con, u))
    a, b = from_drift.stored(u, h, 50), direct.stored(u, h, 50)
    assert a.change_points == b.change_points and a.top == b.top
    for name, x in a.series.items():
        np.testing.assert_array_equal(x, b.series[name])


@pytest.mark.parametrize("content", [b"", b"short", b"not a safetensors file", b"\x08\x00\x00\x00\x00\x00\x00\x00{}"])
def test_a_damaged_file_is_refused_without_reading_a_made_up_length(tmp_path, content):
    (tmp_path / VIEWS_FILE).write_bytes(content)
    with pytest.raises((ValueError, KeyError)):
        UserViews(tmp_path / VIEWS_FILE)
    assert views_state(tmp_path, None, 10) is None  # the server then rebuilds it
