"""Per-step interest of a model without states: category distributions of each prefix's full scores.

For an external model (`core.contract.RecModel` without the "states" capability) step i's interest is
`category_distribution(score(prefix up to i), w_cat)`: the prefix is the latest `max_len` known events up to and
including event i, scored exactly as recommendations score a history. That costs one scored row per event (no
overlapping windows to share). There is no gate and no long/short split (`StepOutputs.gate` is NaN, the
components None). Steps before any known event read the scores of the empty history.

Shapes: N prefixes, I items (+1 padding), C categories.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from core.contract import RecModel
from core.sequences import History, make_batch
from core.trajectory.measures import category_distribution

__all__ = ["score_steps"]


def score_steps(
    model: RecModel, histories: Sequence[History], item_categories: torch.Tensor, batch_size: int = 256
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(known event positions [k], distributions after each known event [k, C], empty-history distribution [C])
    per history, scoring every prefix with `model.score` in batches of at most `batch_size` rows."""
    L = model.max_len
    w_cat = item_categories.float()
    known = [np.flatnonzero(h.items > 0) for h in histories]
    prefixes: list[History] = [History.from_arrays([], [])]  # row 0: the empty history
    for h, k in zip(histories, known, strict=True):
        kh = History(h.items[k], h.gaps[k], h.event_types[k], h.context[k], h.ts[k])
        prefixes += [kh.slice(max(0, i + 1 - L), i + 1) for i in range(len(k))]
    n_ctx = histories[0].context.shape[1] if histories else 0
    dists = []
    with torch.inference_mode():
        for b0 in range(0, len(prefixes), batch_size):
            batch = make_batch(prefixes[b0 : b0 + batch_size], L, n_context=n_ctx)
            scores = model.score(batch).float().cpu()  # [n,I+1], column 0 -inf
            dists.append(category_distribution(scores, w_cat).cpu().numpy())
    flat = np.concatenate(dists) if dists else np.zeros((1, w_cat.shape[1]))
    out, at = [], 1
    for k in known:
        out.append((k, flat[at : at + len(k)], flat[0]))
        at += len(k)
    return out
