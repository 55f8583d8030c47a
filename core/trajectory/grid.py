"""A trajectory read on a time grid: what the chart draws and `interestlens trajectory --grain` prints.

Per bucket of the grid (`core.trajectory.timegrid`: event, session, day, week or month; `auto` picks from the span):
the mean interest over the bucket's events (rows sum to one), with at most `top_n` named categories and the rest
summed into "other"; the drift, the highest contrast (`core.trajectory.grid_changes.contrast`, JS bits between the
20 events before and after) at any moment that starts in the bucket; and the change points, each placed in the
bucket of its event. A change step is a contrast peak (within `ChangeConfig.snap` moments), so on every grain the
mark sits where the drift line peaks.

Shapes: B buckets, K shown categories (≤ top_n + 1).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from core.trajectory.grid_changes import ChangeConfig, contrast, moment_starts
from core.trajectory.result import SERIES, DriftSummary, Trajectory
from core.trajectory.timegrid import GRAINS, Bulk, Grain, bucket_index, bulk_entries, choose_grain

__all__ = ["TOP_CATEGORIES", "GridChange", "GridTrajectory", "grid_view", "shift_words", "largest_change", "drift_summary"]

TOP_CATEGORIES = 6  # named categories a chart shows; the rest are "other" (a 7th, grey)


@dataclass(frozen=True)
class GridChange:
    """One change point as the grid shows it."""

    step: int  # event index of the first event under the new interest
    bucket: int  # the grid bucket holding that event
    time: np.datetime64  # the event's time (UTC)
    size: float  # contrast at the change: JS (bits) between the 20 events before and after
    before: str  # the top category of the segment before the change
    after: str  # the top category of the segment after it
    words: str  # e.g. "Comedy → Drama, Mar 2004"


@dataclass
class GridTrajectory:
    """One user's trajectory on a time grid (see the module docstring)."""

    user_id: str
    grain: Grain  # the grain shown
    auto_grain: Grain  # the grain `auto` picks for this history
    series: str  # which distribution: distribution (model), long_term, short_term or baseline
    start: np.ndarray  # [B] datetime64[s] time of the bucket's first event
    end: np.ndarray  # [B] datetime64[s] time of its last event
    first_step: np.ndarray  # [B] event index of its first event
    events: np.ndarray  # [B] events in the bucket
    categories: list[str]  # [K] named categories, then "other" when some were folded
    share: np.ndarray  # [B, K] mean interest over the bucket's events; rows sum to one
    drift: np.ndarray  # [B] highest contrast (bits, in [0, 1]) at a moment starting in the bucket
    changes: list[GridChange]
    bulk: Bulk

    def __len__(self) -> int:
        return len(self.start)

    def frame(self) -> pd.DataFrame:
        """Long form for plotting: bucket, start, end, events, category, share."""
        B, K = self.share.shape
        return pd.DataFrame({
            "bucket": np.repeat(np.arange(B), K),
            "start": np.repeat(self.start, K),
            "end": np.repeat(self.end, K),
            "events": np.repeat(self.events, K),
            "category": np.tile(np.asarray(self.categories, dtype=object), B),
            "share": self.share.reshape(-1),
        })

    def to_dict(self) -> dict:
        """The JSON object `interestlens trajectory --json` prints under "grid"."""
        return {
            "grain": self.grain,
            "auto_grain": self.auto_grain,
            "series": self.series,
            "categories": list(self.categories),
            "buckets": [
                {"start": _iso(s), "end": _iso(e), "first_step": int(f), "events": int(n),
                 "share": np.round(row, 6).tolist(), "drift": round(float(d), 6)}
                for s, e, f, n, row, d in zip(self.start, self.end, self.first_step, self.events, self.share,
                                              self.drift, strict=True)
            ],
            "change_points": [
                {"step": c.step, "bucket": c.bucket, "time": _iso(c.time), "size": round(c.size, 6),
                 "before": c.before, "after": c.after, "words": c.words}
                for c in self.changes
            ],
            "bulk": {"mostly_bulk": self.bulk.mostly_bulk, "share": round(self.bulk.share, 6),
                     "sessions": self.bulk.sessions, "bulk_sessions": self.bulk.bulk_sessions,
                     "sentence": self.bulk.sentence()},
        }


def _iso(t: np.datetime64) -> str:
    return str(np.datetime64(t, "s")) + "Z"


def shift_words(before: str, after: str, when: np.datetime64) -> str:
    """The shift in words: "Comedy → Drama, Mar 2004" (month and year of the change, UTC)."""
    month = pd.Timestamp(np.datetime64(when, "s")).strftime("%b %Y")
    return f"{before} → {after}, {month}"


def _describe(events: np.ndarray, steps: list[int], categories: list[str]) -> list[tuple[str, str]]:
    """(before, after) per change: the top category of the segment before and after it; when the top stays the
    same, `after` names the category whose share rose most ("Drama" → "more Comedy", or "mostly Drama")."""
    bounds = [0, *steps, len(events)]
    sums = np.stack([events[a:b].sum(axis=0) for a, b in zip(bounds[:-1], bounds[1:], strict=True)])
    total = sums.sum(axis=1, keepdims=True)
    mix = np.where(total > 0, sums / np.where(total > 0, total, 1.0), 0.0)
    out = []
    for k in range(len(steps)):
        b, a = int(np.argmax(mix[k])), int(np.argmax(mix[k + 1]))
        if a == b:  # the top stays: name what grew ("mostly Comedy" when it is the top itself)
            rise = int(np.argmax(mix[k + 1] - mix[k]))
            out.append((categories[b], f"{'mostly' if rise == b else 'more'} {categories[rise]}"))
        else:
            out.append((categories[b], categories[a]))
    return out


def grid_view(
    traj: Trajectory,
    grain: Grain | str = "auto",
    series: str = "distribution",
    top_n: int = TOP_CATEGORIES,
    config: ChangeConfig | None = None,
) -> GridTrajectory:
    """`traj` on a time grid. `grain` is one of `GRAINS` or "auto"; `series` one of `SERIES`.

    The change points are the trajectory's own (`Trajectory.change_points`); their sizes, the drift and the words
    come from the events' categories (`Trajectory.events`), so they need no model.
    """
    if grain != "auto" and grain not in GRAINS:
        raise ValueError(f"grain must be auto or one of {', '.join(GRAINS)}")
    if series not in SERIES:
        raise ValueError(f"series must be one of {', '.join(SERIES)}")
    cfg = config or ChangeConfig()
    times = traj.times
    auto = choose_grain(times)
    g: Grain = auto if grain == "auto" else grain  # type: ignore[assignment]
    n = len(traj)
    events = traj.events if traj.events is not None else np.zeros((n, len(traj.categories)))
    folded = traj.fold(top_n)
    dist = getattr(folded, series)
    if dist is None:
        raise ValueError(f"{series} was not computed for this trajectory")
    bucket = bucket_index(times, g)
    B = int(bucket[-1]) + 1 if n else 0
    first = np.searchsorted(bucket, np.arange(B))  # [B]
    last = np.append(first[1:], n) - 1
    counts = np.diff(np.append(first, n))
    share = np.add.reduceat(dist, first, axis=0) / counts[:, None] if B else np.zeros((0, len(folded.categories)))
    starts, _ = moment_starts(times)
    c = contrast(events, starts, cfg.window)
    drift = np.zeros(B)
    if len(starts):
        np.maximum.at(drift, bucket[starts], c)
    steps = [int(s) for s in traj.change_points if 0 < int(s) < n]
    size = dict(zip(starts.tolist(), c.tolist(), strict=True))
    changes = [
        GridChange(step=s, bucket=int(bucket[s]), time=times[s], size=float(size.get(s, 0.0)), before=b, after=a,
                   words=shift_words(b, a, times[s]))
        for s, (b, a) in zip(steps, _describe(events, steps, traj.categories), strict=True)
    ]
    return GridTrajectory(
        user_id=traj.user_id, grain=g, auto_grain=auto, series=series, start=times[first], end=times[last],
        first_step=first.astype(np.int64), events=counts.astype(np.int64), categories=list(folded.categories),
        share=share, drift=drift, changes=changes, bulk=bulk_entries(times),
    )


def largest_change(grid: GridTrajectory) -> GridChange | None:
    """The change of largest size (contrast), or None without changes: the score "interests changed most" ranks by."""
    return max(grid.changes, key=lambda c: (c.size, -c.step)) if grid.changes else None


def drift_summary(traj: Trajectory) -> DriftSummary:
    """`Trajectory.summary()` with the grid's figures: the largest change (the length-free score "interests changed
    most" ranks by), its words and time, and how much of the history was entered in bulk."""
    grid = grid_view(traj, "session")
    top = largest_change(grid)
    times = traj.times
    span = float((times[-1] - times[0]).astype(np.int64) / 86_400) if len(times) else 0.0
    return replace(
        traj.summary(),
        largest_change=top.size if top else 0.0,
        largest_change_time=top.time if top else None,
        shift=top.words if top else "",
        bulk_share=grid.bulk.share,
        mostly_bulk=grid.bulk.mostly_bulk,
        sessions=grid.bulk.sessions,
        span_days=span,
    )
