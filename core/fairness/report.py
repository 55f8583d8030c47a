"""The full fairness report: user-group quality, item-side bias, exposure, calibration and trends.

`fairness_report(inputs, ...)` is pure: it reads only the DataFrames in `FairnessInputs` (built from a
database and a model directory by `core.fairness.inputs.load_inputs`, or by hand in tests).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Literal

import pandas as pd

from core.errors import UserInputError
from core.fairness.calibration import ALPHA, miscalibration
from core.fairness.exposure import (
    ExposureTable,
    attribute_groups,
    category_groups,
    exposure_table,
    popularity_groups,
)
from core.fairness.groups import derive_user_groups, user_group_table
from core.fairness.items import (
    check_recs,
    item_summary,
)
from core.fairness.over_time import RecommendFn, WindowRow, over_time
from core.fairness.users import MIN_GROUP_SIZE, GapRow, GroupRow, grouped_metrics, per_user_quality

__all__ = ["FairnessInputs", "ItemReport", "CalibrationReport", "FairnessReport", "fairness_report"]

log = logging.getLogger(__name__)


@dataclass
class FairnessInputs:
    """Everything the report reads; ids are strings, times naive UTC.

    recs : top-K lists (user_id, rank 1..K, item_id).
    eval_users : per-user evaluation (user_id, rank of the test target in the full ranking, may exceed K).
    histories : the events each list was made from (user_id, item_id[, ts]); ts enables derived groups.
    pop : training interactions per item (item_id → count).
    item_categories : item_id → list of category names.
    catalogue : every item id.
    user_attributes : user_id + one column per attribute, or None.
    targets : test targets (user_id, item_id[, ts]) for exposure against relevance, or None.
    item_attributes : item_id + one column per attribute, or None.
    events : the whole log (user_id, item_id, ts) in canonical order, for trends; or None.
    """

    recs: pd.DataFrame
    eval_users: pd.DataFrame
    histories: pd.DataFrame
    pop: pd.Series
    item_categories: pd.Series
    catalogue: list[str]
    user_attributes: pd.DataFrame | None = None
    targets: pd.DataFrame | None = None
    item_attributes: pd.DataFrame | None = None
    events: pd.DataFrame | None = None


@dataclass(frozen=True)
class ItemReport:
    """Item-side bias of the top-K lists."""

    users: int  # users with a list
    k: int
    catalogue: int  # |I|
    coverage: float
    gini: float
    arp: float
    aplt: float
    popularity_lift: float
    history_popularity: float  # mean popularity of the users' own histories (the lift's baseline)
    novelty: float  # bits
    short_head_items: int
    exposure: list[ExposureTable] = field(default_factory=list)


@dataclass(frozen=True)
class CalibrationReport:
    """Miscalibration C_KL(history ‖ list) overall and by user group."""

    alpha: float
    mean: float
    users: int  # users with a defined C_KL
    by_group: list[GroupRow]


@dataclass(frozen=True)
class FairnessReport:
    """The whole report; `to_dict()` gives the CLI's JSON object."""

    k: int
    users: list[GroupRow]
    user_gaps: list[GapRow]
    items: ItemReport
    calibration: CalibrationReport
    over_time: list[WindowRow]
    settings: dict[str, object]
    per_user: pd.DataFrame  # indexed by user_id: NDCG@K, HR@K, C_KL (NaN without a list) and each user's groups

    def to_dict(self) -> dict:
        """Plain dict: users as flat rows {attribute, group, size, NDCG@K, NDCG@K_low, NDCG@K_high, …}.

        The per-user table is left out (it can be large); `per_user` holds it.
        """

        def flat(r: GroupRow) -> dict:
            d: dict = {"attribute": r.attribute, "group": r.group, "size": r.size}
            for m, v in r.values.items():
                d[m] = v
                d[f"{m}_low"] = r.low.get(m, float("nan"))
                d[f"{m}_high"] = r.high.get(m, float("nan"))
            return d

        return {
            "k": self.k,
            "settings": self.settings,
            "users": [flat(r) for r in self.users],
            "user_gaps": [vars(g).copy() for g in self.user_gaps],
            "items": asdict(self.items),
            "calibration": {
                "alpha": self.calibration.alpha,
                "mean": self.calibration.mean,
                "users": self.calibration.users,
                "by_group": [flat(r) for r in self.calibration.by_group],
            },
            "over_time": [
                {"start": w.start, "end": w.end, "users": w.users, "eligible_users": w.eligible or w.users,
                 "below_min_users": w.below_min, **w.metrics, **_interval_keys(w), "gaps": w.gaps,
                 "gaps_low": {a: lo for m, (lo, _) in w.intervals.items() if (a := m.removeprefix("gap:")) != m},
                 "gaps_high": {a: hi for m, (_, hi) in w.intervals.items() if (a := m.removeprefix("gap:")) != m}}
                for w in self.over_time
            ],
        }


def _interval_keys(w: WindowRow) -> dict[str, float]:
    """A window's metric intervals as flat keys (``NDCG@K_low``, ``NDCG@K_high``, …), as the user rows have them."""
    return {f"{m}_{side}": v for m, (lo, hi) in w.intervals.items() if not m.startswith("gap:")
            for side, v in (("low", lo), ("high", hi))}


def fairness_report(
    inputs: FairnessInputs,
    k: int = 10,
    by: list[str] | None = None,
    n_boot: int | None = 200,
    ci: tuple[float, float] = (0.025, 0.975),
    random_state: int = 0,
    exposure_by: Iterable[str] = ("category", "popularity"),
    recommend_fn: RecommendFn | None = None,
    freq: str = "month",
    bootstrap: Literal["vectorised", "fairlearn"] = "vectorised",
    trend_users: int | None = None,
    min_group_size: int = MIN_GROUP_SIZE,
) -> FairnessReport:
    """Compute the whole report.

    Parameters
    ----------
    inputs : the DataFrames (see `FairnessInputs`).
    k : list length; lists are cut to rank ≤ k.
    by : user attributes to group by (raw ones, ``age_band``, ``activity_quartile``, ``tenure_quartile``,
        ``new_vs_returning``); default all that exist.
    n_boot, ci, random_state, bootstrap : the bootstrap for user-side intervals (see `grouped_metrics`).
    exposure_by : item groupings: ``"category"``, ``"popularity"`` (short head / long tail),
        ``"popularity:<b>"`` (b equal-size bins) or ``"attribute:<name>"`` (an item attribute column).
    recommend_fn : recommender for trends; None leaves `over_time` empty.
    freq : calendar window for trends (day, week, month, quarter, year; UTC).
    trend_users : score at most this many users per trend window (a stable panel, `over_time`); None: all.
    min_group_size : user groups with fewer users are reported but left out of the gaps (`grouped_metrics`), and
        trend windows with fewer scored users are marked `below_min` (`over_time`).
    """
    recs = check_recs(inputs.recs)
    recs = recs[recs["rank"] <= k]
    catalogue = list(pd.unique(pd.Series(list(inputs.catalogue), dtype=object).astype(str)))
    pop = inputs.pop.copy()
    pop.index = pop.index.astype(str)
    histories = inputs.histories.assign(
        user_id=inputs.histories["user_id"].astype(str), item_id=inputs.histories["item_id"].astype(str)
    )

    quality = per_user_quality(inputs.eval_users, k)
    derived = None
    if "ts" in histories.columns and not histories.empty:
        as_of = None
        if inputs.targets is not None and "ts" in inputs.targets.columns:
            as_of = inputs.targets.assign(user_id=inputs.targets["user_id"].astype(str)).set_index("user_id")["ts"]
        derived = derive_user_groups(histories, as_of=as_of)
    groups = user_group_table(quality.index, inputs.user_attributes, derived, by)
    rows, gaps = grouped_metrics(quality, groups, n_boot, ci, random_state, bootstrap, min_group_size)

    tables = [_exposure(recs, name, inputs, pop, catalogue) for name in exposure_by]
    items = ItemReport(k=k, exposure=tables, **item_summary(recs, pop, histories, catalogue, k))

    ckl = miscalibration(histories, recs, inputs.item_categories, ALPHA).dropna()
    if len(ckl):
        cgroups = user_group_table(ckl.index, inputs.user_attributes, derived, by)
        crow, _ = grouped_metrics(ckl.to_frame(), cgroups, n_boot, ci, random_state, bootstrap, min_group_size)
    else:
        crow = []
    calibration = CalibrationReport(ALPHA, float(ckl.mean()) if len(ckl) else float("nan"), int(len(ckl)), crow)

    trend: list[WindowRow] = []
    if recommend_fn is not None:
        if inputs.events is None:
            raise UserInputError("Trends over time need the event log; none was given.")
        trend = over_time(
            inputs.events, recommend_fn, k, inputs.item_categories, inputs.user_attributes, by, freq,
            min_users=min_group_size, max_users=trend_users, n_boot=n_boot or 0, ci=ci, random_state=random_state,
        )
    settings = {
        "n_boot": n_boot or 0,
        "ci": list(ci),
        "random_state": random_state,
        "bootstrap": bootstrap,
        "alpha": ALPHA,
        "freq": freq,
        "trend_users": trend_users,
        "min_group_size": min_group_size,
    }
    per_user = quality.join(ckl.rename("C_KL")).join(groups)
    return FairnessReport(k, rows, gaps, items, calibration, trend, settings, per_user)


def _exposure(recs: pd.DataFrame, name: str, inputs: FairnessInputs, pop: pd.Series, catalogue: list[str]) -> ExposureTable:
    kind, _, arg = name.partition(":")
    if kind == "category":
        groups = category_groups(inputs.item_categories, catalogue)
    elif kind == "popularity":
        if arg and (not arg.isdigit() or int(arg) < 1):
            raise UserInputError(f"Popularity bins must be a positive whole number, not {arg!r}.")
        groups = popularity_groups(pop, catalogue, int(arg) if arg else None)
    elif kind == "attribute":
        attrs = inputs.item_attributes
        if attrs is None or arg not in attrs.columns or arg == "item_id":
            known = ", ".join(c for c in (attrs.columns if attrs is not None else []) if c != "item_id") or "none"
            raise UserInputError(f"Unknown item attribute {arg!r}; known item attributes: {known}.")
        groups = attribute_groups(attrs.set_index(attrs["item_id"].astype(str))[arg], catalogue)
    else:
        raise UserInputError(f"Unknown item grouping {name!r}; use category, popularity[:bins] or attribute:<name>.")
    return exposure_table(recs, groups, catalogue, inputs.targets, grouping=name)

