"""Every user's explorer view of one model, computed once: the views sidecar (`views.safetensors` beside the model).

A user switch in the explorer needs the user's trajectory (the model's forward passes over every step, the
calibrated forecast, the long/short-term decomposition and the change points) and top-K. Computed live that is
~60 ms of CPU a user on ML-100k (bench/switch_cpu.py), and a server with many analysts walking the catalogue
cannot keep every user's result in memory (docs/serving.md). The sidecar holds what is costly to compute, as
float32 arrays in one safetensors file (no pickle), written by the drift batch job and lazily by the dashboard:

- per step, concatenated over users: distribution, long_term, short_term, baseline, model_distribution ([N, C])
  and short_weight, model_gate ([N]); cheap parts are derived when read (events from the vocabulary, gate =
  1 − short_weight, drift from the distribution), so a view read from the file equals the live one to ~1e-7;
- per user: the change points and the top-`k` (model item index, score) of `core.recommend.recommend`;
- per user, a digest of the history the trajectory was computed from (items, times, event types, context in
  model indices).

Validity rule: the file is used only for the same weights (a content hash of the model file), the same trajectory
settings and this format; a user's stored view is used only when the digest of the history read now equals the
stored one, so a user with new events (live ingest, another database) is computed live, never shown stale. The
file is read with positioned reads: a switch reads its user's rows only, so all users are available without
holding them in the process. Social models (whose views also depend on friends' histories)
get no sidecar.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.checkpoint import LoadedModel, weights_fingerprint
from core.errors import NotFoundError, UserInputError
from core.recommend import recommend
from core.sequences import History, Sequences, load_sequences
from core.store import connect_read
from core.store.identity import database_id
from core.trajectory.analyzer import TrajectoryAnalyzer, TrajectoryConfig
from core.trajectory.result import Trajectory

__all__ = ["VIEWS_FILE", "VIEWS_FORMAT", "VIEWS_K", "MAX_VIEW_STEPS", "ViewsBuild", "ViewsWriter", "StoredView", "UserViews",
           "build_views", "build_views_at", "history_digest", "model_stamp", "views_state"]

log = logging.getLogger(__name__)

VIEWS_FILE = "views.safetensors"
VIEWS_FORMAT = "1"  # bumped when the arrays or the rule change: an older file is rebuilt, never misread
VIEWS_K = 50  # top-K kept per user (the explorer's largest K, `dashboard.cache.MAX_K`)
# Largest log the job keeps in memory while building (~0.5 KB a step at 19 categories, float32 plus transients):
# a larger log gets no sidecar and its users are computed live as before.
MAX_VIEW_STEPS = 5_000_000
STEP_SERIES = ("distribution", "long_term", "short_term", "baseline", "model_distribution")  # [N, C] each
STEP_SCALARS = ("short_weight", "model_gate")  # [N] each


def history_digest(h: History) -> bytes:
    """16 bytes that change whenever anything the trajectory reads of the history changes (model item indices,
    times, event types, context indices; the gaps follow from the times)."""
    d = hashlib.blake2b(digest_size=16)
    for a in (h.items, h.ts, h.event_types, h.context):
        arr = np.ascontiguousarray(a, dtype=np.int64)
        d.update(np.asarray(arr.shape, np.int64).tobytes())
        d.update(arr.tobytes())
    return d.digest()


def model_stamp(model_dir: str | os.PathLike) -> str:
    """The weights' identity for the validity rule: their content hash (`core.checkpoint.weights_fingerprint`, as the
    dashboard's `ModelRef` keys a model), so a touched file keeps its views and a model retrained in place with a
    forged mtime does not; "" when the folder has none. Read when a file is opened or written, not per user."""
    try:
        return weights_fingerprint(model_dir)  # it picks the file (weights, else an external model's registration)
    except FileNotFoundError:
        return ""


@dataclass(frozen=True)
class ViewsBuild:
    """What `build_views` wrote."""

    path: Path  # the safetensors file
    users: int  # users stored
    steps: int  # steps (events) stored
    seconds: float  # wall time of the job


def _expected(analyzer: TrajectoryAnalyzer, k: int) -> dict[str, str]:
    """The metadata a usable file must carry for this model and settings."""
    return {"format": VIEWS_FORMAT, "model": model_stamp(analyzer.loaded.path), "config": repr(analyzer.config),
            "k": str(int(k))}


class ViewsWriter:
    """Collects the users' views as their trajectories are computed (by `build_views`, or by the drift batch
    job over the same trajectories) and writes the file.

    Parameters
    ----------
    analyzer
        The analyser the trajectories come from (its model, settings and category weights).
    seqs
        All users' sequences (`core.sequences.load_sequences`), the rows `add` is given.
    k
        Recommendations kept per user.
    """

    def __init__(self, analyzer: TrajectoryAnalyzer, seqs: Sequences, k: int = VIEWS_K):
        if analyzer.social:
            raise UserInputError("A social model's views depend on the friends' histories too, so it gets no "
                                 "views file.")
        if len(seqs.items) > MAX_VIEW_STEPS:
            raise UserInputError(f"This log has {len(seqs.items):,} events, more than the views file is built for "
                                 f"({MAX_VIEW_STEPS:,}); its users are computed when shown.")
        self.analyzer, self.seqs, self.k = analyzer, seqs, int(k)
        self._series: dict[str, list[np.ndarray]] = {name: [] for name in (*STEP_SERIES, *STEP_SCALARS)}
        self._cps: list[int] = []
        self._cp_counts: list[int] = []
        self._digests: list[np.ndarray] = []
        self._rows: list[int] = []
        self._rec_items = np.zeros((seqs.n_users, self.k), np.int64)
        self._rec_scores = np.full((seqs.n_users, self.k), np.nan, np.float32)
        self._rec_counts = np.zeros(seqs.n_users, np.int64)

    def add(self, row: int, traj: Trajectory) -> None:
        """Keep user `row`'s trajectory (rows in order 0, 1, …) and compute its top-K."""
        if row != len(self._rows):
            raise ValueError("views must be added in the sequences' row order")
        h = self.seqs.history(row)
        for name in (*STEP_SERIES, *STEP_SCALARS):
            self._series[name].append(np.asarray(getattr(traj, name), np.float32))
        self._cps.extend(int(c) for c in traj.change_points)
        self._cp_counts.append(len(traj.change_points))
        self._digests.append(np.frombuffer(history_digest(h), np.uint8))
        # one history per call, as a user switch scores it: a batch's float32 sums may differ by ~1e-6
        top = recommend(self.analyzer.loaded, [h], self.k)[0]
        self._rec_counts[row] = len(top)
        self._rec_items[row, : len(top)] = [i for i, _ in top]
        self._rec_scores[row, : len(top)] = [s for _, s in top]
        self._rows.append(row)

    def write(self, db_id: str | None) -> Path:
        """Write `views.safetensors` into the model's folder (a temporary name, then renamed: a reader never
        sees half a file)."""
        from safetensors.numpy import save_file

        if len(self._rows) != self.seqs.n_users:
            raise ValueError(f"views of {len(self._rows)} of {self.seqs.n_users} users were added")
        tensors = {name: np.ascontiguousarray(np.concatenate(parts)) for name, parts in self._series.items()}
        tensors.update(
            offsets=np.asarray(self.seqs.offsets, np.int64),
            change_points=np.asarray(self._cps, np.int64),
            change_offsets=np.r_[0, np.cumsum(self._cp_counts)].astype(np.int64),
            digests=np.stack(self._digests),
            rec_items=self._rec_items, rec_scores=self._rec_scores, rec_counts=self._rec_counts,
        )
        meta = {**_expected(self.analyzer, self.k), "database_id": db_id or "",
                "users": json.dumps([str(u) for u in self.seqs.user_ids])}
        path = Path(self.analyzer.loaded.path) / VIEWS_FILE
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        save_file(tensors, str(tmp), metadata=meta)
        os.replace(tmp, path)
        return path


def build_views(
    db: str | os.PathLike | None,
    loaded: LoadedModel,
    config: TrajectoryConfig | None = None,
    k: int = VIEWS_K,
    progress: Callable[[int, int], None] | None = None,
    chunk: int = 256,
) -> ViewsBuild:
    """Compute every user's view arrays (see the module docstring) and write `views.safetensors` into the
    model's folder. (The drift batch job, `core.trajectory.build_drift`, writes it too, from the trajectories it
    computes anyway.)

    Raises UserInputError for a social model or a log over `MAX_VIEW_STEPS` events, NotFoundError for a
    database without events.
    """
    t0 = time.perf_counter()
    analyzer = TrajectoryAnalyzer(loaded, config)
    with connect_read(db) as con:
        seqs = load_sequences(con, loaded.vocab)
        db_id = database_id(con)
    if seqs.n_users == 0:
        raise NotFoundError("This database has no events, so there are no views to store.")
    writer = ViewsWriter(analyzer, seqs, k)
    for row, traj in enumerate(analyzer.trajectories(seqs, chunk=chunk)):
        writer.add(row, traj)
        if progress is not None and ((row + 1) % chunk == 0 or row + 1 == seqs.n_users):
            progress(row + 1, seqs.n_users)
    path = writer.write(db_id)
    seconds = time.perf_counter() - t0
    log.info("views: %d users, %d steps in %.1f s -> %s", seqs.n_users, len(seqs.items), seconds, path)
    return ViewsBuild(path, seqs.n_users, int(len(seqs.items)), seconds)


def build_views_at(db_path: str, model_path: str) -> str:
    """`build_views` for a database file and a checkpoint folder (what a spawned builder process runs; its
    result is the file's path)."""
    import torch

    from core.checkpoint import load_checkpoint

    torch.set_num_threads(1)  # a background job beside a server: one core at most
    return str(build_views(db_path, load_checkpoint(model_path, "cpu")).path)


@dataclass(frozen=True)
class StoredView:
    """One user's arrays read from the sidecar (float64 copies of the float32 rows)."""

    series: dict[str, np.ndarray]  # STEP_SERIES ([n, C]) and STEP_SCALARS ([n])
    change_points: list[int]  # step indices where a new stretch of interest starts
    top: list[tuple[int, float]]  # (model item index, score), best first, as `core.recommend.recommend` gives


_DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "U8": np.uint8}


class UserViews:
    """An open views file: `usable_for` says whether it fits a model and settings, `stored` reads one user.

    The header (metadata, user index) and the small per-user tables (offsets, digests, change points, top-K) are
    read at open; a user's per-step rows are read when asked, with positioned reads of just those bytes (not a
    memory map, whose touched pages would stay in the server's resident memory and count against its bound).
    Thread-safe for readers (`os.pread` has no shared file position; nothing is written after the open).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._fd = os.open(self.path, os.O_RDONLY)
        try:
            total = os.fstat(self._fd).st_size
            size = int(np.frombuffer(os.pread(self._fd, 8, 0).ljust(8, b"\0"), "<u8")[0])
            if not 0 < size <= total - 8:  # a damaged or foreign file: never read a made-up length
                raise ValueError("not a views file")
            header = json.loads(os.pread(self._fd, size, 8))
            self._base = 8 + size
            self.meta = dict(header.pop("__metadata__", {}) or {})
            self._tensors = {name: (np.dtype(_DTYPES[t["dtype"]]), tuple(t["shape"]), t["data_offsets"][0])
                             for name, t in header.items()}
            get = self._whole
            self._offsets, self._digests = get("offsets"), get("digests")
            self._cps, self._cp_offsets = get("change_points"), get("change_offsets")
            self._rec_items, self._rec_scores, self._rec_counts = get("rec_items"), get("rec_scores"), get("rec_counts")
            missing = {*STEP_SERIES, *STEP_SCALARS} - set(self._tensors)
            if missing:
                raise ValueError(f"views file without {sorted(missing)}")
        except Exception:
            os.close(self._fd)
            self._fd = None  # closed here: `__del__` must not close a number the process may have reused
            raise
        self._row = {u: r for r, u in enumerate(json.loads(self.meta.get("users", "[]")))}
        self.k = int(self.meta.get("k", "0"))

    def __del__(self, _close=os.close) -> None:  # bound now: at interpreter exit the `os` global may be gone
        fd, self._fd = getattr(self, "_fd", None), None
        if fd is not None:
            _close(fd)

    def _rows(self, name: str, lo: int, hi: int) -> np.ndarray:
        """Rows [lo, hi) of tensor `name` (along its first axis), read from the file."""
        dtype, shape, start = self._tensors[name]
        row = dtype.itemsize * int(np.prod(shape[1:], dtype=np.int64))
        data = os.pread(self._fd, (hi - lo) * row, self._base + start + lo * row)
        return np.frombuffer(data, dtype).reshape((hi - lo, *shape[1:]))

    def _whole(self, name: str) -> np.ndarray:
        return self._rows(name, 0, self._tensors[name][1][0]) if self._tensors[name][1] else np.zeros(0)

    @property
    def users(self) -> int:
        return len(self._row)

    def __contains__(self, user_id: object) -> bool:
        return str(user_id) in self._row

    def usable_for(self, analyzer: TrajectoryAnalyzer, k: int) -> bool:
        """Whether the file was built for this model's weights and settings, in this format, with at least `k`
        recommendations per user."""
        want = _expected(analyzer, self.k)
        return all(self.meta.get(key) == value for key, value in want.items()) and int(k) <= self.k

    def stored(self, user_id: str, history: History, k: int) -> StoredView | None:
        """The user's stored view when it was computed from exactly this history (None otherwise)."""
        r = self._row.get(str(user_id))
        if r is None or bytes(self._digests[r]) != history_digest(history):
            return None
        lo, hi = int(self._offsets[r]), int(self._offsets[r + 1])
        series = {name: self._rows(name, lo, hi).astype(np.float64) for name in (*STEP_SERIES, *STEP_SCALARS)}
        c0, c1 = int(self._cp_offsets[r]), int(self._cp_offsets[r + 1])
        n = min(int(self._rec_counts[r]), int(k))
        top = [(int(i), float(s)) for i, s in zip(self._rec_items[r, :n], self._rec_scores[r, :n], strict=True)]
        return StoredView(series, [int(c) for c in self._cps[c0:c1]], top)


def views_state(model_dir: str | os.PathLike, analyzer: TrajectoryAnalyzer, k: int) -> UserViews | None:
    """The model's views file when it exists and fits `analyzer` (None when absent, stale or unreadable: then
    it is to be built)."""
    path = Path(model_dir) / VIEWS_FILE
    if not path.is_file():
        return None
    try:
        views = UserViews(path)
    except Exception as exc:  # a damaged or foreign file is rebuilt, never trusted
        log.warning("views file %s unreadable (%s): it will be rebuilt", path, exc)
        return None
    return views if views.usable_for(analyzer, k) else None
