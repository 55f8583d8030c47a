"""How much two top-K lists agree: Jaccard and rank-biased overlap (Webber, Moffat & Zobel 2010)."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["jaccard", "rbo"]


def jaccard(a: Sequence[str], b: Sequence[str]) -> float:
    """|A ∩ B| / |A ∪ B| of the two lists as sets; 1.0 when both are empty."""
    sa, sb = set(a), set(b)
    return len(sa & sb) / len(sa | sb) if sa | sb else 1.0


def rbo(a: Sequence[str], b: Sequence[str], p: float = 0.9) -> float:
    """Extrapolated rank-biased overlap of two rankings of equal depth k (Webber et al. 2010, eq. 32).

    RBO_ext = (X_k / k) · p^k + (1 − p) / p · Σ_{d=1..k} (X_d / d) · p^d, with X_d the overlap of the top d.
    Identical lists give 1, disjoint lists 0; agreement at the top weighs more (p = 0.9: the top 10 carry ~86%).
    Lists of different lengths are compared at the shorter depth.
    """
    k = min(len(a), len(b))
    if k == 0:
        return 1.0 if len(a) == len(b) else 0.0
    seen_a: set[str] = set()
    seen_b: set[str] = set()
    x = 0
    total = 0.0
    for d in range(1, k + 1):
        ia, ib = a[d - 1], b[d - 1]
        if ia == ib:
            x += 1
        else:
            x += (ia in seen_b) + (ib in seen_a)
        seen_a.add(ia)
        seen_b.add(ib)
        total += x / d * p**d
    return float(x / k * p**k + (1 - p) / p * total)
