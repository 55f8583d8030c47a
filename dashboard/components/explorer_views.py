"""What the User explorer draws for one user, built once per (database state, model, user, settings) and shared by
every session of the server.

Many analysts moving through the same users redraw the same figures and tables: building them again on every
rerun (figures, CSV bytes, the model-vocabulary marks) was most of a revisited user's script run on ML-100k
(cProfile, docs/serving-cpu.md). Each builder here is an `st.cache_resource` function (one copy per process, nothing
pickled per call; bounded by the entries and age of `dashboard.cache.shared`), keyed by the `DbRef` and `ModelRef`
(so a new commit or a retrained model is a new key) and by small settings; live marks enter the key as the bytes of their step arrays. What they return is
shared read-only: figures are `PreparedFigure`s, tables and bytes are never changed by the pages.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.trajectory import grid_view
from dashboard import cache
from dashboard.cache import DbRef, ModelRef
from dashboard.cache.shared import per_user
from dashboard.components import charts, model_charts, panels
from dashboard.components.trajectory_chart import VIEW_TITLES, trajectory_chart

__all__ = ["TrajectoryFigures", "steps_key", "trajectory_figures", "timeline_figure", "events_download",
           "recommendations_csv"]

def steps_key(steps: np.ndarray | None) -> bytes | None:
    """Event indices as a cache key (bytes hash at C speed; a tuple of thousands of ints would not)."""
    return None if steps is None else np.asarray(steps, dtype=np.int64).tobytes()


def _steps(key: bytes | None) -> np.ndarray | None:
    return None if key is None else np.frombuffer(key, dtype=np.int64)


@dataclass(frozen=True)
class TrajectoryFigures:
    """The trajectory panel's drawing for one user, view and time grid."""

    chart: go.Figure  # the stacked interest and drift (`trajectory_chart`), prepared
    caption: str  # how to read it (`panels.trajectory_caption`)
    bulk: str | None  # the bulk-entry note, when most of the history was entered at once
    gate: go.Figure | None  # the long/short-term gate (`model_charts.gate_line`), prepared; None without states


@per_user
def trajectory_figures(db: DbRef, model: ModelRef, user: str, view: str, grain: str, states: bool,
                       new: bytes | None, after: bytes | None) -> TrajectoryFigures:
    """The trajectory panel of `cache.user_view(db, model, user)` on `grain` for `view`; `new` and `after`
    (`steps_key`) are the live marks' event indices."""
    traj = cache.user_view(db, model, user).trajectory
    grid = grid_view(traj, grain, model_charts.VIEWS[view])
    title = f"Interest over categories — {VIEW_TITLES[view]}"
    chart = trajectory_chart(grid, title, _steps(new), _steps(after), prepared=True)
    gate = model_charts.gate_line(traj, prepared=True) if states else None
    bulk = grid.bulk.sentence() if grid.bulk.mostly_bulk else None
    return TrajectoryFigures(chart, panels.trajectory_caption(grid), bulk, gate)


@per_user
def timeline_figure(db: DbRef, user: str, new: bytes | None, skipped: bytes | None, trained_until) -> go.Figure:
    """`charts.timeline` of `cache.user_history(db, user)` with the live marks (`steps_key` bytes), prepared."""
    history = cache.user_history(db, user)
    return charts.timeline(history, _steps(new), _steps(skipped), trained_until, prepared=True)


@per_user
def events_download(db: DbRef, user: str) -> tuple[pd.DataFrame, bytes]:
    """The "Events as a table" table (`panels.history_table`) and its CSV bytes (`panels.csv`)."""
    table = panels.history_table(cache.user_history(db, user))
    return table, panels.csv(table)


@per_user
def recommendations_csv(db: DbRef, model: ModelRef, user: str, k: int) -> bytes:
    """The top-`k` of `cache.user_view` as CSV bytes (`panels.csv`)."""
    return panels.csv(cache.user_view(db, model, user).recommendations.head(int(k)))
