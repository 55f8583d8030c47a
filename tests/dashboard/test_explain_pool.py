"""Explanations in worker processes (`dashboard.explain_pool`): the pooled explanation is the in-process one, the
Explain page shows it, a full queue is refused with one sentence, a dead worker costs no explanation, and the
workers are gone after the pool closes."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time

import duckdb
import numpy as np
import pytest
from dashboard_helpers import USER, open_page, problems

from core.checkpoint import load_checkpoint, weights_fingerprint
from core.explain import HistoryExplainer
from core.recommend import recommend_users
from core.store import connect_read
from dashboard import explain_pool
from dashboard.explain_pool import ExplainBusy, ExplainJob, ExplainPool, explain_here, read_job


def _job(dash_env, item: str | None = None) -> ExplainJob:
    db, model = dash_env
    with connect_read(db) as con:
        return read_job(con, load_checkpoint(model), str(model), weights_fingerprint(model), USER, item)


def _same(a, b) -> None:
    assert (a.user_id, a.target, a.foil, a.positions.tolist()) == (b.user_id, b.target, b.foil, b.positions.tolist())
    assert [lab.text() for lab in a.labels] == [lab.text() for lab in b.labels]
    np.testing.assert_allclose(a.values, b.values, rtol=0, atol=1e-6)
    assert abs(a.fx - b.fx) < 1e-6 and abs(a.base - b.base) < 1e-6


@pytest.fixture(scope="module")
def pool():
    """One worker for the module's tests (each spawn imports torch and SHAP: seconds of CPU)."""
    p = ExplainPool(1)
    yield p
    p.close()


def _workers(p: ExplainPool) -> list:
    return list(p._executor._processes.values())


def test_a_pooled_explanation_equals_the_in_process_one(dash_env, pool):
    db, model = dash_env
    with connect_read(db) as con:
        second = recommend_users(load_checkpoint(model), con, [USER], 10)["item_id"].astype(str).iloc[1]
    here = HistoryExplainer(load_checkpoint(str(model), "cpu"))
    for item in (None, second):  # the top-1 by default, and a named item
        job = _job(dash_env, item)
        _same(pool.explain(job), explain_here(job, here))
    warmed = pool.warm(str(db), str(model), job.model_stamp)
    assert [f.result(timeout=300) for f in warmed] == [max(_users(db), key=_users(db).get)]  # the most active user
    assert pool.warm(str(db), str(model), job.model_stamp) == []  # once per database and model


def test_a_worker_never_opens_the_database_so_a_writer_holding_it_stops_no_explanation(dash_env, pool, tmp_path):
    db, _ = dash_env
    copy = tmp_path / "held.duckdb"
    shutil.copy(db, copy)
    with connect_read(copy) as con:
        job = read_job(con, load_checkpoint(dash_env[1]), str(dash_env[1]), weights_fingerprint(dash_env[1]), USER, None)
    want = explain_here(job)
    with duckdb.connect(str(copy)) as writer:  # held read-write: a read-only open elsewhere would wait, then fail
        writer.execute("SELECT count(*) FROM events").fetchone()
        _same(pool.explain(job), want)
    copy.unlink()  # and with the file gone: the job carries everything the worker needs
    _same(pool.explain(job), want)


def _users(db) -> dict[str, int]:
    with connect_read(db) as con:
        rows = con.execute("SELECT user_id, count(*) FROM events GROUP BY user_id").fetchall()
    return {str(u): int(n) for u, n in rows}


def test_a_full_queue_is_refused_with_one_sentence(dash_env, pool, monkeypatch):
    monkeypatch.setattr(pool, "max_pending", 1)
    first: list = []
    t = threading.Thread(target=lambda: first.append(pool.explain(_job(dash_env))))
    t.start()
    deadline = time.monotonic() + 120
    while pool._pending == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(ExplainBusy, match=r"computing 1 explanations right now; try again in a few seconds\."):
        pool.explain(_job(dash_env))  # max_pending = 1: the second waits for nothing, it is refused
    t.join(300)
    assert len(first) == 1 and first[0].user_id == USER  # the running one was not disturbed
    assert pool._pending == 0


def test_a_dead_worker_costs_no_explanation_and_is_replaced(dash_env, pool):
    want = explain_here(_job(dash_env))
    _same(pool.explain(_job(dash_env)), want)  # starts the worker
    (worker,) = _workers(pool)
    os.kill(worker.pid, signal.SIGKILL)
    worker.join(30)
    _same(pool.explain(_job(dash_env)), want)  # computed in this process while the pool restarts
    _same(pool.explain(_job(dash_env)), want)  # and by a new worker
    assert [w.pid for w in _workers(pool)] != [worker.pid]


def test_the_explain_page_shows_the_pooled_explanation(dash_env, monkeypatch):
    from dashboard import cache

    monkeypatch.setenv(explain_pool.WORKERS_ENV, "1")
    monkeypatch.setattr(explain_pool, "_POOL", None)
    monkeypatch.setattr(explain_pool, "_CONFIGURED", threading.Event())
    cache.explain.clear()  # an in-process result cached by another test must not answer for the pool
    top = _top_item(dash_env)
    workers: list = []
    try:
        at = open_page("explain", user=USER, item=top)
        assert not problems(at), problems(at)
        pool = explain_pool._POOL
        assert pool is not None and _workers(pool)  # the page's explanation came from a worker
        metrics = {m.label: m.value for m in at.metric}
        want = explain_here(_job(dash_env, top))
        assert metrics["Score"] == f"{want.fx:.3f}" and metrics["Base (no history)"] == f"{want.base:.3f}"
    finally:
        if explain_pool._POOL is not None:
            workers = _workers(explain_pool._POOL)
            explain_pool._POOL.close()
    for w in workers:  # closing the pool (as at the server's exit) stops its workers
        w.join(30)
    assert workers and not any(w.is_alive() for w in workers)
    job = _job(dash_env)  # warming a closed pool (a page run during shutdown) is skipped, never an error
    assert explain_pool._POOL.warm(str(dash_env[0]), job.model_path, job.model_stamp + "-other") == []


def test_a_bad_worker_setting_is_one_sentence_on_the_explain_page_only(dash_env, monkeypatch):
    from dashboard import cache

    monkeypatch.setenv(explain_pool.WORKERS_ENV, "many")
    monkeypatch.setattr(explain_pool, "_POOL", None)
    monkeypatch.setattr(explain_pool, "_CONFIGURED", threading.Event())
    cache.explain.clear()
    cache.user_view.clear()  # so the explorer's user view is built again and asks for the warm-up
    at = open_page("user_explorer", user=USER)
    assert not problems(at) and [m.value for m in at.metric if m.label == "Events"]  # the explorer is unaffected
    at = open_page("explain", user=USER, item=_top_item(dash_env))
    shown = [p.replace("\\", "") for p in problems(at)]  # the page escapes Markdown characters (md_text)
    assert [p for p in shown if "INTERESTLENS_EXPLAIN_WORKERS must be a whole number from 0 to 4, not 'many'." in p]


def _top_item(dash_env) -> str:
    db, model = dash_env
    with connect_read(db) as con:
        return recommend_users(load_checkpoint(model), con, [USER], 1)["item_id"].astype(str).iloc[0]


def test_the_worker_count_is_read_from_the_environment(monkeypatch):
    from core.errors import UserInputError

    monkeypatch.setenv(explain_pool.WORKERS_ENV, "2")
    assert explain_pool.configured_workers() == 2
    monkeypatch.setenv(explain_pool.WORKERS_ENV, "0")
    assert explain_pool.configured_workers() == 0
    for bad in ("-1", "two", str(explain_pool.MAX_WORKERS + 1)):
        monkeypatch.setenv(explain_pool.WORKERS_ENV, bad)
        with pytest.raises(UserInputError, match="must be a whole number from 0 to"):
            explain_pool.configured_workers()
    monkeypatch.delenv(explain_pool.WORKERS_ENV)
    assert explain_pool.configured_workers() == max(0, min(explain_pool.MAX_WORKERS, (os.cpu_count() or 1) - 1))
