"""Change points in an interest trajectory, found with `ruptures` (PELT), and what changed at each.

The signal is the trajectory itself, [n, C] (one interest distribution per step). PELT with the l2 cost finds
the segmentation into stretches of constant mean interest that minimises the within-segment squared error plus a
penalty per change point. It runs as `ruptures.KernelCPD(kernel="linear")`, ruptures' compiled PELT, whose
linear-kernel cost is exactly the l2 cost (Σ‖x_t‖² − ‖Σx_t‖²/n per segment) and gives the same breakpoints as
`ruptures.Pelt(model="l2", jump=1)`, about a thousand times faster. The penalty is scaled to the noise of the signal so the same setting works for a
jittery trajectory and a smooth one (see `auto_penalty`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import ruptures as rpt

from core.trajectory.measures import js_divergence

__all__ = ["ChangePoint", "PENALTY_SCALE", "auto_penalty", "noise_variance", "detect_change_points", "describe_changes"]

log = logging.getLogger(__name__)

# Multiplier of the BIC-style penalty σ²·C·log(n) (see `auto_penalty`); the default was chosen on synthetic
# users of a different seed from those the benchmark reports on (bench/trajectory.py).
PENALTY_SCALE = 2.0


@dataclass(frozen=True)
class ChangePoint:
    """One change: the first step under the new interest, and the dominant interests on either side."""

    step: int  # index of the first step of the new segment
    time: np.datetime64 | None  # time of that step's event (UTC)
    before: list[tuple[str, float]]  # top categories (name, mean share) from the previous change to this one
    after: list[tuple[str, float]]  # top categories from this change to the next
    divergence: float  # JS divergence (bits) between the mean interest before and after


def noise_variance(signal: np.ndarray) -> float:
    """Per-coordinate noise variance of a piecewise-constant signal, from its first differences.

    Uses the median absolute deviation of the differences (robust to the few large jumps at change points):
    σ = 1.4826 · MAD(diff) / √2, pooled over coordinates.
    """
    x = np.asarray(signal, dtype=np.float64)
    if len(x) < 3:
        return 0.0
    d = np.diff(x, axis=0)
    mad = np.median(np.abs(d - np.median(d, axis=0)), axis=0)  # [C]
    sigma = 1.4826 * mad / np.sqrt(2.0)
    return float(np.mean(sigma**2))


def auto_penalty(signal: np.ndarray, scale: float = PENALTY_SCALE) -> float:
    """The PELT penalty for an [n, C] signal: scale · σ² · C · log(n), with σ² from `noise_variance`.

    Why this form: under Gaussian noise of variance σ² per coordinate, a spurious split of a constant stretch
    lowers the l2 cost by about σ² times a χ² with C degrees of freedom, maximised over ~n positions, which grows
    like σ²·(C + 2·log n); BIC charges σ²·(C+1)·log n per change. A floor of 1e-4 per coordinate keeps a
    perfectly flat signal from being split on rounding noise.
    """
    x = np.asarray(signal, dtype=np.float64)
    n, c = x.shape
    sigma2 = max(noise_variance(x), 1e-4)
    return float(scale * sigma2 * c * np.log(max(n, 2)))


def detect_change_points(
    signal: np.ndarray, penalty: float | None = None, min_size: int = 5, scale: float = PENALTY_SCALE
) -> list[int]:
    """Steps where a new segment starts (PELT, l2 cost), ascending; empty for a short or steady signal.

    Parameters
    ----------
    signal
        [n, C] one distribution per step.
    penalty
        PELT penalty; None = `auto_penalty(signal, scale)`.
    min_size
        Fewest steps in a segment (also between a change and either end).
    """
    x = np.asarray(signal, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2 * min_size:
        return []
    pen = auto_penalty(x, scale) if penalty is None else float(penalty)
    algo = rpt.KernelCPD(kernel="linear", min_size=min_size).fit(x)
    return [int(b) for b in algo.predict(pen=pen)[:-1]]  # the last breakpoint is always n


def describe_changes(
    dist: np.ndarray,
    change_points: list[int],
    categories: list[str],
    times: np.ndarray | None = None,
    top: int = 3,
) -> list[ChangePoint]:
    """For each change point: the dominant interests in the segment before and after it."""
    bounds = [0, *change_points, len(dist)]
    means = [dist[a:b].mean(axis=0) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]

    def ranked(m: np.ndarray) -> list[tuple[str, float]]:
        idx = np.argsort(-m, kind="stable")[:top]
        return [(categories[i], float(m[i])) for i in idx]

    out = []
    for k, cp in enumerate(change_points):
        t = None if times is None else np.datetime64(times[cp], "s")
        div = float(js_divergence(means[k], means[k + 1]))
        out.append(ChangePoint(step=cp, time=t, before=ranked(means[k]), after=ranked(means[k + 1]), divergence=div))
    return out
