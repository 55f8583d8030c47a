"""Oracle figures for the interest section of bench/trajectory.py (`--interest`)."""

from __future__ import annotations

import numpy as np


def split_oracle(truth, vocab) -> dict:
    """What a forecaster that knows every step's planted mixture q exactly, and forecasts the split target it is
    scored on (q pushed through the item→category split, `projection`), gets on the literal comparison: its TV
    against q and its entropy against q's. On a multi-category log this bounds how close to the truth's entropy
    any forecast of the split target can be (synthetic generator logs only)."""
    from bench.trajectory import projection

    order, M = projection(truth, vocab)
    qs = [truth.user_mixtures(str(u))[:, order][1:] for u in truth.user_ids]
    q = np.concatenate(qs)
    p = q @ M

    def ent(x: np.ndarray) -> float:
        return float(-(x * np.log(np.maximum(x, 1e-12))).sum(axis=1).mean())

    return {"steps": int(len(q)), "tv": float(0.5 * np.abs(p - q).sum(axis=1).mean()), "entropy": ent(p),
            "entropy_truth": ent(q), "entropy_ratio": ent(p) / ent(q)}
