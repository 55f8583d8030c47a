"""Faithfulness: deletion curves of an explanation against attention, recency and chance (METRICS.md §4).

For each ordering of the explained players (events, and periods of older events in long windows: see
`core.explain.explainer`) — by SHAP value (largest first), by attention (rolled-out attention of the read-out step,
summed over a player's events, largest first), by recency (newest first) and at random — the players are removed
one by one (their events made absent by the model's masking rule) and after each removal the explained scalar and
the target's rank are recorded, for k = 0..n removed. All (n+1) masked variants of every ordering go through the
model in batched forward passes.

Normalised area: the scores are mapped to y_k = (s_k − s_n) / (s_0 − s_n), so every curve starts at 1 (nothing
removed, f(x)) and ends at 0 (everything removed, the base), and the area is the trapezoid rule over k/n in
[0, 1]. A lower area means the ordering finds the events that hold the score up sooner: a more faithful
ordering. When f(x) and the base are equal (|s_0 − s_n| ≤ 1e-9·max(1, |s_0|)) the area is undefined (NaN) and
left out of summaries. The random ordering's curve is the mean over `n_random` seeded draws.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from core.attention import attention_rollout
from core.contract import supports
from core.explain.explainer import HistoryExplainer, HistoryExplanation
from core.explain.game import HistoryGame
from core.explain.history import LabelledHistory

__all__ = [
    "ORDERINGS",
    "DeletionCurve",
    "DeletionCurves",
    "OrderingSummary",
    "FaithfulnessSummary",
    "attention_scores",
    "normalised_auc",
    "deletion_curves",
    "summarise_faithfulness",
]

ORDERINGS: tuple[str, ...] = ("shap", "attention", "recency", "random")


@dataclass
class DeletionCurve:
    """One ordering's deletion curve (index k = after removing the first k events of `order`)."""

    ordering: str
    order: np.ndarray  # [n] explained-event positions in removal order (random: the first draw)
    scores: np.ndarray  # [n+1] explained scalar (random: mean over draws)
    ranks: np.ndarray  # [n+1] target's rank, 1 = best (random: mean over draws)
    auc: float  # normalised area under the score curve; NaN when undefined

    @property
    def normalised(self) -> np.ndarray:
        """[n+1] the scores mapped to 1 (nothing removed) .. 0 (everything removed)."""
        s0, sn = self.scores[0], self.scores[-1]
        return (self.scores - sn) / (s0 - sn) if s0 != sn else np.full_like(self.scores, np.nan)


@dataclass
class DeletionCurves:
    """The deletion curves of one explanation, one per ordering in ORDERINGS."""

    user_id: str
    target: str
    curves: dict[str, DeletionCurve]
    attention: np.ndarray | None = None  # [n] rolled-out attention of the read-out step, per explained player

    @property
    def auc(self) -> dict[str, float]:
        return {name: c.auc for name, c in self.curves.items()}

    def frame(self) -> pd.DataFrame:
        """Long form for charts. Columns: ordering, k (events removed), score, normalised, rank."""
        parts = [
            pd.DataFrame(
                {"ordering": name, "k": np.arange(len(c.scores)), "score": c.scores, "normalised": c.normalised, "rank": c.ranks}
            )
            for name, c in self.curves.items()
        ]
        return pd.concat(parts, ignore_index=True)


def normalised_auc(scores: np.ndarray) -> float:
    """Area under y_k = (s_k − s_n)/(s_0 − s_n) over k/n in [0, 1] (trapezoid rule); NaN when s_0 ≈ s_n."""
    s = np.asarray(scores, dtype=np.float64)
    n = len(s) - 1
    if n < 1 or abs(s[0] - s[-1]) <= 1e-9 * max(1.0, abs(s[0])):
        return float("nan")
    y = (s - s[-1]) / (s[0] - s[-1])
    return float(((y[1:] + y[:-1]) / 2).sum() / n)


def attention_scores(game: HistoryGame) -> np.ndarray:
    """[n] rolled-out attention (`core.attention.attention_rollout`) of the read-out step over the game's players
    (a period of older events gets the sum over its events)."""
    with torch.inference_mode():
        enc = game.model.encode(game.window, return_attention=True)
    att = torch.stack([a[0] for a in enc.attention]).double().cpu()  # [L,H,T,T]
    per_event = attention_rollout(att)[-1, game.T - game.n_events :]  # [n_events]
    return np.bincount(game.owner, weights=per_event, minlength=game.n)


def _removal_masks(orders: Sequence[np.ndarray], n: int) -> np.ndarray:
    """Presence rows [len(orders)·(n+1), n]: for each order, k = 0..n of its first events removed."""
    masks = np.ones((len(orders), n + 1, n), dtype=bool)
    for o, order in enumerate(orders):
        for k in range(1, n + 1):
            masks[o, k:, order[k - 1]] = False
    return masks.reshape(-1, n)


def deletion_curves(
    explainer: HistoryExplainer,
    lh: LabelledHistory,
    expl: HistoryExplanation,
    n_random: int = 5,
    seed: int = 0,
    exclude_seen: bool = True,
) -> DeletionCurves:
    """Deletion curves by SHAP, attention, recency and random orderings for one explanation of `lh`.

    Ranks count every item except the padding and, with `exclude_seen`, the items already in the history (as
    recommendations do).
    """
    game = explainer.game_for(lh, expl)
    n = game.n
    rng = np.random.default_rng(seed)
    has_attention = supports(game.scorer, "attention")  # an external model has no weights to order by
    attention = attention_scores(game) if has_attention else None
    orders = {"shap": np.argsort(-expl.values, kind="stable")}
    if has_attention:
        orders["attention"] = np.argsort(-attention, kind="stable")
    orders["recency"] = np.arange(n)[::-1].copy()
    randoms = [rng.permutation(n) for _ in range(max(1, n_random))]
    all_orders = [*orders.values(), *randoms]
    masks = _removal_masks(all_orders, n)
    values, ranks = game.values_and_ranks(masks, lh.seen() if exclude_seen else None)
    scores = values.reshape(len(all_orders), n + 1)
    ranks = ranks.reshape(len(all_orders), n + 1).astype(np.float64)
    curves = {}
    for i, name in enumerate(orders):
        curves[name] = DeletionCurve(name, all_orders[i], scores[i], ranks[i], normalised_auc(scores[i]))
    r = slice(len(orders), None)
    mean_scores = scores[r].mean(axis=0)
    curves["random"] = DeletionCurve("random", randoms[0], mean_scores, ranks[r].mean(axis=0), normalised_auc(mean_scores))
    return DeletionCurves(expl.user_id, expl.target, curves, attention)


@dataclass(frozen=True)
class OrderingSummary:
    """The spread of one ordering's normalised deletion area over many (user, item) pairs."""

    mean: float
    std: float
    median: float
    q25: float
    q75: float
    n: int  # pairs with a defined area


@dataclass
class FaithfulnessSummary:
    """Deletion areas over many explanations: one line per ordering for the model card."""

    n_pairs: int
    orderings: dict[str, OrderingSummary]
    shap_beats_attention: float  # share of pairs where the SHAP ordering's area is lower than attention's
    max_additivity_error: float  # the largest |Σφ + base − f(x)| among the explanations

    def to_card(self) -> dict:
        """A JSON-ready dict for the model card (`metrics.json`)."""
        return {
            "pairs": self.n_pairs,
            "deletion_auc": {name: vars(s) for name, s in self.orderings.items()},
            "shap_beats_attention": self.shap_beats_attention,
            "max_additivity_error": self.max_additivity_error,
        }


def summarise_faithfulness(aucs: Sequence[Mapping[str, float]], additivity_errors: Sequence[float]) -> FaithfulnessSummary:
    """Mean, spread and quartiles of each ordering's deletion area over many explanations.

    `aucs[i]` is `DeletionCurves.auc` of explanation i and `additivity_errors[i]` its `additivity_error`.
    """
    table = np.array([[a[name] for name in ORDERINGS] for a in aucs], dtype=np.float64).reshape(-1, len(ORDERINGS))
    stats = {}
    for j, name in enumerate(ORDERINGS):
        v = table[:, j][np.isfinite(table[:, j])]
        if len(v):
            q25, med, q75 = np.quantile(v, [0.25, 0.5, 0.75])
            std = float(v.std(ddof=1)) if len(v) > 1 else 0.0
            stats[name] = OrderingSummary(float(v.mean()), std, float(med), float(q25), float(q75), len(v))
        else:
            stats[name] = OrderingSummary(*(float("nan"),) * 5, 0)
    both = np.isfinite(table[:, 0]) & np.isfinite(table[:, 1])
    beats = float((table[both, 0] < table[both, 1]).mean()) if both.any() else float("nan")
    err = float(max(additivity_errors)) if len(additivity_errors) else float("nan")
    return FaithfulnessSummary(len(table), stats, beats, err)
