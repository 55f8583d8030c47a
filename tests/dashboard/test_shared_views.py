"""The User explorer's shared views (`dashboard.components.explorer_views`, the shared `user_view` and
`user_history`): a revisited user gets exactly what a fresh build draws, and a new commit or a retrained model is a
new entry, never the old drawing."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import plotly.io as pio
from dashboard_helpers import OTHER_USER, USER, figure, open_page, problems
from plotly.basedatatypes import BaseFigure
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from core.checkpoint import load_checkpoint, weights_fingerprint
from core.store import connect_read
from core.trajectory import TrajectoryAnalyzer, grid_view, user_view, views_state
from dashboard import cache
from dashboard.components import charts, explorer_views, model_charts
from dashboard.components.charts import PreparedFigure
from dashboard.components.trajectory_chart import trajectory_chart


def _spec(fig) -> dict:
    """What `st.plotly_chart` sends: `plotly.io.to_json` of the figure's dict."""
    return json.loads(pio.to_json(fig.to_dict(), validate=False))


def test_a_prepared_figure_serialises_as_its_figure_and_stays_unchanged():
    x = np.arange(50, dtype=np.float64)
    fig = charts.figure([dict(type="scatter", x=x, y=x**2, name="a<b>", mode="lines")],
                        charts.base_layout(height=200, title=dict(text="t")))
    prepared = PreparedFigure(fig)
    assert isinstance(prepared, BaseFigure)  # what st.plotly_chart takes without validating it again
    want = pio.to_json(fig, validate=False)
    for _ in range(2):  # handed out again and again: the same JSON, nothing consumed or changed
        assert pio.to_json(prepared.to_dict(), validate=False) == want
    assert prepared.to_dict() is prepared.to_dict()  # built once, not copied per run


def test_a_revisited_user_gets_the_same_figures_as_a_fresh_build(dash_env):
    db, model = dash_env
    at = open_page("user_explorer", user=USER)
    assert not problems(at)
    first = {k: figure(at, k) for k in ("user_trajectory", "user_gate", "user_timeline")}
    for user in (OTHER_USER, USER):  # away and back: the second visit is drawn from the shared caches
        at.query_params["user"] = user
        at.text_input(key="user").set_value(user).run()
        assert not problems(at)
    assert {k: figure(at, k) for k in first} == first
    assert [m.value for m in at.metric if m.label == "Events"] == [f"{len(cache.user_history(cache.database(), USER)):,}"]
    # ... and what core computes now, drawn without any cache (from the model's views file, as the app reads it:
    # the drift job wrote it; tests/core/test_views_sidecar.py shows it equals the live computation to 1e-6)
    analyser = TrajectoryAnalyzer(load_checkpoint(model))
    views = views_state(model, analyser, cache.MAX_K)
    assert views is not None
    with connect_read(db) as con:
        uv = user_view(analyser, con, USER, cache.MAX_K, views=views)
    fresh = trajectory_chart(grid_view(uv.trajectory, "auto", model_charts.VIEWS["model"]),
                             "Interest over categories — model")
    assert first["user_trajectory"] == _spec(fresh)
    assert first["user_gate"] == _spec(model_charts.gate_line(uv.trajectory))


def test_a_new_commit_or_retrained_model_is_a_new_entry(monkeypatch, writable_db, dash_model, tmp_path):
    from test_live import append_batch

    model_dir = tmp_path / "models" / "m"
    shutil.copytree(dash_model, model_dir)
    monkeypatch.setenv("INTERESTLENS_DB", str(writable_db))
    db, model = cache.database(), cache.model_ref(model_dir)
    figs = explorer_views.trajectory_figures(db, model, USER, "model", "auto", True, None, None)
    assert explorer_views.trajectory_figures(db, model, USER, "model", "auto", True, None, None) is figs  # shared
    table, data = explorer_views.events_download(db, USER)
    n = len(table)
    before = _spec(explorer_views.timeline_figure(db, USER, None, None, None))

    append_batch(writable_db, tmp_path)  # two events of USER committed
    db2 = cache.database()
    assert db2 != db
    table2, data2 = explorer_views.events_download(db2, USER)
    assert len(table2) == n + 2 and data2.count(b"\n") == data.count(b"\n") + 2
    history2 = cache.user_history(db2, USER)
    assert _spec(explorer_views.timeline_figure(db2, USER, None, None, None)) == _spec(charts.timeline(history2))
    assert len(history2) == n + 2 and len(cache.user_history(db, USER)) == n  # one entry per database state
    assert _spec(explorer_views.timeline_figure(db, USER, None, None, None)) == before != _spec(charts.timeline(history2))

    figs2 = explorer_views.trajectory_figures(db2, model, USER, "model", "auto", True, None, None)
    assert figs2 is not figs
    weights = model_dir / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    os.utime(weights, ns=(stamp + 10**9, stamp + 10**9))  # touched, same bytes: the same model, every entry kept
    assert cache.model_ref(model_dir) == model
    assert explorer_views.trajectory_figures(db2, model, USER, "model", "auto", True, None, None) is figs2

    state = load_file(weights)  # retrained in the same folder: other values, same shapes, size and header
    name = next(k for k, v in state.items() if v.is_floating_point())
    state[name] = state[name] + 0.5
    save_file(state, str(weights), metadata=safe_open(str(weights), "pt").metadata())
    os.utime(weights, ns=(stamp + 10**9, stamp + 10**9))  # even with the touched file's mtime
    model2 = cache.model_ref(model_dir)
    assert model2 != model and model2.stamp == weights_fingerprint(model_dir)
    again = explorer_views.trajectory_figures(db2, model2, USER, "model", "auto", True, None, None)
    assert again is not figs2


def test_figures_prepared_from_their_dicts_equal_the_built_figures(dash_env):
    """`PreparedFigure.of` (no Figure built) sends what `PreparedFigure(figure(...))` sends, marks and all."""
    from core.store import queries

    db, model = dash_env
    with connect_read(db) as con:
        traj = TrajectoryAnalyzer(load_checkpoint(model)).user(con, USER)
        history = queries.user_history(con, USER)
    n = len(history)
    grid = grid_view(traj, "auto", model_charts.VIEWS["model"])
    marks = dict(new_steps=np.array([n - 2, n - 1]), after_training=np.array([n // 2, n - 1]))
    until = history["ts"].iloc[n // 2].to_pydatetime()
    pairs = {
        "trajectory": lambda p: trajectory_chart(grid, "t", **marks, prepared=p),
        "gate": lambda p: model_charts.gate_line(traj, prepared=p),
        "timeline": lambda p: charts.timeline(history, np.array([0, 1]), np.array([2]), until, prepared=p),
    }
    for name, make in pairs.items():
        prepared, built = make(True), make(False)
        assert isinstance(prepared, PreparedFigure) and not isinstance(built, PreparedFigure), name
        assert _spec(prepared) == _spec(built), name
        assert _spec(prepared)["layout"]["template"]["layout"], name  # the default template is there, as Figure adds it
