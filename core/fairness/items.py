"""Item-side bias of top-K lists: coverage, Gini, ARP, APLT, popularity lift and novelty.

Notation (``../shared/METRICS.md`` §3): L_u is user u's top-K list, pop(i) the training interactions of
item i, c_i how often item i appears across all lists, I the whole catalogue. All functions are pure.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from core.errors import UserInputError

__all__ = [
    "check_recs",
    "recommendation_counts",
    "coverage",
    "gini",
    "arp",
    "short_head",
    "aplt",
    "history_popularity",
    "popularity_lift",
    "novelty",
    "item_summary",
]

_CHUNK_ROWS = 1 << 20  # history rows per chunk in `history_popularity`


def check_recs(recs: pd.DataFrame) -> pd.DataFrame:
    """Validate a top-K table (user_id, rank 1..K, item_id) and return it with string ids, sorted."""
    missing = [c for c in ("user_id", "rank", "item_id") if c not in recs.columns]
    if missing:
        raise UserInputError(f"The recommendations table lacks the column(s) {', '.join(missing)}.")
    out = recs[["user_id", "rank", "item_id"]].copy()
    out["user_id"] = out["user_id"].astype(str)
    out["item_id"] = out["item_id"].astype(str)
    out["rank"] = pd.to_numeric(out["rank"], errors="coerce")
    rank = out["rank"].to_numpy(dtype=float)
    if np.isnan(rank).any() or (rank < 1).any() or (rank != np.floor(rank)).any():
        raise UserInputError("Recommendation ranks must be whole numbers starting at 1.")
    out["rank"] = rank.astype(np.int64)
    if out.duplicated(["user_id", "rank"]).any():
        raise UserInputError("The recommendations table has two items at the same rank for one user.")
    if out.duplicated(["user_id", "item_id"]).any():
        raise UserInputError("The recommendations table lists the same item twice for one user.")
    return out.sort_values(["user_id", "rank"], kind="stable").reset_index(drop=True)


def recommendation_counts(recs: pd.DataFrame, catalogue: Iterable[str]) -> pd.Series:
    """c_i for every catalogue item (0 for items never recommended), indexed by item id.

    Raises UserInputError if a recommended item is not in the catalogue.
    """
    cat = pd.Index(pd.unique(pd.Series(list(catalogue), dtype=object).astype(str)))
    counts = recs["item_id"].astype(str).value_counts()
    unknown = counts.index.difference(cat)
    if len(unknown):
        raise UserInputError(f"Recommended item {unknown[0]!r} is not in the catalogue.")
    return counts.reindex(cat, fill_value=0).astype(np.int64)


def coverage(counts: pd.Series) -> float:
    """Catalogue coverage = |∪_u L_u| / |I|, from `recommendation_counts`."""
    return float((counts > 0).sum() / len(counts)) if len(counts) else float("nan")


def gini(counts: pd.Series | np.ndarray) -> float:
    """Gini@K = Σ_j (2j − n − 1)·c_(j) / ((n − 1)·Σ_j c_(j)), c sorted ascending, j = 1..n.

    `counts` must hold every catalogue item, zeros included (n = |I|): dropping never-recommended items
    understates inequality. 0 = every item recommended equally often, 1 = one item takes everything.
    """
    c = np.sort(np.asarray(counts, dtype=float))
    n, total = c.size, c.sum()
    if n < 2 or total == 0:
        return float("nan")
    j = np.arange(1, n + 1)
    return float(np.sum((2 * j - n - 1) * c) / ((n - 1) * total))


def _pop_of(items: pd.Series, pop: pd.Series) -> np.ndarray:
    """pop(i) of each row's item (0 for items without one), looked up once per distinct item."""
    codes, uniques = pd.factorize(items)
    per_item = pd.Series(uniques).map(pop).fillna(0).to_numpy(dtype=float)
    return per_item[codes] if len(codes) else np.zeros(0)


def arp(recs: pd.DataFrame, pop: pd.Series) -> float:
    """ARP@K = mean_u mean_{i∈L_u} pop(i) (items unseen in training have pop 0)."""
    if recs.empty:
        return float("nan")
    per_user = pd.Series(_pop_of(recs["item_id"], pop)).groupby(recs["user_id"].to_numpy()).mean()
    return float(per_user.mean())


def short_head(pop: pd.Series, share: float = 0.8) -> set[str]:
    """The most popular items that together hold `share` of all training interactions.

    Items are taken in order of popularity (ties by item id) until their cumulative share first reaches
    `share`; the item that crosses the threshold belongs to the head. Everything else is the long tail.
    """
    p = pop[pop > 0].astype(float)
    if p.empty:
        return set()
    order = pd.DataFrame({"item": p.index.astype(str), "pop": p.to_numpy()})
    order = order.sort_values(["pop", "item"], ascending=[False, True], kind="stable")
    cum = order["pop"].cumsum().to_numpy() / order["pop"].sum()
    n_head = int(np.searchsorted(cum, share - 1e-12) + 1)
    return set(order["item"].iloc[:n_head])


def aplt(recs: pd.DataFrame, head: set[str], k: int) -> float:
    """APLT@K = (1/(|U|·K)) Σ_u |L_u ∩ long tail| (Abdollahpouri et al., RecSys 2017)."""
    users = recs["user_id"].nunique()
    if users == 0:
        return float("nan")
    tail = ~recs["item_id"].isin(head)
    return float(tail.sum() / (users * k))


def history_popularity(histories: pd.DataFrame, pop: pd.Series, users: Iterable[str] | None = None) -> float:
    """mean_u mean_{events e of u's history} pop(item of e): the popularity level users chose themselves."""
    # integer codes throughout (a 10M-event log as Python strings cost ~1 GB), in chunks of rows so that only
    # chunk-sized arrays exist at a time; a user whose rows span chunks is summed over them at the end
    keep_users = None if users is None else pd.Index([str(u) for u in users])
    user_col, item_col = histories["user_id"].astype(str), histories["item_id"].astype(str)
    names, sums, counts = [], [], []
    for a in range(0, len(histories), _CHUNK_ROWS):
        codes, chunk_users = pd.factorize(user_col.iloc[a : a + _CHUNK_ROWS])
        values = _pop_of(item_col.iloc[a : a + _CHUNK_ROWS], pop)
        if keep_users is not None:
            keep = pd.Index(chunk_users).isin(keep_users)[codes]
            codes, values = codes[keep], values[keep]
        names.append(np.asarray(chunk_users, dtype=object))
        sums.append(np.bincount(codes, weights=values, minlength=len(chunk_users)))
        counts.append(np.bincount(codes, minlength=len(chunk_users)))
    if not names:
        return float("nan")
    per = pd.DataFrame({"s": np.concatenate(sums), "n": np.concatenate(counts)}).groupby(np.concatenate(names)).sum()
    per = per[per["n"] > 0]
    if per.empty:
        return float("nan")
    return float((per["s"] / per["n"]).mean())


def _listed_with_history(recs: pd.DataFrame, histories: pd.DataFrame) -> pd.Index:
    """Users with a top-K list and at least one history event."""
    return pd.Index(recs["user_id"].unique()).intersection(pd.Index(histories["user_id"].unique()))


def popularity_lift(recs: pd.DataFrame, histories: pd.DataFrame, pop: pd.Series) -> float:
    """(ARP of the recommendations − mean popularity of the users' own histories) / the latter.

    Both means run over the same users: those with a top-K list and a non-empty history. Positive = the
    recommender pushes more popular items than these users chose themselves.
    """
    users = _listed_with_history(recs, histories)
    base = history_popularity(histories, pop, users)
    rec = arp(recs[recs["user_id"].isin(users)], pop)
    if not base or np.isnan(base):
        return float("nan")
    return float((rec - base) / base)


def novelty(recs: pd.DataFrame, pop: pd.Series) -> float:
    """Mean self-information of recommended items, in bits: mean_u mean_{i∈L_u} −log2(pop(i) / Σ_j pop(j)).

    An item never seen in training counts as seen once (pop = 1), so its novelty is finite and the
    highest possible. Higher = less popular, more surprising recommendations.
    """
    total = float(pop.clip(lower=0).sum())
    if recs.empty or total <= 0:
        return float("nan")
    p = np.maximum(_pop_of(recs["item_id"], pop), 1.0)
    info = pd.Series(-np.log2(p / total)).groupby(recs["user_id"].to_numpy()).mean()
    return float(info.mean())


def item_summary(
    recs: pd.DataFrame, pop: pd.Series, histories: pd.DataFrame, catalogue: Iterable[str], k: int
) -> dict[str, float]:
    """coverage, gini, arp, aplt, popularity_lift, history_popularity, novelty and the short-head size."""
    counts = recommendation_counts(recs, catalogue)
    head = short_head(pop)
    users = _listed_with_history(recs, histories)
    return {
        "users": int(recs["user_id"].nunique()),
        "catalogue": int(len(counts)),
        "coverage": coverage(counts),
        "gini": gini(counts),
        "arp": arp(recs, pop),
        "aplt": aplt(recs, head, k),
        "popularity_lift": popularity_lift(recs, histories, pop),
        "history_popularity": history_popularity(histories, pop, users),
        "novelty": novelty(recs, pop),
        "short_head_items": len(head),
    }
