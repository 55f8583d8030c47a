"""Fairness and bias per calendar window, for trends.

Protocol: cut the log into calendar windows (UTC; month by default). At the end of window t, every user
active in t (at least one event in it) who also has an event in window t+1 gets a top-K list from
`recommend_fn`, made from their history up to the end of t; the list is scored against their first event
in t+1 (canonical order). Item popularity is the count of interactions before the end of t, and the
catalogue is every item seen before the end of t plus every recommended item.

A window with fewer scored users than `min_users` (30 by default, the smallest group size of the overall report)
is still computed but marked `WindowRow.below_min`: its means swing between 0 and 1, so the CLI and the app leave it
out of a trend and say how many windows they left out. Each window's NDCG@K and HR@K means and its NDCG gaps carry a
percentile bootstrap interval over its scored users (`n_boot` resamples, drawn in bounded chunks).

On a large log (`max_users`), each window scores a fixed panel of at most that many of its eligible users: the
ones with the smallest stable hash of their id, so the same users are followed from window to window and a run
gives the same rows every time. A window's item-side figures (coverage, Gini, …) are then those of the panel's
lists, and `WindowRow.eligible` says how many users the window had in all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from core.errors import UserInputError
from core.fairness.calibration import item_category_weights, miscalibration
from core.fairness.exposure import category_groups, exposure_table, popularity_groups
from core.fairness.groups import derive_user_groups, user_group_table
from core.fairness.items import check_recs, item_summary
from core.fairness.users import MIN_GROUP_SIZE, per_user_quality

__all__ = ["RecommendFn", "WindowRow", "FREQUENCIES", "TREND_USERS", "user_panel", "panel_note", "calendar_windows",
           "window_split", "over_time", "popularity_recommender", "window_intervals", "shown_windows"]

log = logging.getLogger(__name__)

# histories (user_id, item_id, ts, … in canonical order; one user's rows are their history) and K
# → top-K lists (user_id, rank 1..K, item_id)
RecommendFn = Callable[[pd.DataFrame, int], pd.DataFrame]

# Users scored per trend window by the CLI and the app (a stable panel, see the module docstring): the trend
# recomputes every scored user's list once per window, so without a cap it grows with users x windows.
TREND_USERS = 5000

FREQUENCIES = {"day": "D", "week": "W-SUN", "month": "M", "quarter": "Q", "year": "Y"}
_BOOT_CELLS = 2_000_000  # resample draws held at once (16 MB of indices): bounds memory when every user is scored


@dataclass(frozen=True)
class WindowRow:
    """One window's metrics: the lists were made at `end` and scored on the next window's first events."""

    start: pd.Timestamp
    end: pd.Timestamp
    users: int  # users scored
    metrics: dict[str, float]  # NDCG@K, HR@K, coverage, gini, arp, aplt, popularity_lift, novelty, C_KL,
    # exposure_parity:<grouping> and exposure_treatment:<grouping> for category and popularity
    gaps: dict[str, float]  # attribute → NDCG@K difference (largest − smallest group mean)
    eligible: int | None = None  # users the window had before the panel was drawn (None: all were scored)
    below_min: bool = False  # fewer scored users than `over_time`'s min_users: left out of a trend's chart
    # metric (NDCG@K, HR@K, gap:<attribute>) → (low, high) percentile bootstrap interval; {} when n_boot is 0
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)


def _utc_naive(ts: pd.Series) -> pd.Series:
    if isinstance(ts.dtype, np.dtype) and ts.dtype.kind == "M":
        return ts  # already naive datetimes: no copy (pd.to_datetime copies, ~80 MB at 10M events)
    ts = pd.to_datetime(ts)
    if getattr(ts.dt, "tz", None) is not None:
        ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    return ts


def calendar_windows(ts: pd.Series, freq: str = "month") -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Consecutive calendar windows [start, end) from the first to the last timestamp (UTC)."""
    if freq not in FREQUENCIES:
        raise UserInputError(f"Unknown window {freq!r}; expected one of {', '.join(FREQUENCIES)}.")
    ts = _utc_naive(ts)
    if ts.empty:
        return []
    first, last = ts.min().to_period(FREQUENCIES[freq]), ts.max().to_period(FREQUENCIES[freq])
    periods = pd.period_range(first, last, freq=FREQUENCIES[freq])
    return [(p.start_time, (p + 1).start_time) for p in periods]


def user_panel(user_ids: pd.Series | pd.Index, max_users: int) -> pd.Index:
    """At most `max_users` of the given ids: those with the smallest stable hash (the same ids in every window
    and every run, whatever order they come in)."""
    ids = pd.Index(pd.unique(pd.Series(user_ids).astype(str)))
    if len(ids) <= max_users:
        return ids
    h = pd.util.hash_pandas_object(pd.Series(ids, dtype=object), index=False, hash_key="interestlens-pnl")
    return ids[np.argsort(h.to_numpy(), kind="stable")[:max_users]]


def window_split(
    events: pd.DataFrame,
    start: pd.Timestamp,
    end: pd.Timestamp,
    next_end: pd.Timestamp,
    max_users: int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Histories (events before `end` of users active in [start, end) with an event in [end, next_end))
    and their targets (each such user's first event in [end, next_end)). Row order is kept. With `max_users`,
    only the `user_panel` of those users."""
    histories, targets, _ = _window(events, start, end, next_end, max_users)
    return histories, targets


def _window(
    events: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp, next_end: pd.Timestamp, max_users: int | None
) -> tuple[pd.DataFrame, pd.DataFrame, int | None]:
    """`window_split` plus the number of eligible users when a panel was drawn (None when all were kept)."""
    return _Log(events).window(start, end, next_end, max_users)


class _Log:
    """The log as integer codes (user, item) and a time array, so each window's masks, joins and popularity
    counts are numpy operations on 4- and 8-byte columns instead of hash lookups of 10M strings."""

    def __init__(self, events: pd.DataFrame):
        self.events = events
        self.ts = _utc_naive(events["ts"]).to_numpy()
        # a missing id is a value of its own (as `isin` treats it), never the sentinel -1
        codes, self.users = pd.factorize(events["user_id"], use_na_sentinel=False)
        self.u = codes.astype(np.int32)
        codes, self.items = pd.factorize(events["item_id"], use_na_sentinel=False)
        self.i = codes.astype(np.int32)

    def window(
        self, start: pd.Timestamp, end: pd.Timestamp, next_end: pd.Timestamp, max_users: int | None
    ) -> tuple[pd.DataFrame, pd.DataFrame, int | None]:
        ts, u, n = self.ts, self.u, len(self.users)
        lo, mid, hi = (np.datetime64(t.to_datetime64()) for t in (start, end, next_end))
        active = np.zeros(n, bool)
        active[u[(ts >= lo) & (ts < mid)]] = True
        nxt = np.flatnonzero((ts >= mid) & (ts < hi) & active[u])
        _, first = np.unique(u[nxt], return_index=True)
        tpos = nxt[np.sort(first)]  # each user's first event of the next window, in row order
        eligible = None
        if max_users is not None and len(tpos) > max_users:
            eligible = len(tpos)
            panel = user_panel(self.users[u[tpos]], max_users)
            tpos = tpos[pd.Index(self.users[u[tpos]]).isin(panel)]
        chosen = np.zeros(n, bool)
        chosen[u[tpos]] = True
        hpos = np.flatnonzero((ts < mid) & chosen[u])
        ev = self.events
        return ev.iloc[hpos].reset_index(drop=True), ev.iloc[tpos].reset_index(drop=True), eligible

    def popularity(self, end: pd.Timestamp) -> pd.Series:
        """Interactions per item before `end` (items with none left out), most popular first, ties by id."""
        counts = np.bincount(self.i[self.ts < np.datetime64(end.to_datetime64())], minlength=len(self.items))
        seen = np.flatnonzero(counts)
        pop = pd.Series(counts[seen], index=pd.Index(self.items[seen], name="item_id"), name="count")
        order = np.lexsort((pop.index.to_numpy(dtype=object), -pop.to_numpy()))
        return pop.iloc[order]


def panel_note(windows: list[WindowRow]) -> str | None:
    """How the trend's users were drawn, for a caption ("a fixed panel of at most N users per window …"), or None
    when every window scored all its users."""
    sampled = [w for w in windows if w.eligible]
    if not sampled:
        return None
    return (f"a fixed panel of at most {max(w.users for w in sampled):,} users per window (of up to "
            f"{max(w.eligible for w in sampled):,}), followed from window to window")


def shown_windows(windows: list[WindowRow]) -> tuple[list[WindowRow], list[WindowRow]]:
    """The windows a trend draws and those it leaves out (`WindowRow.below_min`), each in order."""
    return [w for w in windows if not w.below_min], [w for w in windows if w.below_min]


def window_intervals(
    values: dict[str, np.ndarray],
    groups: dict[str, np.ndarray],
    gap_of: str,
    n_boot: int,
    ci: tuple[float, float] = (0.025, 0.975),
    seed: int | tuple[int, ...] = 0,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals of per-user means and of group gaps within one window.

    Each resample draws the window's users with replacement (as the overall report's bootstrap does) and recomputes
    every mean and, per grouping, the largest minus the smallest group mean of `gap_of` (groups absent from a
    resample are left out of it).

    Parameters
    ----------
    values : metric → per-user values, each shape (n,), in the same user order.
    groups : attribute → group code per user, shape (n,), integers 0..G-1.
    gap_of : the metric of `values` whose group gaps are bootstrapped (``gap:<attribute>`` keys).
    n_boot : resamples; 0 gives {}.
    ci : lower and upper quantiles.
    seed : seed of numpy's default generator (a window's own seed makes every run give the same rows).

    Returns
    -------
    dict metric → (low, high): one entry per `values` key and one ``gap:<attribute>`` per `groups` key.
    """
    n = len(next(iter(values.values()))) if values else 0
    if n_boot < 1 or n == 0:
        return {}
    rng = np.random.default_rng(seed)
    chunk = max(1, _BOOT_CELLS // n)  # resamples per chunk: memory stays bounded whatever the window's size
    means: dict[str, list[np.ndarray]] = {m: [] for m in [*values, *(f"gap:{a}" for a in groups)]}
    done = 0
    while done < n_boot:
        b = min(chunk, n_boot - done)
        idx = rng.integers(0, n, size=(b, n))
        for m, v in values.items():
            means[m].append(v[idx].mean(axis=1))
        gv = values[gap_of][idx].ravel()
        for attr, codes in groups.items():
            g = int(codes.max()) + 1
            flat = (codes[idx] + g * np.arange(b)[:, None]).ravel()
            sums = np.bincount(flat, weights=gv, minlength=g * b).reshape(b, g)
            counts = np.bincount(flat, minlength=g * b).reshape(b, g)
            with np.errstate(invalid="ignore", divide="ignore"):
                gm = np.where(counts > 0, sums / counts, np.nan)
            means[f"gap:{attr}"].append(np.nanmax(gm, axis=1) - np.nanmin(gm, axis=1))
        done += b
    out = {}
    for m, parts in means.items():
        lo, hi = np.quantile(np.concatenate(parts), ci)
        out[m] = (float(lo), float(hi))
    return out


def over_time(
    events: pd.DataFrame,
    recommend_fn: RecommendFn,
    k: int,
    item_categories: pd.Series,
    user_attributes: pd.DataFrame | None = None,
    by: list[str] | None = None,
    freq: str = "month",
    min_users: int = MIN_GROUP_SIZE,
    max_users: int | None = None,
    lists: Callable[[pd.Timestamp, pd.Timestamp], pd.DataFrame] | None = None,
    n_boot: int = 200,
    ci: tuple[float, float] = (0.025, 0.975),
    random_state: int = 0,
) -> list[WindowRow]:
    """Every metric per calendar window (see the module docstring for the protocol).

    Parameters
    ----------
    events : the log (user_id, item_id, ts) in canonical order (``ORDER BY ts, run_id, seq``).
    recommend_fn : called once per window with the histories and K.
    k : list length.
    item_categories : item_id → list of categories (for C_KL).
    user_attributes, by : as in `fairness_report`; gaps are given for these attributes.
    freq : day, week, month, quarter or year.
    min_users : windows with fewer scored users are marked `below_min` (still computed; a trend leaves them out).
    max_users : score at most this many users per window (a stable panel; see the module docstring); None: all.
    lists : served lists instead of a model: called with (start, end), it returns the lists served in that window
        (`core.served.served_lists`); `recommend_fn` is then not called.
    n_boot, ci, random_state : the per-window bootstrap (`window_intervals`; window i is seeded with
        (random_state, i)); n_boot 0: no intervals.

    Returns
    -------
    One `WindowRow` per window with at least one scored user, in time order.
    """
    if max_users is not None and max_users < 1:
        raise UserInputError(f"The trend panel must hold at least one user, not {max_users}.")
    missing = [c for c in ("user_id", "item_id", "ts") if c not in events.columns]
    if missing:
        raise UserInputError(f"The event log lacks the column(s) {', '.join(missing)}.")
    ev = events.assign(user_id=events["user_id"].astype(str), item_id=events["item_id"].astype(str), ts=_utc_naive(events["ts"]))
    windows = calendar_windows(ev["ts"], freq)
    # built once: each window keeps the rows of its own catalogue
    all_items = pd.Index(ev["item_id"].unique()).union(pd.Index(item_categories.index.astype(str)))
    by_category = category_groups(item_categories, all_items)
    weights = item_category_weights(item_categories)
    log_codes = _Log(ev)
    rows: list[WindowRow] = []
    for i, ((start, end), (_, next_end)) in enumerate(zip(windows[:-1], windows[1:], strict=True)):
        histories, targets, eligible = log_codes.window(start, end, next_end, max_users)
        if len(targets) == 0:
            continue
        recs = check_recs(lists(start, end) if lists is not None else recommend_fn(histories, k))
        recs = recs[(recs["rank"] <= k) & recs["user_id"].isin(targets["user_id"].unique())]
        hit = targets[["user_id", "item_id"]].merge(recs, on=["user_id", "item_id"], how="left")
        quality = per_user_quality(hit[["user_id", "rank"]], k)
        pop = log_codes.popularity(end)
        catalogue = pop.index.union(pd.Index(recs["item_id"].unique()))
        summary = item_summary(recs, pop, histories, catalogue, k)
        ckl = miscalibration(histories, recs, item_categories, weights=weights)
        metrics = {f"NDCG@{k}": float(quality[f"NDCG@{k}"].mean()), f"HR@{k}": float(quality[f"HR@{k}"].mean())}
        metrics.update({key: float(v) for key, v in summary.items() if key != "users"})
        metrics["C_KL"] = float(ckl.mean()) if ckl.notna().any() else float("nan")
        item_groups = {"category": by_category, "popularity": popularity_groups(pop, catalogue)}
        for name, item_group in item_groups.items():
            table = exposure_table(recs, item_group, catalogue, targets, grouping=name)
            metrics[f"exposure_parity:{name}"] = table.parity_ratio
            metrics[f"exposure_treatment:{name}"] = table.treatment_ratio
        derived = derive_user_groups(histories, as_of=end)
        groups = user_group_table(quality.index, user_attributes, derived, by)
        gaps = {}
        for attr in groups.columns:
            means = quality[f"NDCG@{k}"].groupby(groups[attr]).mean()
            gaps[attr] = float(means.max() - means.min()) if len(means) else float("nan")
        nd, hr = f"NDCG@{k}", f"HR@{k}"
        intervals = window_intervals(
            {nd: quality[nd].to_numpy(float), hr: quality[hr].to_numpy(float)},
            {attr: pd.factorize(groups[attr])[0] for attr in groups.columns}, nd, n_boot, ci, (random_state, i),
        )
        rows.append(WindowRow(start, end, int(len(targets)), metrics, gaps, eligible,
                              below_min=len(targets) < min_users, intervals=intervals))
        log.debug("window %s: %d users", start, len(targets))
    return rows


def popularity_recommender(histories: pd.DataFrame, k: int) -> pd.DataFrame:
    """A baseline RecommendFn: the K items most interacted with in `histories` (ties by item id) that the
    user has not interacted with yet."""
    counts = histories["item_id"].astype(str).value_counts()
    ranked = (
        pd.DataFrame({"item": counts.index, "n": counts.to_numpy()})
        .sort_values(["n", "item"], ascending=[False, True], kind="stable")["item"]
        .tolist()
    )
    out = []
    for user, seen in histories.groupby(histories["user_id"].astype(str), sort=True)["item_id"]:
        seen_set = set(seen.astype(str))
        top = [i for i in ranked[: k + len(seen_set)] if i not in seen_set][:k]
        out += [(user, r + 1, item) for r, item in enumerate(top)]
    return pd.DataFrame(out, columns=["user_id", "rank", "item_id"]).astype({"rank": np.int64})
