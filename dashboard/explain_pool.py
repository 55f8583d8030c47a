"""Explanations computed in worker processes, off the server's interpreter lock, and warmed up when a model loads.

One Streamlit server runs every session's script in threads of one interpreter: a SHAP explanation (~0.3 s of CPU
on ML-100k, ~5 s for the first of a server, which imports SHAP) holds the lock that every other session's user
switch needs (docs/serving.md). Here explanations run in a small pool of spawned processes:

- each worker loads the checkpoint itself (kept per `(folder, weights' content hash)`) and never opens the database:
  the server reads the user's labelled history on its warm shared reader (`dashboard.reader.READER`, ~20 ms of CPU
  on ML-100k) and sends it with the job. A worker that opened the file per explanation paid a cold DuckDB open
  (catalog, schema check, cold buffers: ~20 ms of CPU and 50-110 ms of wall at load 9) and would hold the file
  where the app's writer (`READER.writing`) cannot close it;
- what crosses the pipe (pickled by `concurrent.futures`, between this server and the workers it spawned, never
  from a file or the network): the job (two strings, the item id, the history's arrays and labels, a few KB) and
  the `HistoryExplanation` back (~14 KB on ML-100k);
- the result is the in-process one: the same `HistoryExplainer` with the same seed, torch on one thread;
- at most `MAX_PENDING` explanations wait or run at once; one more is refused with one sentence (`ExplainBusy`);
- `warm` loads the model and SHAP in every worker and explains one user in the background, so the first analyst
  who asks does not pay the ~5 s (nothing waits for it);
- a worker that dies is replaced, and that explanation is computed in the server instead; the pool is shut down
  when the server process exits.

`$INTERESTLENS_EXPLAIN_WORKERS` sets the number of workers (default: one per core beyond the first, at most
`MAX_WORKERS`; `0` computes explanations in the server process, as before). This module imports no Streamlit: the
workers import it alone.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import os
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.errors import InterestLensError, UserInputError

if TYPE_CHECKING:
    import duckdb

    from core.checkpoint import LoadedModel
    from core.explain import HistoryExplainer, HistoryExplanation, LabelledHistory

__all__ = ["MAX_PENDING", "MAX_WORKERS", "WORKERS_ENV", "ExplainBusy", "ExplainJob", "ExplainPool", "configured_workers",
           "shared_pool", "explain_here", "read_job"]

log = logging.getLogger(__name__)

WORKERS_ENV = "INTERESTLENS_EXPLAIN_WORKERS"
MAX_WORKERS = 4  # each worker holds its own torch, SHAP and model (~300-400 MiB RSS on ML-100k)
MAX_PENDING = 16  # explanations queued or running at once; ~20 analysts ask ~0.4 a second, each ~0.3 s of CPU


class ExplainBusy(InterestLensError):
    """Too many explanations are already waiting."""


@dataclass(frozen=True)
class ExplainJob:
    """One explanation to compute: everything a worker needs to do it alone, without the database."""

    model_path: str  # the checkpoint folder
    model_stamp: str  # content hash of its weights (ModelRef.stamp): a retrained model is loaded anew
    history: LabelledHistory  # the STORED user's history in the model's indices (demo mode resolves pseudonyms first)
    item_id: str | None  # the item to explain (None: the user's top-1)


def read_job(con: duckdb.DuckDBPyConnection, loaded: LoadedModel, model_path: str, model_stamp: str, user_id: str,
             item_id: str | None) -> ExplainJob:
    """The job for `user_id` (a STORED id), its history read on `con` (the caller's open read cursor).

    Raises NotFoundError for a user without events."""
    from core.explain import load_labelled_history

    return ExplainJob(model_path, model_stamp, load_labelled_history(con, loaded, user_id), item_id)


def configured_workers() -> int:
    """Workers from `$INTERESTLENS_EXPLAIN_WORKERS`, else one per core beyond the first (at most `MAX_WORKERS`)."""
    raw = os.environ.get(WORKERS_ENV, "").strip()
    if not raw:
        return max(0, min(MAX_WORKERS, (os.cpu_count() or 1) - 1))
    if not raw.isdigit() or int(raw) > MAX_WORKERS:
        raise UserInputError(f"${WORKERS_ENV} must be a whole number from 0 to {MAX_WORKERS}, not {raw!r}.")
    return int(raw)


# --- worker side (also used in-process when there is no pool) ---------------------------------------------------

_EXPLAINERS: dict[tuple[str, int], HistoryExplainer] = {}  # per process: the loaded model's explainer


def _explainer(model_path: str, stamp: str) -> HistoryExplainer:
    key = (model_path, stamp)
    if key not in _EXPLAINERS:
        import torch

        from core.checkpoint import load_checkpoint
        from core.explain import HistoryExplainer

        torch.set_num_threads(1)  # as the server's own inference (dashboard.cache.resources.APP_TORCH_THREADS)
        _EXPLAINERS.clear()  # one model per worker: the dashboard explains with the active model
        _EXPLAINERS[key] = HistoryExplainer(load_checkpoint(model_path, "cpu"))
    return _EXPLAINERS[key]


def explain_here(job: ExplainJob, explainer: HistoryExplainer | None = None) -> HistoryExplanation:
    """`HistoryExplainer.explain` of the job's history and item (events and groups; no time windows), computed in
    this process from the job alone (no database)."""
    explainer = explainer or _explainer(job.model_path, job.model_stamp)
    return explainer.explain(job.history, target=job.item_id, windows=False)


def _warm(db_path: str, model_path: str, stamp: str) -> str | None:
    """Load the model and SHAP and explain the most active user's top-1 once; that user's id (None: no users)."""
    from core.store import connect_read, queries

    explainer = _explainer(model_path, stamp)
    with connect_read(db_path) as con:
        users = queries.list_users(con, None, "events_desc", 1)
        if users.empty:
            return None
        user = str(users["user_id"].iloc[0])
        job = read_job(con, explainer.loaded, model_path, stamp, user, None)
    explain_here(job, explainer)  # the file is closed before SHAP runs, as for a page's explanation
    return user


# --- server side -------------------------------------------------------------------------------------------------


class ExplainPool:
    """A bounded pool of spawned explanation workers (see the module docstring)."""

    def __init__(self, workers: int, max_pending: int = MAX_PENDING):
        if workers < 1:
            raise ValueError("An explanation pool needs at least one worker.")
        self.workers = workers
        self.max_pending = max_pending
        self._lock = threading.Lock()
        self._pending = 0
        self._warmed: set[tuple[str, str, int]] = set()
        self._executor = self._start()

    def _start(self) -> ProcessPoolExecutor:
        # spawn, not fork: the server has threads (sessions, the event loop) and torch state a fork would copy
        return ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))

    def explain(self, job: ExplainJob) -> HistoryExplanation:
        """The explanation of `job`, computed in a worker (or here when the pool broke); `ExplainBusy` when
        `max_pending` are already waiting or running."""
        with self._lock:
            if self._pending >= self.max_pending:
                raise ExplainBusy(f"The server is computing {self._pending} explanations right now; "
                                  "try again in a few seconds.")
            self._pending += 1
            executor = self._executor
        try:
            return executor.submit(explain_here, job).result()
        except BrokenProcessPool:
            log.exception("an explanation worker stopped; restarting the pool and explaining in the server")
            self._restart(executor)
            return explain_here(job)
        finally:
            with self._lock:
                self._pending -= 1

    def warm(self, db_path: str, model_path: str, stamp: str) -> list[Future]:
        """Warm every worker for this model in the background (once per database and model); nothing waits."""
        key = (db_path, model_path, stamp)
        with self._lock:
            if key in self._warmed:
                return []
            self._warmed.add(key)
        # one task per worker: an idle worker takes the next task, so each usually gets one (a second one in the
        # same worker finds the model loaded and only explains again)
        try:
            return [self._submit(_warm, db_path, model_path, stamp) for _ in range(self.workers)]
        except (BrokenProcessPool, RuntimeError):  # a dead worker, or the pool shut down at exit: no warm-up
            log.warning("could not warm the explanation workers; the first explanation will load SHAP", exc_info=True)
            with self._lock:
                self._warmed.discard(key)
            return []

    def _submit(self, fn, *args) -> Future:
        with self._lock:
            executor = self._executor
        return executor.submit(fn, *args)

    def _restart(self, broken: ProcessPoolExecutor) -> None:
        """Replace `broken` (once: callers that met the same broken pool find it replaced already)."""
        with self._lock:
            if self._executor is not broken:
                return
            self._executor = self._start()
            self._warmed.clear()
        broken.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Stop the workers (waits for running explanations to end)."""
        with self._lock:
            executor = self._executor
        executor.shutdown(wait=True, cancel_futures=True)


_POOL: ExplainPool | None = None
_POOL_LOCK = threading.Lock()
_CONFIGURED = threading.Event()  # set once `shared_pool` has read the setting (with or without workers)


def shared_pool() -> ExplainPool | None:
    """The server's pool, started on first use (None when `$INTERESTLENS_EXPLAIN_WORKERS` is 0); shut down when
    the process exits."""
    global _POOL
    with _POOL_LOCK:
        if not _CONFIGURED.is_set():
            n = configured_workers()
            _CONFIGURED.set()
            if n:
                _POOL = ExplainPool(n)
                atexit.register(_POOL.close)
        return _POOL
