"""The calibrated forecast and the long/short decomposition inside trajectories, checkpoints and evaluate."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd

from core.checkpoint import load_checkpoint
from core.sequences import load_sequences
from core.store import connect_read
from core.trajectory import TrajectoryAnalyzer
from core.trajectory.forecast import InterestForecast


def _first_history(db, loaded, n: int = 40):
    with connect_read(db) as con:
        seqs = load_sequences(con, loaded.vocab)
    r = int(np.argmax(seqs.lengths >= n))
    h = seqs.history(r, 0, n)
    steps = pd.DataFrame({"index": np.arange(len(h)), "time": h.ts.astype("datetime64[s]"), "item": "", "title": None})
    return h, steps


def test_checkpoint_keeps_the_forecast_and_trajectories_use_it(trained_model_dir, synthetic_db):
    loaded = load_checkpoint(trained_model_dir)
    section = loaded.card["interest"]
    assert section["forecast_params"]["kind"] in ("model", "temperature", "mixture", "bocpd", "bocpd_mixture", "bocpd_product",
                                                  "stacked")
    assert len(section["reliability"]) == 10 and section["forecast_params"]["valid"]["targets"] > 0
    assert section["forecast"]["log_loss"] > 0  # the test scores sit beside the parameters
    an = TrajectoryAnalyzer(loaded)
    assert an.forecast == InterestForecast.from_dict(section["forecast_params"])  # JSON round trip is exact
    h, steps = _first_history(synthetic_db, loaded)
    tr = an.build("u", h, steps)
    np.testing.assert_allclose(tr.distribution, an.forecast.apply(tr.model_distribution, tr.events, h.ts))
    np.testing.assert_allclose(tr.distribution.sum(axis=1), 1.0)
    np.testing.assert_allclose(tr.gate, 1.0 - tr.short_weight)
    d = tr.to_dict()
    assert len(d["short_weight"]) == len(h) and d["reading"].startswith("Recent events weigh")
    # a changed future leaves every earlier forecast, profile and share as it was (causality)
    h2 = type(h)(h.items.copy(), h.gaps, h.event_types, h.context, h.ts)
    h2.items[30:] = h.items[0]
    tr2 = an.build("u", h2, steps)
    for name in ("distribution", "long_term", "short_term", "short_weight"):
        np.testing.assert_allclose(getattr(tr2, name)[:30], getattr(tr, name)[:30], atol=1e-6)
    assert not np.allclose(tr2.distribution[30:], tr.distribution[30:])


def test_models_without_a_forecast_still_load_and_show_the_raw_marginal(untrained_model_dir, synthetic_db):
    loaded = load_checkpoint(untrained_model_dir)
    an = TrajectoryAnalyzer(loaded)
    assert an.forecast is None
    h, steps = _first_history(synthetic_db, loaded)
    tr = an.build("u", h, steps)
    np.testing.assert_array_equal(tr.distribution, tr.model_distribution)


def test_evaluate_reports_interest_and_stores_the_reliability_diagram(trained_model_dir, synthetic_db, tmp_path):
    from core.evaluate import evaluate_model

    model = tmp_path / "m"
    shutil.copytree(trained_model_dir, model)
    card = load_checkpoint(model).card
    card.pop("interest")
    (model / "metrics.json").write_text(__import__("json").dumps(card))  # a model trained before the forecast
    from core.trajectory.interest import evaluate_interest

    result = evaluate_model(synthetic_db, model, device="cpu", interest=evaluate_interest)
    it = result.to_dict()["interest"]
    for name in ("forecast", "histogram", "model_marginal"):
        assert set(it[name]) >= {"log_loss", "brier", "ece", "ece_top", "entropy", "entropy_gap", "targets"}
    assert it["planted"]["tv"]["forecast"] > 0 and "at_switches" in it["planted"]["short_weight"]
    stored = load_checkpoint(model).card["interest"]
    assert stored["forecast_params"]["kind"] == it["forecast_kind"] and len(stored["reliability"]) == 10
