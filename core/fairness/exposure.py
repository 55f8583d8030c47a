"""Exposure of item groups in top-K lists (Singh & Joachims, KDD 2018).

Position weight v_j = 1/log2(1 + j) for rank j; exposure of item d = Σ_u v_{rank_u(d)} over the lists that
contain d. An item grouping is a table (item_id, group, weight) whose weights sum to 1 per item: an item
with several categories counts 1/n in each. Group exposure = the weighted mean exposure of the group's
catalogue items (never-recommended items count with exposure 0).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.fairness.groups import label
from core.fairness.items import short_head

__all__ = [
    "ExposureRow",
    "ExposureTable",
    "position_weight",
    "item_exposure",
    "category_groups",
    "popularity_groups",
    "attribute_groups",
    "exposure_table",
]

NO_GROUP = "none"
# Groups that say "no category" rather than name one: they stay in the table but not in the parity ratio, where one
# never-shown "unknown" genre would set the ratio to 0 whatever the recommender does for real categories.
NOT_A_GROUP = frozenset({NO_GROUP, "unknown", "(no genres listed)"})


@dataclass(frozen=True)
class ExposureRow:
    """One item group's exposure and relevance."""

    group: str
    items: float  # catalogue items in the group (an item in n groups counts 1/n)
    exposure: float  # mean position-discounted exposure per item of the group
    exposure_share: float  # the group's share of all exposure
    relevance: float  # share of test targets in the group (NaN without targets)
    exposure_to_relevance: float  # exposure_share / relevance: 1 = exposure in proportion to relevance


@dataclass(frozen=True)
class ExposureTable:
    """Exposure per group for one item grouping, with the two parity summaries."""

    grouping: str  # "category", "popularity" or "attribute:<name>"
    rows: list[ExposureRow]
    parity_ratio: float  # demographic parity: min / max of group mean exposure (1 = equal)
    treatment_ratio: float  # disparate treatment: min / max of exposure_to_relevance over groups with relevance
    left_out: tuple[str, ...] = ()  # groups not in the two ratios: "no category" groups and groups of no items


def position_weight(rank: np.ndarray | pd.Series) -> np.ndarray:
    """v_j = 1/log2(1 + j) for ranks j ≥ 1."""
    return 1.0 / np.log2(1.0 + np.asarray(rank, dtype=float))


def item_exposure(recs: pd.DataFrame, catalogue: Iterable[str]) -> pd.Series:
    """Exposure of every catalogue item (0 if never recommended), indexed by item id."""
    cat = pd.Index(pd.unique(pd.Series(list(catalogue), dtype=object).astype(str)))
    exp = pd.Series(position_weight(recs["rank"]), index=recs["item_id"].astype(str).to_numpy())
    return exp.groupby(level=0).sum().reindex(cat, fill_value=0.0)


def category_groups(item_categories: pd.Series, catalogue: Iterable[str]) -> pd.DataFrame:
    """Groups by category: each catalogue item's weight split equally over its categories.

    `item_categories` maps item id → list of category names; items without any fall in group ``"none"``.
    """
    cats = item_categories.copy()
    cats.index = cats.index.astype(str)
    rows = []
    for item in pd.unique(pd.Series(list(catalogue), dtype=object).astype(str)):
        c = cats.get(item)
        names = list(dict.fromkeys(str(x) for x in c)) if c is not None and len(c) else [NO_GROUP]
        rows += [(item, name, 1.0 / len(names)) for name in names]
    return pd.DataFrame(rows, columns=["item_id", "group", "weight"])


def popularity_groups(pop: pd.Series, catalogue: Iterable[str], n_bins: int | None = None) -> pd.DataFrame:
    """Groups by training popularity.

    With `n_bins` None: ``"short head"`` (the most popular items holding 80 % of interactions) and
    ``"long tail"`` (the rest, never-interacted items included). With `n_bins` = b: b bins of equal item
    count over the catalogue ordered from most to least popular (ties by item id), named ``"bin 1/b"``
    (most popular) … ``"bin b/b"``.
    """
    items = pd.Index(pd.unique(pd.Series(list(catalogue), dtype=object).astype(str)))
    p = pop.copy()
    p.index = p.index.astype(str)
    p = p.reindex(items, fill_value=0).astype(float)
    if n_bins is None:
        head = short_head(p)
        groups = np.where(items.isin(list(head)), "short head", "long tail")
    else:
        order = pd.DataFrame({"item": items, "pop": p.to_numpy()}).sort_values(
            ["pop", "item"], ascending=[False, True], kind="stable"
        )
        bins = np.arange(len(order)) * int(n_bins) // max(len(order), 1)
        labels = pd.Series([f"bin {b + 1}/{n_bins}" for b in bins], index=order["item"].to_numpy())
        groups = labels.reindex(items).to_numpy()
    return pd.DataFrame({"item_id": items, "group": groups, "weight": 1.0})


def attribute_groups(item_attribute: pd.Series, catalogue: Iterable[str]) -> pd.DataFrame:
    """Groups by one item attribute (item id → value); items without a value are ``"unknown"``."""
    items = pd.Index(pd.unique(pd.Series(list(catalogue), dtype=object).astype(str)))
    a = item_attribute.copy()
    a.index = a.index.astype(str)
    values = a.reindex(items).map(label)
    return pd.DataFrame({"item_id": items, "group": values.to_numpy(), "weight": 1.0})


def exposure_table(
    recs: pd.DataFrame,
    groups: pd.DataFrame,
    catalogue: Iterable[str],
    targets: pd.DataFrame | None = None,
    grouping: str = "category",
) -> ExposureTable:
    """Exposure per item group, demographic parity of exposure and exposure against relevance.

    The two ratios leave out groups that name no category ("none", "unknown") and groups of no items; the table
    keeps their rows and `left_out` names them.

    Parameters
    ----------
    recs : top-K lists (user_id, rank, item_id).
    groups : item grouping (item_id, group, weight), weights summing to 1 per item.
    catalogue : all item ids (never-recommended items count with exposure 0).
    targets : test targets (user_id, item_id); relevance of a group = the share of targets in it.
    grouping : the grouping's name, kept in the result.
    """
    catalogue = list(catalogue)
    exp = item_exposure(recs, catalogue)
    g = groups.assign(item_id=groups["item_id"].astype(str))
    g = g[g["item_id"].isin(exp.index)]
    g = g.assign(exposure=g["item_id"].map(exp) * g["weight"])
    agg = g.groupby("group", sort=True).agg(items=("weight", "sum"), exposure=("exposure", "sum"))
    total = float(exp.sum())
    if targets is not None and len(targets):
        t = targets["item_id"].astype(str).value_counts()
        rel = (g["item_id"].map(t).fillna(0) * g["weight"]).groupby(g["group"]).sum() / float(len(targets))
    else:
        rel = pd.Series(np.nan, index=agg.index)
    rows = []
    for name, r in agg.iterrows():
        share = float(r["exposure"] / total) if total > 0 else float("nan")
        relevance = float(rel.get(name, 0.0))
        ratio = share / relevance if relevance > 0 else float("nan")
        rows.append(ExposureRow(str(name), float(r["items"]), float(r["exposure"] / r["items"]), share, relevance, ratio))
    left_out = tuple(r.group for r in rows if r.group.lower() in NOT_A_GROUP or r.items <= 0)
    counted = [r for r in rows if r.group not in left_out]
    means = np.array([r.exposure for r in counted])
    ratios = np.array([r.exposure_to_relevance for r in counted if not np.isnan(r.exposure_to_relevance)])
    parity = float(means.min() / means.max()) if means.size and means.max() > 0 else float("nan")
    treatment = float(ratios.min() / ratios.max()) if ratios.size and ratios.max() > 0 else float("nan")
    return ExposureTable(grouping, rows, parity, treatment, left_out)
