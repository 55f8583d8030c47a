"""The model card's reliability diagram (dashboard.components.data_panels.reliability_figure)."""

from __future__ import annotations

from dashboard.components.data_panels import reliability_figure


def test_reliability_figure_draws_the_non_empty_bins_beside_the_diagonal():
    interest = {
        "forecast": {"ece": 0.012, "log_loss": 1.5},
        "reliability": [
            {"lo": 0.0, "hi": 0.1, "count": 90, "forecast": 0.03, "observed": 0.04},
            {"lo": 0.1, "hi": 0.2, "count": 0, "forecast": None, "observed": None},
            {"lo": 0.5, "hi": 0.6, "count": 10, "forecast": 0.55, "observed": 0.5},
        ],
    }
    fig = reliability_figure(interest)
    diagonal, curve = fig.data
    assert list(diagonal.x) == [0, 1] and list(diagonal.y) == [0, 1]
    assert list(curve.x) == [0.03, 0.55] and list(curve.y) == [0.04, 0.5] and list(curve.customdata) == [90, 10]
    assert "ECE 0.012" in fig.layout.title.text
