"""A small run of the load benchmark (bench/load.py's data, server and sessions modules): three browser sessions at once against one `interestlens serve`
for 20 seconds, one of them also opening explanations. Not timed: every session must complete interactions and the
run must see no error (page errors, console errors, failed requests, HTTP errors, Streamlit exception or error
elements, interactions that never finish)."""

from __future__ import annotations

import asyncio


def test_three_sessions_for_twenty_seconds_without_errors(dash_env, tmp_path, chromium):
    from bench.load_data import user_counts  # the benchmark's own code, not a copy
    from bench.load_server import server
    from bench.load_sessions import drive

    db, model = dash_env
    counts = user_counts(db)
    with server(db, model, tmp_path / "server.log") as (url, pid):
        out = asyncio.run(drive(url, counts, sessions=3, seconds=20, explainers=1, interval=5, warmup=5,
                                server_pid=pid, timeout_s=240))
    assert out["errors"] == []
    assert [s["first_load_ms"] is not None for s in out["sessions"]] == [True] * 3
    assert all(s["switches"] >= 1 for s in out["sessions"]), out["sessions"]
    assert out["sessions"][0]["explains"] and out["sessions"][0]["explanations"] >= 1, out["sessions"][0]
    assert out["server_rss_mb"]["end"] > 0  # the server's memory was read while it ran
