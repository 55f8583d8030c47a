"""The views sidecar in the server (`dashboard.cache.views`) and the explanation's cursor: the explorer draws a
stored user without running the model; an absent file is built once in a spawned process (not without workers)
and picked up when written; an explanation waits for its worker with no read cursor open."""

from __future__ import annotations

import shutil
import threading

import pytest
from dashboard_helpers import USER, open_page, problems

from core.trajectory import VIEWS_FILE
from core.trajectory.analyzer import TrajectoryAnalyzer
from core.trajectory.sidecar import build_views_at
from dashboard import cache
from dashboard.cache import views as server_views
from dashboard.reader import READER


@pytest.fixture(autouse=True)
def _fresh():
    """No cached user views, opened files or started builds from an earlier test."""
    _forget_users()
    server_views.forget()
    yield
    _forget_users()
    server_views.forget()


def _forget_users() -> None:
    cache.user_view.clear()
    cache.user_history.clear()


def test_the_explorer_draws_a_stored_user_without_running_the_model(dash_env, monkeypatch):
    _, model = dash_env
    assert (model / VIEWS_FILE).is_file()  # the drift job of the fixture wrote it
    monkeypatch.setattr(TrajectoryAnalyzer, "build", lambda *a, **kw: pytest.fail("the model ran for a stored user"))
    at = open_page("user_explorer", user=USER)
    assert not problems(at)
    assert len(at.get("plotly_chart")) >= 3  # trajectory, gate and timeline drawn from the file's arrays
    views = server_views.user_views(cache.database(), cache.model_ref(model), cache.trajectory_analyser(
        cache.model_ref(model)), cache.MAX_K)
    assert views is not None and views.users == 120


class _FakeProcess:
    """Records what a spawned builder would run instead of spawning it."""

    started: list[tuple] = []

    def __init__(self, target, args, name, daemon):
        self.target, self.args, self.daemon, self.pid = target, args, daemon, 0

    def start(self) -> None:
        _FakeProcess.started.append(self.args)


class _FakeContext:
    Process = _FakeProcess


def test_an_absent_file_is_built_once_in_a_spawned_process_and_picked_up(dash_env, monkeypatch, tmp_path):
    db_path, dash_model = dash_env
    model_dir = shutil.copytree(dash_model, tmp_path / "models" / "m")
    (model_dir / VIEWS_FILE).unlink()
    monkeypatch.setenv("INTERESTLENS_EXPLAIN_WORKERS", "1")
    monkeypatch.setattr(server_views.multiprocessing, "get_context", lambda kind: _FakeContext)
    _FakeProcess.started = []
    db, model = cache.database(), cache.model_ref(model_dir)
    first = cache.user_view(db, model, USER)  # computed live meanwhile
    _forget_users()
    cache.user_view(db, model, "u010")
    assert _FakeProcess.started == [(db.path, model.path)]  # once per model, whatever the users asked
    build_views_at(*_FakeProcess.started[0])  # what the spawned process runs
    analyser = cache.trajectory_analyser(model)
    views = server_views.user_views(db, model, analyser, cache.MAX_K)  # the next switch sees the new file
    assert views is not None and views.users == 120
    _forget_users()
    monkeypatch.setattr(TrajectoryAnalyzer, "build", lambda *a, **kw: pytest.fail("the model ran for a stored user"))
    again = cache.user_view(db, model, USER)
    assert again.recommendations["item_id"].tolist() == first.recommendations["item_id"].tolist()
    assert again.trajectory.change_points == first.trajectory.change_points
    assert abs(again.trajectory.distribution - first.trajectory.distribution).max() < 1e-6


def test_without_workers_nothing_is_spawned(dash_env, monkeypatch, tmp_path):
    _, dash_model = dash_env
    model_dir = shutil.copytree(dash_model, tmp_path / "models" / "m")
    (model_dir / VIEWS_FILE).unlink()
    monkeypatch.setenv("INTERESTLENS_EXPLAIN_WORKERS", "0")
    monkeypatch.setattr(server_views.multiprocessing, "get_context", lambda kind: pytest.fail("spawned"))
    model = cache.model_ref(model_dir)
    uv = cache.user_view(cache.database(), model, USER)
    assert len(uv.trajectory) > 0 and server_views.build_started(model) is None
    assert not (model_dir / VIEWS_FILE).exists()


def test_an_explanation_waits_for_its_worker_with_no_cursor_open(dash_env, monkeypatch):
    from dashboard.cache import models

    db, model = cache.database(), cache.model_ref(dash_env[1])
    seen = {}

    class Pool:
        def explain(self, job):
            # a writer (live ingest) must get the database while the worker computes
            done = threading.Event()

            def write():
                with READER.writing():
                    done.set()

            writer = threading.Thread(target=write, daemon=True)
            writer.start()
            seen["writer_got_in"] = done.wait(timeout=10)
            seen["job"] = job
            return {"explained": job.history.user_id}

    monkeypatch.setattr(models, "shared_pool", lambda: Pool())
    out = models.explain(db, model, USER, None)
    assert out == {"explained": USER} and seen["job"].history.user_id == USER
    assert seen["writer_got_in"]  # on the old code the writer waited for the whole explanation


def test_a_social_model_gets_no_views_file_and_no_build(monkeypatch, tmp_path):
    from types import SimpleNamespace

    from dashboard.cache import DbRef, ModelRef

    monkeypatch.setenv("INTERESTLENS_EXPLAIN_WORKERS", "1")
    monkeypatch.setattr(server_views.multiprocessing, "get_context", lambda kind: pytest.fail("spawned"))
    model = ModelRef(str(tmp_path), 1)
    social = SimpleNamespace(social=True)
    assert server_views.user_views(DbRef(str(tmp_path / "x.duckdb"), (1, 1, 1)), model, social, 10) is None
    assert server_views.build_started(model) is None
