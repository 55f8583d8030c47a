"""Cohort trajectories: the mean interest by calendar period over a segment of users.

A segment is every user whose attributes match all the given (key, value) pairs and whose number of events lies
within [min_events, max_events]. Within a period, each member active in it contributes the mean of their
interest over their steps in that period; the cohort's interest is the mean over those members (every active
user counts once, however many events they had), so one heavy user cannot dominate a period.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import duckdb
import numpy as np
import pandas as pd

from core.errors import NotFoundError, UserInputError
from core.sequences import load_sequences
from core.store.queries import UserFilter, list_users
from core.trajectory.analyzer import TrajectoryAnalyzer
from core.trajectory.result import OTHER

__all__ = ["Period", "CohortTrajectory", "period_start", "cohort_mean", "cohort_members", "cohort_trajectory"]

log = logging.getLogger(__name__)

Period = Literal["day", "week", "month", "quarter", "year"]
_MAX_MEMBERS = 1_000_000


@dataclass
class CohortTrajectory:
    """Mean interest of a segment per calendar period (UTC); rows of `mean` sum to one."""

    period: str
    categories: list[str]  # [C]
    periods: np.ndarray  # [P] datetime64[s], start of each period, ascending
    mean: np.ndarray  # [P, C] mean interest of the members active in the period
    active_users: np.ndarray  # [P] members with at least one event in the period
    events: np.ndarray  # [P] members' events in the period
    members: int  # users in the segment

    def fold(self, top_n: int) -> CohortTrajectory:
        """Only the `top_n` categories of highest mean interest, the rest summed into "other"."""
        C = len(self.categories)
        if top_n < 1 or C <= top_n + 1:
            return self
        keep = np.sort(np.argsort(-self.mean.mean(axis=0), kind="stable")[:top_n])
        rest = np.setdiff1d(np.arange(C), keep)
        mean = np.concatenate([self.mean[:, keep], self.mean[:, rest].sum(axis=1, keepdims=True)], axis=1)
        cats = [self.categories[i] for i in keep] + [OTHER]
        return CohortTrajectory(self.period, cats, self.periods, mean, self.active_users, self.events, self.members)

    def frame(self) -> pd.DataFrame:
        """Long form for plotting: period, category, share, active_users."""
        P, C = self.mean.shape
        return pd.DataFrame(
            {
                "period": np.repeat(self.periods, C),
                "category": np.tile(np.asarray(self.categories, dtype=object), P),
                "share": self.mean.reshape(-1),
                "active_users": np.repeat(self.active_users, C),
            }
        )


def period_start(ts: np.ndarray, period: Period) -> np.ndarray:
    """The start (UTC) of the calendar period holding each time; weeks start on Monday (as DuckDB's)."""
    t = np.asarray(ts).astype("datetime64[s]")
    if period == "day":
        return t.astype("datetime64[D]").astype("datetime64[s]")
    if period == "week":
        days = t.astype("datetime64[D]").astype(np.int64)
        return (days - (days + 3) % 7).astype("datetime64[D]").astype("datetime64[s]")  # 1970-01-01 was a Thursday
    if period == "month":
        return t.astype("datetime64[M]").astype("datetime64[s]")
    if period == "quarter":
        months = t.astype("datetime64[M]").astype(np.int64)
        return (months - months % 3).astype("datetime64[M]").astype("datetime64[s]")
    if period == "year":
        return t.astype("datetime64[Y]").astype("datetime64[s]")
    raise UserInputError(f"Unknown period {period!r}; expected day, week, month, quarter or year.")


def cohort_mean(
    times: Sequence[np.ndarray], dists: Sequence[np.ndarray], categories: list[str], period: Period = "month"
) -> CohortTrajectory:
    """Average per-user trajectories by calendar period (see the module docstring).

    Parameters
    ----------
    times
        Per user, [n_u] event times.
    dists
        Per user, [n_u, C] interest after each event.
    """
    C = len(categories)
    per_user, members = [], 0
    for t, d in zip(times, dists, strict=True):
        members += 1
        if len(t) == 0:
            continue
        p = period_start(t, period)
        keys, inv = np.unique(p, return_inverse=True)
        sums = np.zeros((len(keys), C))
        np.add.at(sums, inv, d)
        counts = np.bincount(inv, minlength=len(keys))
        per_user.append(pd.DataFrame({"period": keys, "n": counts, **{str(c): sums[:, c] / counts for c in range(C)}}))
    if not per_user:
        empty = np.zeros(0, "datetime64[s]")
        return CohortTrajectory(period, categories, empty, np.zeros((0, C)), np.zeros(0, int), np.zeros(0, int), members)
    df = pd.concat(per_user, ignore_index=True)
    g = df.groupby("period", sort=True)
    mean = g[[str(c) for c in range(C)]].mean().to_numpy()
    return CohortTrajectory(
        period=period,
        categories=list(categories),
        periods=g.size().index.to_numpy().astype("datetime64[s]"),
        mean=mean,
        active_users=g.size().to_numpy(),
        events=g["n"].sum().to_numpy(),
        members=members,
    )


def cohort_members(
    con: duckdb.DuckDBPyConnection,
    attributes: Sequence[tuple[str, str]] = (),
    min_events: int | None = None,
    max_events: int | None = None,
) -> list[str]:
    """User ids in the segment: every attribute pair matches and the event count lies in the range."""
    flt = UserFilter(attributes=tuple((str(k), str(v)) for k, v in attributes), min_events=min_events, max_events=max_events)
    df = list_users(con, flt, order="user_id", limit=_MAX_MEMBERS)
    return [str(u) for u in df["user_id"]]


def cohort_trajectory(
    con: duckdb.DuckDBPyConnection,
    analyzer: TrajectoryAnalyzer,
    attributes: Sequence[tuple[str, str]] = (),
    min_events: int | None = None,
    max_events: int | None = None,
    period: Period = "month",
    source: Literal["distribution", "long_term", "short_term", "baseline"] = "distribution",
    users: Sequence[str] | None = None,
) -> CohortTrajectory:
    """The segment's mean interest by period, from the model (`source`) or the decayed-histogram baseline.
    `users`, when given, further restricts the segment to those ids (e.g. an activity quartile)."""
    period_start(np.zeros(0, "datetime64[s]"), period)  # validates the period before any work
    members = cohort_members(con, attributes, min_events, max_events)
    if users is not None:
        keep = {str(u) for u in users}
        members = [u for u in members if u in keep]
    users = members
    if not users:
        raise NotFoundError("No user matches this segment; loosen the attribute or activity filters.")
    found = analyzer.social_context(con, users)  # a social model reads the members' friends
    ctx, rows = found if found is not None else (None, None)
    seqs = ctx.seqs if ctx is not None else load_sequences(con, analyzer.loaded.vocab, users=users)
    times, dists = [], []
    for traj in analyzer.trajectories(seqs, rows, components=source in ("long_term", "short_term"), social=ctx):
        times.append(traj.times)
        dists.append(getattr(traj, source))
    out = cohort_mean(times, dists, analyzer.categories, period)
    out.members = len(users)
    return out
