"""Scoring trajectories against planted truth (METRICS.md §2): total-variation error and change-point
precision / recall / F1 with a tolerance in events."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["ChangePointScore", "match_change_points", "change_point_scores"]


@dataclass(frozen=True)
class ChangePointScore:
    """Micro-averaged over users: every planted and every detected change point counts once."""

    precision: float  # matched detections / detections (1.0 when nothing was detected)
    recall: float  # matched planted changes / planted changes (1.0 when nothing was planted)
    f1: float
    matched: int
    detected: int
    planted: int


def match_change_points(detected: Sequence[int], planted: Sequence[int], tolerance: int = 5) -> int:
    """How many planted changes have their own detection within ±tolerance steps (each detection used once).

    Planted changes are taken in order; each takes the nearest unused detection within the tolerance (ties go
    to the earlier detection). With planted changes at least 2·tolerance + 1 apart this is the maximum matching.
    """
    free = sorted(int(d) for d in detected)
    matched = 0
    for p in sorted(int(x) for x in planted):
        near = [d for d in free if abs(d - p) <= tolerance]
        if near:
            free.remove(min(near, key=lambda d: (abs(d - p), d)))
            matched += 1
    return matched


def change_point_scores(
    detected: Sequence[Sequence[int]], planted: Sequence[Sequence[int]], tolerance: int = 5
) -> ChangePointScore:
    """Precision, recall and F1 over many users (one list of detected and of planted steps per user)."""
    if len(detected) != len(planted):
        raise ValueError("detected and planted must have one list per user each")
    matched = sum(match_change_points(d, p, tolerance) for d, p in zip(detected, planted, strict=True))
    n_det = sum(len(d) for d in detected)
    n_pl = sum(len(p) for p in planted)
    precision = matched / n_det if n_det else 1.0
    recall = matched / n_pl if n_pl else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return ChangePointScore(precision, recall, f1, matched, n_det, n_pl)
