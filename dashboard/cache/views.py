"""The views sidecar in the server (`core.trajectory.sidecar`): opened once per model and file, built in the
background when absent or stale.

A user switch whose view is not cached yet (`st.cache_resource`, `dashboard.cache.shared`) reads the user's
trajectory and top-K from the model's `views.safetensors` instead of running the model and the change points
(docs/serving-cpu.md: the switch's CPU at 100 sessions). The file is checked with a `stat` on each such read, so a file written meanwhile (the background
build, `interestlens drift`, a retrain) is picked up by the next switch; an unusable one is never read.

Lazy build rule: when the file is absent or does not fit the model (other weights, settings or format), one
spawned process per model and process builds it, at most once (a failure is logged, not retried until the
server restarts) and only where explanation workers may be spawned (`$INTERESTLENS_EXPLAIN_WORKERS` > 0): a build in
the server's own interpreter would hold the lock every session's switch needs for ~10-30 s of CPU on ML-100k.
Until it is written, views are computed live as before.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import InterestLensError
from dashboard.cache.handles import DbRef, ModelRef
from dashboard.explain_pool import configured_workers
from dashboard.reader import file_stamp

if TYPE_CHECKING:
    from core.trajectory import TrajectoryAnalyzer
    from core.trajectory.sidecar import UserViews

__all__ = ["user_views", "build_started", "forget"]

log = logging.getLogger(__name__)

_LOCK = threading.Lock()
_OPEN: dict[tuple[str, str], tuple[tuple[int, int, int], UserViews | None]] = {}  # (model, stamp) -> (file stamp, views)
_STARTED: dict[tuple[str, str], multiprocessing.process.BaseProcess | None] = {}  # builds started (None: in-process)


def user_views(db: DbRef, model: ModelRef, analyzer: TrajectoryAnalyzer, k: int) -> UserViews | None:
    """The model's views file when it exists and fits `analyzer` with `k` recommendations, else None (and a
    background build is started, see the module docstring)."""
    from core.trajectory.sidecar import VIEWS_FILE, views_state

    if analyzer.social:  # its views depend on friends' histories: no file is kept for it (core.trajectory.sidecar)
        return None
    key = (model.path, model.stamp)
    stamp = file_stamp(Path(model.path) / VIEWS_FILE)
    with _LOCK:
        cached = _OPEN.get(key)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    views = views_state(model.path, analyzer, k) if stamp != (0, 0, 0) else None
    with _LOCK:
        _OPEN[key] = (stamp, views)
    if views is None:
        _start_build(db, model)
    return views


def _start_build(db: DbRef, model: ModelRef) -> None:
    """Spawn the builder once per model (where workers may be spawned; see the module docstring)."""
    from core.trajectory.sidecar import build_views_at

    key = (model.path, model.stamp)
    with _LOCK:
        if key in _STARTED:
            return
        try:
            allowed = configured_workers() > 0
        except InterestLensError:  # a bad setting: the Explain page says so; no spawning here either
            allowed = False
        if not allowed:
            _STARTED[key] = None
            return
        # daemon: a server that stops does not wait for (or leave behind) a half-done build
        proc = multiprocessing.get_context("spawn").Process(
            target=build_views_at, args=(db.path, model.path), name="interestlens-views", daemon=True
        )
        _STARTED[key] = proc
    try:
        proc.start()
        log.info("views file for %s: building in process %s", model.path, proc.pid)
    except OSError as exc:  # no process could be started: views stay live
        log.warning("views file for %s not built: %s", model.path, exc)


def build_started(model: ModelRef) -> multiprocessing.process.BaseProcess | None:
    """The builder process started for this model (None when none was or none may be)."""
    with _LOCK:
        return _STARTED.get((model.path, model.stamp))


def forget() -> None:
    """Drop the opened files and the record of started builds (tests; a new process starts the same way)."""
    with _LOCK:
        _OPEN.clear()
        _STARTED.clear()
