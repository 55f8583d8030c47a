"""What a trajectory is: a typed result the CLI prints and the dashboard plots directly."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from core.trajectory.changes import ChangePoint, describe_changes
from core.trajectory.horizons import plain_reading

__all__ = ["OTHER", "SERIES", "Trajectory", "DriftSummary"]

OTHER = "other"  # name of the folded column
SERIES = ("distribution", "long_term", "short_term", "baseline")  # the four [n, C] distributions


@dataclass(frozen=True)
class DriftSummary:
    """One user's drift in a sentence's worth of numbers (a row of `drift.parquet`)."""

    user_id: str
    n_events: int
    total_drift: float  # sum of the drift series / window ≈ the sum of the JS jumps between plateaus (bits)
    max_drift: float  # the largest drift at any step (bits)
    change_points: list[ChangePoint] = field(default_factory=list)
    dominant_first: str = ""  # top category after the first step
    dominant_last: str = ""  # top category after the last step
    largest_change: float = 0.0  # contrast (JS bits, 20 events each side) at the largest change point; 0 if none
    largest_change_time: np.datetime64 | None = None  # when it happened (UTC)
    shift: str = ""  # that change in words, e.g. "Comedy → Drama, Mar 2004"
    bulk_share: float = 0.0  # share of events entered in bulk sessions (core.trajectory.timegrid.BULK_SESSION+)
    mostly_bulk: bool = False  # bulk_share ≥ BULK_SHARE: the order of events says little about time
    sessions: int = 0  # sessions (sittings) in the history
    span_days: float = 0.0  # first to last event, in days


@dataclass
class Trajectory:
    """How one user's interest evolved, step by step (row k = the interest after the first k+1 events,
    i.e. the prediction for event k+2).

    Every distribution row sums to one over `categories`. `steps` has one row per event of the user's history,
    in canonical order, with columns index, time (UTC), item, title (shown as text, never as HTML).
    """

    user_id: str
    steps: pd.DataFrame  # [n] index, time, item, title
    categories: list[str]  # [C]
    distribution: np.ndarray  # [n, C] the calibrated forecast of the next event's category (core.trajectory.forecast)
    long_term: np.ndarray | None  # [n, C] long-term profile (core.trajectory.horizons)
    short_term: np.ndarray | None  # [n, C] short-term intent (core.trajectory.horizons)
    baseline: np.ndarray  # [n, C] decayed histogram of past events' categories
    gate: np.ndarray  # [n] weight on the long-term profile, 1 − short_weight, in (0, 1)
    drift: np.ndarray  # [n] JS(p_t, p_{t−window}) in bits
    change_points: list[int]  # step indices where a new stretch of interest starts
    window: int = 5
    half_life: float = 10.0
    events: np.ndarray | None = None  # [n, C] category weights of each event's item (what the user did)
    short_weight: np.ndarray | None = None  # [n] how much recent events weigh against the long-term profile
    model_distribution: np.ndarray | None = None  # [n, C] the model's raw item-softmax marginal (before calibration)
    model_gate: np.ndarray | None = None  # [n] the model's learned long-term gate (NaN before the first known item)

    def __len__(self) -> int:
        return len(self.steps)

    @property
    def times(self) -> np.ndarray:
        """[n] datetime64[s] event times."""
        return self.steps["time"].to_numpy(dtype="datetime64[s]")

    def fold(self, top_n: int) -> Trajectory:
        """The same trajectory with only the `top_n` categories of highest mean interest, the rest summed
        into "other" (a copy; distributions still sum to one). No-op when there are at most top_n + 1."""
        C = len(self.categories)
        if top_n < 1 or C <= top_n + 1:
            return self
        keep = np.sort(np.argsort(-self.distribution.mean(axis=0), kind="stable")[:top_n])
        rest = np.setdiff1d(np.arange(C), keep)

        def fold_one(a: np.ndarray | None) -> np.ndarray | None:
            if a is None:
                return None
            return np.concatenate([a[:, keep], a[:, rest].sum(axis=1, keepdims=True)], axis=1)

        return replace(
            self,
            categories=[self.categories[i] for i in keep] + [OTHER],
            **{name: fold_one(getattr(self, name)) for name in (*SERIES, "events", "model_distribution")},
        )

    def reading(self) -> str:
        """One plain line on how much the recent events weigh now (`core.trajectory.horizons.plain_reading`)."""
        return plain_reading(self.short_weight if self.short_weight is not None else 1.0 - self.gate)

    def describe(self, top: int = 3) -> list[ChangePoint]:
        """The change points with the dominant interests before and after each."""
        return describe_changes(self.distribution, self.change_points, self.categories, self.times, top, self.events)

    def summary(self) -> DriftSummary:
        n = len(self)
        top = np.argmax(self.distribution, axis=1) if n else np.zeros(0, int)
        return DriftSummary(
            user_id=self.user_id,
            n_events=n,
            total_drift=float(self.drift.sum() / self.window) if n else 0.0,
            max_drift=float(self.drift.max()) if n else 0.0,
            change_points=self.describe(),
            dominant_first=self.categories[top[0]] if n else "",
            dominant_last=self.categories[top[-1]] if n else "",
        )

    def frame(self, which: str = "distribution") -> pd.DataFrame:
        """One of the four distributions in long form for plotting: columns step, time, category, share."""
        if which not in SERIES:
            raise ValueError(f"which must be one of {', '.join(SERIES)}")
        a = getattr(self, which)
        if a is None:
            raise ValueError(f"{which} was not computed for this trajectory")
        n, C = a.shape
        return pd.DataFrame(
            {
                "step": np.repeat(np.arange(n), C),
                "time": np.repeat(self.times, C),
                "category": np.tile(np.asarray(self.categories, dtype=object), n),
                "share": a.reshape(-1),
            }
        )

    def to_dict(self) -> dict:
        """The CLI's JSON object: steps, categories, the four distributions, gate, drift, change_points,
        short_weight and the plain reading."""
        steps = [
            {"step": int(r.index), "time": r.time.to_pydatetime(), "item_id": str(r.item),
             "title": None if pd.isna(r.title) else str(r.title)}
            for r in self.steps.itertuples(index=False)
        ]
        return {
            "steps": steps,
            "categories": list(self.categories),
            **{name: _rounded(getattr(self, name)) for name in SERIES},
            "gate": np.round(self.gate, 6).tolist(),
            "drift": np.round(self.drift, 6).tolist(),
            "change_points": [int(c) for c in self.change_points],
            "short_weight": _rounded(self.short_weight),
            "reading": self.reading(),
        }


def _rounded(a: np.ndarray | None) -> list | None:
    return None if a is None else np.round(a, 6).tolist()
