"""Change points in an interest trajectory, found with `ruptures` (PELT), and what changed at each.

The signal is an [n, C] series, one row per step: by default the categories of the events themselves (each
event's item→category weights; see `TrajectoryConfig.change_signal`), or one of the trajectories. On the
synthetic benchmark the events find planted switches best: a trajectory is a causal, smoothed estimate that
turns a few events after a switch, while the events show the switch where it happened. PELT with the l2 cost finds
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

from core.trajectory.measures import js_divergence

__all__ = [
    "ChangePoint",
    "PENALTY_SCALE",
    "MIN_DIVERGENCE",
    "auto_penalty",
    "noise_variance",
    "detect_change_points",
    "describe_changes",
]

log = logging.getLogger(__name__)

# Multiplier of the BIC-style penalty s²·log(n) (see `auto_penalty`; BIC itself is about 1). Chosen together with
# MIN_DIVERGENCE for the best F1 on the "tune" half of the synthetic users (events signal, segments of at least
# 10 events); the benchmark reports F1 on the other half (bench/trajectory.py).
PENALTY_SCALE = 0.6

# Smallest JS divergence (bits) between the category mix before and after a reported change; chosen with
# PENALTY_SCALE on the same "tune" users. For scale: JS((1, 0), (½, ½)) = 0.31 bits, i.e. going from one
# category alone to sharing it half-and-half with a new one.
MIN_DIVERGENCE = 0.3


@dataclass(frozen=True)
class ChangePoint:
    """One change: the first step under the new interest, and the dominant interests on either side."""

    step: int  # index of the first step of the new segment
    time: np.datetime64 | None  # time of that step's event (UTC)
    before: list[tuple[str, float]]  # top categories (name, mean share) from the previous change to this one
    after: list[tuple[str, float]]  # top categories from this change to the next
    divergence: float  # JS divergence (bits) between the mean interest before and after
    observed_divergence: float | None = None  # JS (bits) between the categories of the events before and after


def noise_variance(signal: np.ndarray) -> float:
    """Total noise variance of an [n, C] signal, summed over coordinates, from successive differences:
    ½ · mean_t ‖x_t − x_{t−1}‖² (von Neumann). For independent noise around a piecewise-constant mean it is
    unbiased away from the few change points; for the one-hot categories of events it is the multinomial
    variance 1 − Σ_c p(c)²."""
    x = np.asarray(signal, dtype=np.float64)
    if len(x) < 2:
        return 0.0
    return float(0.5 * np.mean(np.sum(np.diff(x, axis=0) ** 2, axis=1)))


def auto_penalty(signal: np.ndarray, scale: float = PENALTY_SCALE) -> float:
    """The PELT penalty for an [n, C] signal: scale · s² · log(n), with s² from `noise_variance`.

    Why this form: splitting a stretch with no change lowers the l2 cost by noise alone, by about s² times a
    chi-square maximised over the ~n candidate positions, which grows like s²·log n; BIC charges log n per
    parameter in units of the noise variance. A change is kept only if it explains more than `scale` times that
    much squared error. The floor of 1e-6 keeps a flat signal from being split on rounding noise.
    """
    x = np.asarray(signal, dtype=np.float64)
    return float(scale * max(noise_variance(x), 1e-6) * np.log(max(len(x), 2)))


def detect_change_points(
    signal: np.ndarray,
    penalty: float | None = None,
    min_size: int = 10,
    scale: float = PENALTY_SCALE,
    min_divergence: float = MIN_DIVERGENCE,
) -> list[int]:
    """Steps where a new segment starts, ascending; empty for a short or steady signal.

    PELT (l2 cost) segments the signal; then, while some change separates two neighbouring segments whose mean
    rows (normalised to distributions) are closer than `min_divergence` bits of JS divergence, the closest such
    change is dropped and its segments merged. So every change reported is both supported by the data (the
    penalty) and large enough to matter (the minimum divergence).

    Parameters
    ----------
    signal
        [n, C] one non-negative row per step (a distribution, or an event's category weights).
    penalty
        PELT penalty; None = `auto_penalty(signal, scale)`.
    min_size
        Fewest steps in a segment (also between a change and either end).
    min_divergence
        Smallest JS divergence (bits) between the mean rows of the segments either side of a change; 0 keeps all.
    """
    x = np.asarray(signal, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2 * min_size:
        return []
    pen = auto_penalty(x, scale) if penalty is None else float(penalty)
    import ruptures as rpt  # imported here: it takes ~1 s, which every CLI command would otherwise pay at start

    algo = rpt.KernelCPD(kernel="linear", min_size=min_size).fit(x)
    cps = [int(b) for b in algo.predict(pen=pen)[:-1]]  # the last breakpoint is always n
    while cps and min_divergence > 0:
        div = _divergences(x, cps)
        k = int(np.argmin(div))
        if div[k] >= min_divergence:
            break
        cps.pop(k)
    return cps


def _divergences(x: np.ndarray, cps: list[int]) -> np.ndarray:
    """JS divergence between the normalised mean rows of the two segments either side of each change."""
    bounds = [0, *cps, len(x)]
    means = np.stack([x[a:b].mean(axis=0) for a, b in zip(bounds[:-1], bounds[1:], strict=True)])  # [S,C]
    total = means.sum(axis=1, keepdims=True)
    means = np.where(total > 0, means / np.where(total > 0, total, 1.0), 1.0 / x.shape[1])
    return js_divergence(means[:-1], means[1:])


def describe_changes(
    dist: np.ndarray,
    change_points: list[int],
    categories: list[str],
    times: np.ndarray | None = None,
    top: int = 3,
    events: np.ndarray | None = None,
) -> list[ChangePoint]:
    """For each change point: the dominant interests (`dist`, [n, C]) in the segment before and after it, and,
    with `events` ([n, C] category weights of each event), how far apart the observed categories are."""
    bounds = [0, *change_points, len(dist)]
    means = [dist[a:b].mean(axis=0) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    observed = _divergences(events, change_points) if events is not None and change_points else None

    def ranked(m: np.ndarray) -> list[tuple[str, float]]:
        idx = np.argsort(-m, kind="stable")[:top]
        return [(categories[i], float(m[i])) for i in idx]

    out = []
    for k, cp in enumerate(change_points):
        out.append(
            ChangePoint(
                step=cp,
                time=None if times is None else np.datetime64(times[cp], "s"),
                before=ranked(means[k]),
                after=ranked(means[k + 1]),
                divergence=float(js_divergence(means[k], means[k + 1])),
                observed_divergence=None if observed is None else float(observed[k]),
            )
        )
    return out
