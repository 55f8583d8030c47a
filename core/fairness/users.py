"""User-side fairness: per-user quality grouped by user attributes through fairlearn's `MetricFrame`.

Group means, `difference()` (largest minus smallest group) and `ratio()` (smallest over largest group)
come from `MetricFrame`. Confidence intervals come from `MetricFrame`'s own bootstrap (`n_boot`,
`ci_quantiles`, `random_state`): each resample draws all users with replacement and recomputes every group
mean. Fairlearn evaluates each resample through a pandas group-by (about 0.1 s per resample per attribute),
so the default `bootstrap="vectorised"` draws the very same resamples (the same seeds, the same
`DataFrame.sample` draws) and computes the group means with `np.bincount`; the test suite checks that both
give identical intervals. Pass `bootstrap="fairlearn"` to run fairlearn's own loop.

With the default, the group means are pandas' group-by means (NaN left out), which is what `MetricFrame` computes
with this module's `_group_mean` (the test suite checks both agree); fairlearn itself is imported only for
`bootstrap="fairlearn"`. Importing it (and scikit-learn under it) cost ~0.8 s of CPU, most of the Fairness
page's first open once its inputs are saved (docs/fairness.md).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from core.errors import UserInputError

if TYPE_CHECKING:
    from fairlearn.metrics import MetricFrame

__all__ = ["GroupRow", "GapRow", "per_user_quality", "grouped_metrics", "OVERALL"]

log = logging.getLogger(__name__)

OVERALL = "all"  # attribute and group name of the row over all users
MIN_GROUP_SIZE = 30  # groups with fewer users are reported but left out of the gaps: their means are mostly noise


@dataclass(frozen=True)
class GroupRow:
    """One group's mean metrics over its users, with bootstrap interval bounds (NaN without bootstrap)."""

    attribute: str
    group: str
    size: int  # users in the group
    values: dict[str, float]
    low: dict[str, float] = field(default_factory=dict)
    high: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class GapRow:
    """The gap between the best and worst group of one attribute for one metric."""

    attribute: str
    metric: str
    groups: int
    difference: float  # max − min of the group means (MetricFrame.difference)
    ratio: float  # min / max of the group means (MetricFrame.ratio), 1 = parity
    best_group: str
    worst_group: str
    difference_low: float = float("nan")
    difference_high: float = float("nan")
    ratio_low: float = float("nan")
    ratio_high: float = float("nan")
    left_out: int = 0  # groups smaller than the minimum group size, not counted in this gap


def per_user_quality(eval_users: pd.DataFrame, k: int = 10) -> pd.DataFrame:
    """NDCG@K and HR@K per user from the rank of the test target in the full ranking.

    NDCG@K = 1/log2(rank + 1) if rank ≤ K else 0; HR@K = 1 if rank ≤ K else 0 (rank starts at 1;
    a missing rank counts as a miss). Returns a DataFrame indexed by user_id with columns
    ``NDCG@K`` and ``HR@K``.
    """
    if "user_id" not in eval_users.columns or "rank" not in eval_users.columns:
        raise UserInputError("The per-user evaluation table needs the columns user_id and rank.")
    if k < 1:
        raise UserInputError(f"K must be a positive integer, not {k}.")
    rank = pd.to_numeric(eval_users["rank"], errors="coerce").to_numpy(dtype=float)
    if np.any(rank[~np.isnan(rank)] < 1):
        raise UserInputError("Ranks in the per-user evaluation table start at 1; found a rank below 1.")
    hit = np.nan_to_num(rank, nan=np.inf) <= k
    ndcg = np.where(hit, 1.0 / np.log2(np.where(hit, rank, 1.0) + 1.0), 0.0)
    out = pd.DataFrame(
        {f"NDCG@{k}": ndcg, f"HR@{k}": hit.astype(float)},
        index=pd.Index(eval_users["user_id"].astype(str), name="user_id"),
    )
    if out.index.has_duplicates:
        raise UserInputError("The per-user evaluation table has more than one row for some user.")
    return out


def _group_mean(y_true: np.ndarray, y_pred: np.ndarray, v: np.ndarray) -> float:
    v = np.asarray(v, dtype=float)
    v = v[~np.isnan(v)]
    return float(v.mean()) if v.size else float("nan")


def grouped_metrics(
    values: pd.DataFrame,
    groups: pd.DataFrame,
    n_boot: int | None = 200,
    ci: tuple[float, float] = (0.025, 0.975),
    random_state: int = 0,
    bootstrap: Literal["vectorised", "fairlearn"] = "vectorised",
    min_group_size: int = 1,
) -> tuple[list[GroupRow], list[GapRow]]:
    """Mean of each per-user metric by group, for every attribute, with fairlearn's MetricFrame.

    Parameters
    ----------
    values : DataFrame indexed by user_id, one float column per metric (NaN = no value for that user,
        left out of that metric's means).
    groups : DataFrame indexed by user_id (same users), one string column per attribute.
    n_boot : bootstrap resamples (None or 0: no intervals).
    ci : the two quantiles of the interval (default a 95 % percentile interval).
    random_state : seed; the same seed gives the same intervals.
    bootstrap : ``"vectorised"`` (same resamples as fairlearn, computed with numpy) or ``"fairlearn"``.
    min_group_size : groups with fewer users keep their row but are left out of the gaps (a gap needs two groups
        of at least this size; NaN otherwise). 1 counts every group; the report uses `MIN_GROUP_SIZE`.

    Returns
    -------
    rows : the overall row (attribute ``"all"``) then one row per (attribute, group), groups sorted.
    gaps : one row per (attribute, metric), over the groups of at least `min_group_size` users.
    """
    if values.empty:
        raise UserInputError("There are no users to group: the evaluation table is empty.")
    users = values.index
    groups = groups.reindex(users)
    metrics = list(values.columns)
    boot = bool(n_boot)
    rows: list[GroupRow] = []
    gaps: list[GapRow] = []
    fns = {m: _group_mean for m in metrics}
    params = {m: {"v": values[m].to_numpy(dtype=float)} for m in metrics}
    zeros = np.zeros(len(users))
    # every attribute sees the same resamples, as fairlearn's loop with the same random_state would draw them
    draws = _bootstrap_draws(len(users), int(n_boot), random_state) if boot and bootstrap == "vectorised" else None
    overall_done = False
    for attr in groups.columns:
        feature = groups[attr].fillna("unknown").astype(str).rename(attr).reset_index(drop=True)
        kwargs = {}
        if bootstrap == "fairlearn":
            from fairlearn.metrics import MetricFrame  # only here: the import costs ~0.8 s of CPU

            if boot:
                kwargs = dict(n_boot=int(n_boot), ci_quantiles=list(map(float, ci)), random_state=random_state)
            mf = MetricFrame(
                metrics=fns, y_true=zeros, y_pred=zeros, sensitive_features=feature, sample_params=params, **kwargs
            )
            by_group, overall = mf.by_group, mf.overall
        else:  # MetricFrame's by_group with _group_mean: each group's mean over its non-NaN values, groups sorted
            by_group = values.reset_index(drop=True).groupby(feature, sort=True).mean()
            overall = values.apply(lambda c: _group_mean(None, None, c.to_numpy()))
        sizes = feature.value_counts()
        counted = np.array([int(sizes.get(g, 0)) >= min_group_size for g in by_group.index])
        if boot and bootstrap == "fairlearn":
            ci_overall, ci_group = mf.overall_ci, mf.by_group_ci
            ci_diff, ci_ratio = _fairlearn_gap_ci(mf, values, feature, counted, by_group.index, kwargs)
        elif boot:
            ci_overall, ci_group, ci_diff, ci_ratio = _vectorised_ci(values, feature, by_group.index, draws, ci,
                                                                     counted)
        else:
            ci_overall = ci_group = ci_diff = ci_ratio = None
        if not overall_done:
            rows.append(_row(OVERALL, OVERALL, len(users), overall, ci_overall, None))
            overall_done = True
        for g in by_group.index:
            rows.append(_row(attr, str(g), int(sizes.get(g, 0)), by_group.loc[g], ci_group, g))
        for m in metrics:
            known = by_group[m][counted].dropna()
            two = len(known) >= 2
            gaps.append(
                GapRow(
                    attribute=attr,
                    metric=m,
                    groups=int(len(known)),
                    difference=float(known.max() - known.min()) if two else float("nan"),
                    ratio=float(known.min() / known.max()) if two and known.max() != 0 else float("nan"),
                    best_group=str(known.idxmax()) if len(known) else "",
                    worst_group=str(known.idxmin()) if len(known) else "",
                    difference_low=float(ci_diff[0][m]) if ci_diff else float("nan"),
                    difference_high=float(ci_diff[1][m]) if ci_diff else float("nan"),
                    ratio_low=float(ci_ratio[0][m]) if ci_ratio else float("nan"),
                    ratio_high=float(ci_ratio[1][m]) if ci_ratio else float("nan"),
                    left_out=int((~counted).sum()),
                )
            )
    if not overall_done:  # no attribute asked for: still report the overall means and intervals
        feature = pd.Series(OVERALL, index=range(len(users)), name=OVERALL)
        ci_overall = _vectorised_ci(values, feature, pd.Index([OVERALL]), draws, ci)[0] if boot else None
        overall = values.apply(lambda c: _group_mean(None, None, c.to_numpy()))
        rows.append(_row(OVERALL, OVERALL, len(users), overall, ci_overall, None))
    return rows, gaps


def _row(attr: str, group: str, size: int, point: pd.Series, ci_frames, key) -> GroupRow:
    values = {m: float(v) for m, v in point.items()}
    if ci_frames is None:
        return GroupRow(attr, group, size, values)
    lo, hi = ci_frames[0], ci_frames[1]
    if key is not None:
        lo, hi = lo.loc[key], hi.loc[key]
    return GroupRow(attr, group, size, values, {m: float(lo[m]) for m in values}, {m: float(hi[m]) for m in values})


_BOOT_CELLS = 1 << 22  # draws handled at once by `_vectorised_ci`: temporaries of ~4M cells, whatever the users


def _bootstrap_draws(n: int, n_boot: int, random_state: int) -> np.ndarray:
    """[n_boot, n] row indices of fairlearn's resamples (fairlearn.metrics._bootstrap).

    Fairlearn draws one uint32 seed per resample from ``default_rng(random_state)`` and then calls
    ``DataFrame.sample(frac=1, replace=True, random_state=seed)``, which draws exactly
    ``RandomState(seed).choice(n, size=n, replace=True)``.
    """
    seeds = np.random.default_rng(seed=int(random_state)).integers(
        low=0, high=np.iinfo(np.uint32).max, size=int(n_boot), dtype=np.uint32
    )
    dtype = np.int32 if n < np.iinfo(np.int32).max else np.int64  # half the memory: 200 x 100k users is 80 MB
    return np.stack([np.random.RandomState(seed).choice(n, size=n, replace=True).astype(dtype) for seed in seeds])


def _fairlearn_gap_ci(mf: MetricFrame, values: pd.DataFrame, feature: pd.Series, counted: np.ndarray,
                      group_index: pd.Index, kwargs: dict):
    """fairlearn's gap intervals over the counted groups (a MetricFrame of their users when some are left out)."""
    from fairlearn.metrics import MetricFrame

    if counted.all():
        return mf.difference_ci(), mf.ratio_ci()
    keep = feature.isin(set(group_index[counted])).to_numpy()
    if counted.sum() < 2:
        return None, None
    v = values[keep]
    sub = MetricFrame(
        metrics={m: _group_mean for m in values.columns}, y_true=np.zeros(len(v)), y_pred=np.zeros(len(v)),
        sensitive_features=feature[keep].reset_index(drop=True),
        sample_params={m: {"v": v[m].to_numpy(dtype=float)} for m in values.columns}, **kwargs,
    )
    return sub.difference_ci(), sub.ratio_ci()


def _vectorised_ci(
    values: pd.DataFrame, feature: pd.Series, group_index: pd.Index, draws: np.ndarray, ci: tuple[float, float],
    counted: np.ndarray | None = None,
):
    """fairlearn's bootstrap intervals from the same resamples (`draws`), with one bincount per metric; the gap
    intervals over the `counted` groups only (all by default)."""
    B, n = draws.shape
    code_of = {g: i for i, g in enumerate(group_index)}
    codes = feature.map(code_of).to_numpy(dtype=np.int64)
    G, M = len(group_index), values.shape[1]
    v = values.to_numpy(dtype=float)
    present = ~np.isnan(v)
    v0 = np.where(present, v, 0.0)
    by_group = np.empty((B, G, M))
    overall = np.empty((B, M))
    step = max(1, _BOOT_CELLS // max(n, 1))  # resamples at a time
    for b0 in range(0, B, step):
        d = draws[b0 : b0 + step]
        b = len(d)
        cells = (np.arange(b)[:, None] * G + codes[d]).ravel()  # [b·n] resample × group cell of every draw
        for m in range(M):
            sums = np.bincount(cells, weights=v0[d, m].ravel(), minlength=b * G).reshape(b, G)
            cnts = np.bincount(cells, weights=present[d, m].ravel(), minlength=b * G).reshape(b, G)
            with np.errstate(invalid="ignore", divide="ignore"):
                by_group[b0 : b0 + b, :, m] = sums / cnts  # a group absent from a resample is NaN there
                overall[b0 : b0 + b, m] = sums.sum(1) / cnts.sum(1)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        gaps_of = by_group if counted is None else by_group[:, counted, :]
        if gaps_of.shape[1] < 2:  # fewer than two groups large enough: no gap, no interval
            gaps_of = np.full((B, 2, M), np.nan)
        gmax, gmin = np.nanmax(gaps_of, axis=1), np.nanmin(gaps_of, axis=1)
        diff, ratio = gmax - gmin, gmin / gmax
        q = list(map(float, ci))
        cols = list(values.columns)
        ci_overall = [pd.Series(x, index=cols) for x in np.quantile(overall, q, axis=0)]
        ci_group = [pd.DataFrame(x, index=group_index, columns=cols) for x in np.nanquantile(by_group, q, axis=0)]
        ci_diff = [pd.Series(x, index=cols) for x in np.quantile(diff, q, axis=0)]
        ci_ratio = [pd.Series(x, index=cols) for x in np.quantile(ratio, q, axis=0)]
    return ci_overall, ci_group, ci_diff, ci_ratio
