"""The User explorer's per-user results in Streamlit's own caches (`st.cache_resource`, bounded by
`dashboard.cache.shared`): every one is a bounded resource cache, a revisit builds nothing, the bound holds and
drops the least recently used user, two sessions asking for the same missing user build it once, and the entry
sizes the bound was chosen from (`bench/cache_budget.py`'s `deep_bytes`) are estimated with known answers."""

from __future__ import annotations

import sys
import threading
import time

import numpy as np
import pandas as pd
import pytest
from dashboard_helpers import OTHER_USER, USER, open_page, problems

import core.trajectory
from bench.cache_budget import FUNCTIONS, deep_bytes
from dashboard import cache
from dashboard.cache.shared import PER_USER_ENTRIES
from dashboard.components import explorer_views, live

CACHED = {"user_view": cache.user_view, "user_history": cache.user_history,
          "trajectory_figures": explorer_views.trajectory_figures, "timeline_figure": explorer_views.timeline_figure,
          "events_download": explorer_views.events_download, "recommendations_csv": explorer_views.recommendations_csv,
          "_model_marks": live._model_marks}


@pytest.fixture
def fresh():
    """No per-user entries from an earlier test."""
    for c in _caches().values():
        c.clear()
    yield
    for c in _caches().values():
        c.clear()


def _caches() -> dict:
    """The explorer's per-user caches as Streamlit holds them (process-wide resource caches), by function name."""
    from streamlit.runtime.caching.cache_resource_api import _resource_caches

    held = _resource_caches._function_caches.get(None, {}).values()
    return {c.display_name.rsplit(".", 1)[-1]: c for c in held if c.display_name.rsplit(".", 1)[-1] in CACHED}


def _switch(at, user):
    at.query_params["user"] = user
    at.text_input(key="user").set_value(user).run()
    assert not problems(at)
    assert [m.value for m in at.metric if m.label == "Events"]  # the page is drawn in full


def _count_user_views(monkeypatch) -> list[str]:
    """Record every user whose view core builds (the cached function's body calls it once per build)."""
    built: list[str] = []
    real = core.trajectory.user_view

    def counted(analyser, con, user_id, *args, **kwargs):
        built.append(user_id)
        return real(analyser, con, user_id, *args, **kwargs)

    monkeypatch.setattr(core.trajectory, "user_view", counted)
    return built


def test_every_per_user_result_is_a_bounded_streamlit_resource_cache(dash_env, fresh):
    assert set(CACHED) == set(FUNCTIONS)  # the bench sizes what the app caches
    at = open_page("user_explorer", user=USER)
    at.session_state["events_open_0"] = True  # "Events as a table" builds its entry only when open (lazy)
    at.run()
    assert not problems(at)
    caches = _caches()
    assert set(caches) == set(CACHED)  # each one cached by Streamlit, one entry for the one user
    for name, c in caches.items():
        assert c.max_entries == PER_USER_ENTRIES and c.ttl_seconds == 3600, name
        assert len(c._mem_cache) == 1, name


def test_a_revisit_builds_nothing_and_the_bound_drops_the_least_recent_user(dash_env, fresh, monkeypatch):
    built = _count_user_views(monkeypatch)
    at = open_page("user_explorer", user=USER)
    at.session_state["events_open_0"] = True  # every per-user function on every switch
    _switch(at, OTHER_USER)
    _switch(at, USER)  # back: drawn from the caches
    assert built == [USER, OTHER_USER]
    for func in CACHED.values():  # room for one user per function
        monkeypatch.setattr(func._info, "max_entries", 1)
    _switch(at, OTHER_USER)
    _switch(at, USER)
    assert built == [USER, OTHER_USER, OTHER_USER, USER]  # each switch evicted the other user: built again
    for name, c in _caches().items():
        assert c.max_entries == 1 and len(c._mem_cache) == 1, name


def test_two_sessions_asking_for_the_same_missing_user_build_it_once(dash_env, fresh, monkeypatch):
    built = _count_user_views(monkeypatch)
    real = core.trajectory.user_view

    def slow(*args, **kwargs):  # long enough that every caller arrives while the first one builds
        time.sleep(0.3)
        return real(*args, **kwargs)

    monkeypatch.setattr(core.trajectory, "user_view", slow)
    db, model = cache.database(), cache.model_ref(dash_env[1])
    start, out = threading.Barrier(4), []

    def call():
        start.wait()
        out.append(cache.user_view(db, model, USER))

    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(built) == 1 and len(out) == 4 and all(o is out[0] for o in out)


def test_sizes_follow_the_buffers_and_count_shared_objects_once():
    a = np.zeros(10_000)  # 80,000 bytes of data
    assert 80_000 <= deep_bytes(a) <= 80_000 + 200
    assert deep_bytes([a, a]) == deep_bytes([a]) + 8  # the same array twice: counted once (one more pointer)
    view = a[:5_000]
    assert 40_000 <= deep_bytes(view) <= 40_000 + 200  # a view alone counts its span
    assert deep_bytes((a, view)) < deep_bytes(a) + 400  # beside its base: no second copy of the data
    b = b"x" * 1000
    assert deep_bytes(b) == sys.getsizeof(b)
    lists = pd.DataFrame({"c": [["drama", "comedy"]] * 100})
    plain = pd.DataFrame({"c": ["drama"] * 100})
    assert deep_bytes(lists) > deep_bytes(plain) + 100 * sys.getsizeof(["drama", "comedy"]) // 2  # lists counted
    long = pd.DataFrame({"c": [[f"item {i:06d}", "b"] for i in range(6_400)]})  # sampled: within 10 % of exact
    seen: set[int] = set()
    exact = sum(deep_bytes(v, seen) for v in long["c"]) + long.memory_usage(deep=True, index=True).sum()
    assert abs(deep_bytes(long) - exact) <= 0.1 * exact


def test_a_frame_is_sized_as_pandas_deep_usage_plus_its_object_cells():
    """The column-by-column sum equals `memory_usage(deep=True, index=True)` for every dtype and index; cells
    that hold lists or dicts are added on top (strings are in pandas' figure already)."""
    n = 50
    frame = pd.DataFrame({"step": np.arange(n), "ts": pd.date_range("2020-01-01", periods=n, freq="h"),
                          "title": [f"title {i}" for i in range(n)], "score": np.linspace(0, 1, n),
                          "cat": pd.Categorical(["a", "b"] * (n // 2)), "flag": [True, False] * (n // 2)},
                         index=pd.Index([f"row {i}" for i in range(n)]))
    assert deep_bytes(frame) == int(frame.memory_usage(deep=True, index=True).sum())
    nested = frame.assign(tags=[["drama", "comedy"]] * n, context=[{"device": "tv"}] * n)
    seen: set[int] = set()
    cells = deep_bytes(nested["tags"].iloc[0], seen) + deep_bytes(nested["context"].iloc[0], seen)  # one object each
    assert deep_bytes(nested) == int(nested.memory_usage(deep=True, index=True).sum()) + cells


def test_the_bound_is_the_default_or_the_environments_whole_number():
    from dashboard.cache.shared import DEFAULT_CACHED_USERS, cached_users

    assert cached_users(None) == cached_users(" ") == DEFAULT_CACHED_USERS
    assert cached_users("16") == 16
    for bad in ("0", "-3", "many", "1.5"):
        with pytest.raises(ValueError, match="INTERESTLENS_CACHED_USERS must be a whole number"):
            cached_users(bad)
