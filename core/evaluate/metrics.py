"""Next-item accuracy metrics from target ranks (../shared/METRICS.md §1).

A rank is 1-based: 1 means the held-out target was the top-scored item of the full catalogue ranking (items the
user already had in the input excluded, never the target itself).
"""

from __future__ import annotations

import numpy as np

__all__ = ["METRIC_KEYS", "hit_rate", "ndcg", "mrr", "coverage", "summarize"]

HR_KS = (1, 5, 10, 20)
NDCG_KS = (5, 10, 20)
METRIC_KEYS: tuple[str, ...] = (
    *(f"HR@{k}" for k in HR_KS),
    *(f"NDCG@{k}" for k in NDCG_KS),
    "MRR",
    "coverage@10",
)


def _ranks(ranks: np.ndarray) -> np.ndarray:
    r = np.asarray(ranks, dtype=np.float64)
    if r.size and (r < 1).any():
        raise ValueError("ranks are 1-based and must be >= 1")
    return r


def hit_rate(ranks: np.ndarray, k: int) -> float:
    """HR@K: share of users whose target ranks within the top K (0.0 for no users)."""
    r = _ranks(ranks)
    return float((r <= k).mean()) if r.size else 0.0


def ndcg(ranks: np.ndarray, k: int) -> float:
    """NDCG@K with one relevant item: mean of 1/log2(rank + 1) where rank <= K, else 0."""
    r = _ranks(ranks)
    if not r.size:
        return 0.0
    return float(np.where(r <= k, 1.0 / np.log2(r + 1.0), 0.0).mean())


def mrr(ranks: np.ndarray) -> float:
    """Mean reciprocal rank over the full ranking (no cut-off)."""
    r = _ranks(ranks)
    return float((1.0 / r).mean()) if r.size else 0.0


def coverage(top: np.ndarray, n_items: int) -> float:
    """Coverage@K: distinct items in all top-K lists [U,K] (model indices, 0 = empty slot) / catalogue size."""
    top = np.asarray(top)
    if n_items <= 0 or top.size == 0:
        return 0.0
    distinct = np.unique(top[top > 0])
    return float(len(distinct) / n_items)


def summarize(ranks: np.ndarray, top10: np.ndarray, n_items: int) -> dict[str, float]:
    """Every metric of `METRIC_KEYS` for one set of ranks and the matching top-10 lists."""
    out = {f"HR@{k}": hit_rate(ranks, k) for k in HR_KS}
    out.update({f"NDCG@{k}": ndcg(ranks, k) for k in NDCG_KS})
    out["MRR"] = mrr(ranks)
    out["coverage@10"] = coverage(np.asarray(top10)[:, :10] if np.asarray(top10).ndim == 2 else top10, n_items)
    return out
