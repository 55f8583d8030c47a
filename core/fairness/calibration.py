"""Miscalibration of top-K lists against users' own category mix (Steck, RecSys 2018).

C_KL(u) = Σ_g p(g|u) · ln(p(g|u) / q̃(g|u)), q̃ = (1 − α)·q + α·p, α = 0.01, where p is the category
distribution of u's history and q that of u's top-K list; each item's category weights sum to 1
(split equally). The direction is KL(history ‖ recommendations): categories the user likes but the list
lacks are penalised (up to ln(1/α) ≈ 4.6 nats when the list misses all of them); extra categories in the
list only dilute q. The reverse, KL(recommendations ‖ history), is a different (and wrong) quantity.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse

__all__ = ["ALPHA", "item_category_weights", "category_distribution", "miscalibration"]

ALPHA = 0.01
_CHUNK_ROWS = 1 << 20  # events per chunk in `category_distribution`


def item_category_weights(item_categories: pd.Series) -> pd.DataFrame:
    """(item_id, category, weight) with weights 1/n over an item's n distinct categories."""
    rows = []
    for item, cats in item_categories.items():
        if cats is None or len(cats) == 0:
            continue
        names = list(dict.fromkeys(str(c) for c in cats))
        rows += [(str(item), c, 1.0 / len(names)) for c in names]
    return pd.DataFrame(rows, columns=["item_id", "category", "weight"])


def category_distribution(events: pd.DataFrame, weights: pd.DataFrame) -> pd.DataFrame:
    """Per-user category distribution of the items in `events` (user_id, item_id; one row per event).

    Items without categories are left out. Returns (user_id, category, share) with shares summing to 1
    per user, sorted by user then category.

    Computed as a sparse (users × items) count matrix times the (items × categories) weight matrix, so a
    10M-event log costs a few integer arrays instead of a 10M-row joined table of strings.
    """
    cols = ["user_id", "category", "share"]
    if events.empty or weights.empty:
        return pd.DataFrame({c: pd.Series(dtype=object if c != "share" else float) for c in cols})
    item_index = pd.Index(pd.unique(weights["item_id"].astype(str)))
    cat_index = pd.Index(pd.unique(weights["category"].astype(str)))
    w = sparse.csr_matrix(
        (weights["weight"].to_numpy(float), (item_index.get_indexer(weights["item_id"].astype(str)),
                                              cat_index.get_indexer(weights["category"].astype(str)))),
        shape=(len(item_index), len(cat_index)),
    )
    # In chunks of rows, each factorised on its own (integer codes, never one Python string per event): a
    # 10M-event log then costs a few chunk-sized arrays at a time instead of several 10M-long ones.
    user_col, item_col = events["user_id"].astype(str), events["item_id"].astype(str)
    names, rows, cat_codes, vals = [], [], [], []
    offset = 0
    for a in range(0, len(events), _CHUNK_ROWS):
        i_codes, i_names = pd.factorize(item_col.iloc[a : a + _CHUNK_ROWS])
        items = item_index.get_indexer(pd.Index(i_names, dtype=object))[i_codes]
        known = items >= 0
        u_codes, u_names = pd.factorize(user_col.iloc[a : a + _CHUNK_ROWS])
        counts = sparse.csr_matrix(
            (np.ones(int(known.sum()), np.float64), (u_codes[known].astype(np.int32), items[known].astype(np.int32))),
            shape=(len(u_names), len(item_index)),
        )  # duplicates are summed
        part = (counts @ w).tocoo()  # [chunk users, categories], summed weights
        names.append(np.asarray(u_names, dtype=object))
        rows.append(part.row.astype(np.int64) + offset)
        cat_codes.append(part.col)
        vals.append(part.data)
        offset += len(u_names)
    # a user whose rows span two chunks has an entry in each: map chunk-local users to one index and sum
    local = np.concatenate(names) if names else np.zeros(0, object)
    u_index, users = pd.factorize(pd.Series(local, dtype=object))
    per_user = sparse.csr_matrix(
        (np.concatenate(vals), (u_index[np.concatenate(rows)], np.concatenate(cat_codes))), shape=(len(users), len(cat_index))
    ).tocoo()  # duplicates are summed
    totals = np.asarray(per_user.sum(axis=1)).ravel()
    keep = per_user.data > 0
    out = pd.DataFrame(
        {
            "user_id": np.asarray(users, dtype=object)[per_user.row[keep]],
            "category": np.asarray(cat_index, dtype=object)[per_user.col[keep]],
            "share": per_user.data[keep] / totals[per_user.row[keep]],
        }
    )
    return out.sort_values(["user_id", "category"], kind="stable").reset_index(drop=True)


def miscalibration(
    histories: pd.DataFrame,
    recs: pd.DataFrame,
    item_categories: pd.Series,
    alpha: float = ALPHA,
    weights: pd.DataFrame | None = None,
) -> pd.Series:
    """C_KL(u) for every user with a top-K list, in nats, indexed by user_id.

    NaN for users whose history has no categorised item (p undefined). A list with no categorised item
    has q = 0, so q̃ = α·p and C_KL = ln(1/α). `weights` (from `item_category_weights(item_categories)`)
    saves recomputing them when called repeatedly.
    """
    w = item_category_weights(item_categories) if weights is None else weights
    users = pd.Index(pd.unique(recs["user_id"].astype(str)), name="user_id")
    p = category_distribution(histories, w).rename(columns={"share": "p"})
    q = category_distribution(recs, w).rename(columns={"share": "q"})
    p = p[p["user_id"].isin(users)]
    both = p.merge(q, on=["user_id", "category"], how="left").fillna({"q": 0.0})
    q_tilde = (1.0 - alpha) * both["q"] + alpha * both["p"]
    both["term"] = both["p"] * np.log(both["p"] / q_tilde)
    return both.groupby("user_id")["term"].sum().reindex(users).rename("C_KL")
