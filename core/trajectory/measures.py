"""The numbers a trajectory is made of: category distributions, the decayed-histogram baseline, divergences.

Definitions follow ../shared/METRICS.md §2. Shapes: N steps, I items (+1 for padding), C categories.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.signal import lfilter

__all__ = [
    "category_distribution",
    "decayed_counts",
    "decayed_histogram",
    "js_divergence",
    "total_variation",
    "drift_series",
]

_EPS = 1e-12


def category_distribution(logits: torch.Tensor, item_categories: torch.Tensor) -> torch.Tensor:
    """p_t(c) = Σ_i softmax(s_t)_i · w(i, c): the interest over categories implied by next-item scores.

    Parameters
    ----------
    logits
        [N, I+1] item scores (index 0 is padding and is −inf, so it gets no probability).
    item_categories
        [I+1, C] item→category weights, each categorised item's row summing to 1 (`Vocab.category_weights`).

    Returns
    -------
    [N, C] float64. Rows sum to one: probability on items without a category is spread over the categorised
    ones in proportion, so the distribution answers "which categories, given that the next item has one".
    """
    # One fused softmax pass (padding, −inf, gets 0); its normaliser cancels in the renormalisation below.
    e = torch.softmax(logits.float(), dim=-1)  # [N,I+1]
    p = (e @ item_categories.float()).double()  # [N,C]
    total = p.sum(dim=-1, keepdim=True)
    c = p.shape[-1]
    return torch.where(total > _EPS, p / total.clamp(min=_EPS), torch.full_like(p, 1.0 / max(c, 1)))


def decayed_counts(event_weights: np.ndarray, half_life: float) -> np.ndarray:
    """Row k = Σ_{j≤k} 0.5^((k−j)/half_life) · w(item_j, ·), not normalised. [N, C] float64

    `half_life` counts events; `inf` gives plain cumulative counts.
    """
    w = np.asarray(event_weights, dtype=np.float64)
    if w.ndim != 2:
        raise ValueError("event_weights must be [N, C]")
    if not half_life > 0:
        raise ValueError("half_life must be positive")
    if len(w) == 0:
        return w.copy()
    decay = 0.5 ** (1.0 / half_life) if np.isfinite(half_life) else 1.0
    return lfilter([1.0], [1.0, -decay], w, axis=0)  # h_k = decay · h_{k−1} + w_k


def decayed_histogram(event_weights: np.ndarray, half_life: float) -> np.ndarray:
    """The empirical baseline: an exponentially decayed histogram of the categories of past events.

    Row k is Σ_{j≤k} 0.5^((k−j)/half_life) · w(item_j, ·), normalised to sum to one (uniform while no event
    so far has a category), i.e. the interest after the first k+1 events. `half_life` counts events.

    Parameters
    ----------
    event_weights
        [N, C] category weights of each event's item (rows sum to 1, or 0 for an uncategorised item).
    half_life
        Events after which an event's weight has halved; `inf` gives the plain cumulative histogram.
    """
    w = np.asarray(event_weights, dtype=np.float64)
    h = decayed_counts(w, half_life)
    if len(w) == 0:
        return h
    total = h.sum(axis=1, keepdims=True)
    uniform = np.full_like(h, 1.0 / w.shape[1])
    return np.where(total > _EPS, h / np.maximum(total, _EPS), uniform)


def js_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen–Shannon divergence in bits (base 2, so in [0, 1]) between distributions along the last axis."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    m = 0.5 * (p + q)

    def kl(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(a > 0, a * np.log2(a / np.where(b > 0, b, 1.0)), 0.0)
        return terms.sum(axis=-1)

    return np.clip(0.5 * kl(p, m) + 0.5 * kl(q, m), 0.0, 1.0)


def total_variation(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """½ Σ_c |p(c) − q(c)| along the last axis, in [0, 1]."""
    return 0.5 * np.abs(np.asarray(p, np.float64) - np.asarray(q, np.float64)).sum(axis=-1)


def drift_series(p: np.ndarray, window: int) -> np.ndarray:
    """Drift at every step: JS(p_t, p_{t−w}) in bits; steps t < w compare with the first step (drift_0 = 0).

    Parameters
    ----------
    p
        [N, C] the interest after each step.
    window
        w ≥ 1, how many steps back to compare with.
    """
    if window < 1:
        raise ValueError("window must be at least 1")
    p = np.asarray(p, dtype=np.float64)
    if len(p) == 0:
        return np.zeros(0)
    ref = np.maximum(np.arange(len(p)) - window, 0)
    return js_divergence(p, p[ref])
