"""Change-point scoring against planted truth, by hand."""

import pytest

from core.trajectory import change_point_scores, match_change_points


def test_matching_within_tolerance_uses_each_detection_once():
    assert match_change_points([12, 30], [10, 40], tolerance=5) == 1
    assert match_change_points([10], [8, 12], tolerance=5) == 1  # one detection cannot match two changes
    assert match_change_points([4, 16], [10], tolerance=5) == 0
    assert match_change_points([], [10]) == 0


def test_scores_are_micro_averaged_over_users():
    # user 1: planted 20, 50; detected 22, 35 -> 1 match; user 2: nothing planted, detected 15 -> false alarm
    s = change_point_scores([[22, 35], [15]], [[20, 50], []], tolerance=5)
    assert (s.matched, s.detected, s.planted) == (1, 3, 2)
    assert s.precision == pytest.approx(1 / 3) and s.recall == pytest.approx(1 / 2)
    assert s.f1 == pytest.approx(2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2))
    assert change_point_scores([[]], [[]]).f1 == 1.0
