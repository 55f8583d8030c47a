"""The drift batch job: every user's drift summary, written as `drift.parquet` beside the model checkpoint.

The database is read once through a short read-only connection (the store's connection policy), closed, and the
model then runs over all users in batched forward passes (a social model with every user's friends: the graph is
read with the events, the friends' state timelines computed from the model). The Parquet file is written to a temporary name and
renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core.checkpoint import LoadedModel
from core.errors import NotFoundError, UserInputError
from core.friends.context import DEFAULT_K, SocialContext
from core.friends.graph import load_graph
from core.friends.states import compute_timelines
from core.sequences import load_sequences
from core.store import connect_read
from core.store.identity import database_id
from core.trajectory.analyzer import TrajectoryAnalyzer, TrajectoryConfig
from core.trajectory.grid import drift_summary
from core.trajectory.result import DriftSummary
from core.trajectory.sidecar import ViewsWriter

__all__ = ["DRIFT_FILE", "DriftBatch", "build_drift", "read_drift", "summaries_table"]

log = logging.getLogger(__name__)

DRIFT_FILE = "drift.parquet"

_SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("n_events", pa.int64()),
        ("total_drift", pa.float64()),
        ("max_drift", pa.float64()),
        ("n_change_points", pa.int64()),
        ("change_steps", pa.list_(pa.int64())),
        ("change_times", pa.list_(pa.timestamp("s"))),
        ("before", pa.list_(pa.list_(pa.string()))),  # per change point: top categories before it
        ("after", pa.list_(pa.list_(pa.string()))),  # per change point: top categories after it
        ("change_divergence", pa.list_(pa.float64())),  # per change point: JS of the mean interest before/after
        ("change_observed_divergence", pa.list_(pa.float64())),  # per change point: JS of the events' categories
        ("dominant_first", pa.string()),
        ("dominant_last", pa.string()),
        ("largest_change", pa.float64()),  # the ranking score: contrast (JS bits) at the largest change point
        ("largest_change_time", pa.timestamp("s")),
        ("shift", pa.string()),  # the largest change in words, e.g. "Comedy → Drama, Mar 2004"
        ("bulk_share", pa.float64()),  # share of events entered in bulk sessions
        ("mostly_bulk", pa.bool_()),
        ("sessions", pa.int64()),
        ("span_days", pa.float64()),
    ]
)


@dataclass(frozen=True)
class DriftBatch:
    """What the batch job wrote."""

    path: Path  # the Parquet file
    users: int  # users summarised
    events: int  # events traced
    seconds: float  # wall time of the whole job
    table: pd.DataFrame  # the summaries (same rows as the file), largest change first


def summaries_table(summaries: list[DriftSummary]) -> pa.Table:
    """Summaries as an Arrow table with the `drift.parquet` schema."""
    cps = [s.change_points for s in summaries]
    cols = {
        "user_id": [s.user_id for s in summaries],
        "n_events": [s.n_events for s in summaries],
        "total_drift": [s.total_drift for s in summaries],
        "max_drift": [s.max_drift for s in summaries],
        "n_change_points": [len(c) for c in cps],
        "change_steps": [[p.step for p in c] for c in cps],
        "change_times": [[p.time.astype("datetime64[s]").astype(object) for p in c] for c in cps],
        "before": [[[name for name, _ in p.before] for p in c] for c in cps],
        "after": [[[name for name, _ in p.after] for p in c] for c in cps],
        "change_divergence": [[p.divergence for p in c] for c in cps],
        "change_observed_divergence": [[p.observed_divergence for p in c] for c in cps],
        "dominant_first": [s.dominant_first for s in summaries],
        "dominant_last": [s.dominant_last for s in summaries],
        "largest_change": [s.largest_change for s in summaries],
        "largest_change_time": [
            None if s.largest_change_time is None else s.largest_change_time.astype("datetime64[s]").astype(object)
            for s in summaries
        ],
        "shift": [s.shift for s in summaries],
        "bulk_share": [s.bulk_share for s in summaries],
        "mostly_bulk": [s.mostly_bulk for s in summaries],
        "sessions": [s.sessions for s in summaries],
        "span_days": [s.span_days for s in summaries],
    }
    return pa.table(cols, schema=_SCHEMA)


def build_drift(
    db: str | os.PathLike | None,
    loaded: LoadedModel,
    config: TrajectoryConfig | None = None,
    progress: Callable[[int, int], None] | None = None,
    views: bool = True,
) -> DriftBatch:
    """Summarise every user's drift and write `drift.parquet` into the model's folder; with `views` (and a model
    and log it applies to: not social, at most `MAX_VIEW_STEPS` events) also the explorer's views file from the
    same trajectories (`core.trajectory.sidecar`, `views.safetensors`).

    Parameters
    ----------
    db
        The events database (None: the default one).
    loaded
        The model (`load_checkpoint`); the file goes into `loaded.path`.
    progress
        Called with (users done, users in all) after each chunk.
    views
        Also write the views file (its top-K adds one forward pass per user).
    """
    t0 = time.perf_counter()
    analyzer = TrajectoryAnalyzer(loaded, config)
    with connect_read(db) as con:
        seqs = load_sequences(con, loaded.vocab)
        db_id = database_id(con)
        # a social model's trajectories read every user's friends (the whole graph, capped as in training)
        graph = load_graph(con, seqs, DEFAULT_K) if analyzer.social and seqs.n_users else None
    if seqs.n_users == 0:
        raise NotFoundError("This database has no events, so there is no drift to summarise.")
    social = None if graph is None else SocialContext(seqs, graph, compute_timelines(loaded.model, seqs))
    writer = None
    if views and not analyzer.social:
        try:
            writer = ViewsWriter(analyzer, seqs)
        except UserInputError as exc:  # too large a log: its explorer views are computed when shown
            log.info("no views file: %s", exc)
    summaries = []
    for n, traj in enumerate(analyzer.trajectories(seqs, components=False, social=social), start=1):
        summaries.append(drift_summary(traj))
        if writer is not None:
            writer.add(n - 1, traj)
        if progress is not None and (n % 256 == 0 or n == seqs.n_users):
            progress(n, seqs.n_users)
    table = summaries_table(summaries)
    path = Path(loaded.path) / DRIFT_FILE
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)
    if writer is not None:
        writer.write(db_id)
    seconds = time.perf_counter() - t0
    log.info("drift: %d users, %d events in %.1f s -> %s", seqs.n_users, len(seqs.items), seconds, path)
    return DriftBatch(path, seqs.n_users, int(len(seqs.items)), seconds, _ordered(table.to_pandas()))


def read_drift(model_dir: str | os.PathLike) -> pd.DataFrame:
    """The drift summaries beside a model, largest change first; NotFoundError if the job has not run."""
    path = Path(model_dir) / DRIFT_FILE
    if not path.exists():
        raise NotFoundError(f"No drift summaries beside the model at {model_dir}.", next_step="drift")
    return _ordered(pq.read_table(path).to_pandas())


def _ordered(df: pd.DataFrame) -> pd.DataFrame:
    """Largest change first (a file from before that column: most total drift first), ties by user id.

    Not total drift: it sums drift over every step, so it grows with the history's length (Spearman 0.91 with the
    number of events on MovieLens); the largest change compares 20 events either side whatever the length."""
    key = "largest_change" if "largest_change" in df.columns else "total_drift"
    order = np.lexsort((df["user_id"].to_numpy(dtype=str), -df[key].to_numpy(dtype=float)))
    return df.iloc[order].reset_index(drop=True)
