"""The byte-bounded pool of shared per-user results (`dashboard.cache.shared`): sizes estimated with known answers,
the bound holds after every insertion, least recently used entries go first, one build per missing key, and the
User explorer's per-user entries all live in it under its bound."""

from __future__ import annotations

import sys
import threading
import time

import numpy as np
import pandas as pd
from dashboard_helpers import OTHER_USER, USER, open_page, problems

from dashboard.cache import shared
from dashboard.cache.shared import BytePool, deep_bytes


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


def test_the_bound_holds_after_every_insertion_and_recent_entries_stay():
    pool = BytePool(10_000)
    size = deep_bytes(b"x" * 1_000)  # ~1,033 bytes: nine fit, not ten
    for i in range(30):
        got = pool.get_or_build(("f", i), lambda i=i: b"x" * 999 + bytes([i % 256]))
        assert got[-1] == i % 256
        pool.get_or_build(("f", 0), lambda: b"never built: kept")  # keep entry 0 the most recently used
        st_ = pool.stats()
        assert st_.bytes <= st_.max_bytes and st_.entries == min(i + 1, 10_000 // size)
    keys = [k for k in pool._entries]
    assert ("f", 0) in keys and ("f", 29) in keys and ("f", 1) not in keys  # the least recently used went first
    st_ = pool.stats()
    assert st_.evicted == 30 - st_.entries and st_.misses == 30 and st_.hits == 30
    big = pool.get_or_build(("f", "big"), lambda: b"y" * 20_000)  # larger than the bound: served, not kept
    assert len(big) == 20_000 and ("f", "big") not in pool._entries and pool.stats().bytes <= 10_000
    pool.clear("f")
    assert pool.stats().entries == 0 and pool.stats().bytes == 0


def test_concurrent_callers_of_a_missing_key_build_it_once():
    pool = BytePool(1 << 20)
    built, start = [], threading.Barrier(4)

    def build():
        built.append(1)
        time.sleep(0.2)  # long enough that every caller arrives while it runs
        return np.arange(10)

    out = []

    def call():
        start.wait()
        out.append(pool.get_or_build(("g", 1), build))

    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(built) == 1 and len(out) == 4 and all(o is out[0] for o in out)
    assert pool.stats().misses == 1 and pool.stats().hits == 3


def test_the_explorer_keeps_its_per_user_entries_within_the_bound(dash_env, monkeypatch):
    pool = BytePool(1 << 30)
    monkeypatch.setattr(shared, "POOL", pool)
    at = open_page("user_explorer", user=USER)
    at.session_state["events_open_0"] = True  # "Events as a table" builds its entry only when open (lazy)
    at.run()
    assert not problems(at)
    one_user = pool.stats().bytes  # the user view, history, figures, tables, CSVs and marks of one user
    names = {k[0].rsplit(".", 1)[-1] for k in pool._entries}
    assert {"user_view", "user_history", "trajectory_figures", "timeline_figure", "events_download",
            "recommendations_csv", "_model_marks"} <= names
    pool.max_bytes = int(one_user * 1.5)  # room for one user's entries, not two
    for user in (OTHER_USER, USER, OTHER_USER):
        at.query_params["user"] = user
        at.text_input(key="user").set_value(user).run()
        assert not problems(at)
        assert [m.value for m in at.metric if m.label == "Events"]  # the page is still drawn in full
        assert pool.stats().bytes <= pool.max_bytes
    assert pool.stats().evicted > 0


def test_an_object_held_once_is_not_charged_to_each_entry():
    from dashboard.cache.shared import BytePool, deep_bytes, held_once

    common = held_once({"layout": {f"k{i}": list(range(20)) for i in range(50)}})  # like Plotly's template dict
    pool = BytePool(10 * 2**20)
    values = [{"spec": common, "x": np.zeros(1000)} for _ in range(3)]
    for n, v in enumerate(values):
        pool.get_or_build(("f", n), lambda v=v: v)
    alone = deep_bytes({"x": np.zeros(1000)})
    assert deep_bytes(common) > 10_000
    assert pool.stats().bytes <= 3 * (alone + 200)  # the common dict is charged to none of the three
