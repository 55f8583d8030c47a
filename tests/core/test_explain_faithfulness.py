"""Deletion curves and their normalised areas: hand-computed areas and summaries, and curves on a real model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from core.checkpoint import load_checkpoint
from core.explain import (
    HistoryExplainer,
    deletion_curves,
    load_labelled_history,
    normalised_auc,
    summarise_faithfulness,
)
from core.sequences import make_batch
from core.store import connect_read


def test_normalised_auc_by_hand():
    assert normalised_auc(np.array([2.0, 1.0, 0.0])) == pytest.approx(0.5)  # a straight line
    assert normalised_auc(np.array([3.0, 0.0, 0.0])) == pytest.approx(0.25)  # all gone after the first removal
    assert normalised_auc(np.array([1.0, 2.0, 0.0])) == pytest.approx(1.25)  # removal made it rise first
    assert normalised_auc(np.array([-1.0, -3.0])) == pytest.approx(0.5)  # scale and sign do not matter
    assert math.isnan(normalised_auc(np.array([1.0, 5.0, 1.0])))  # f(x) = base: undefined
    assert math.isnan(normalised_auc(np.array([1.0])))


def test_summary_by_hand():
    aucs = [
        {"shap": 0.2, "attention": 0.5, "recency": 0.4, "random": 0.5},
        {"shap": 0.4, "attention": 0.3, "recency": 0.6, "random": 0.5},
        {"shap": 0.3, "attention": 0.4, "recency": float("nan"), "random": 0.5},
    ]
    s = summarise_faithfulness(aucs, [1e-7, 3e-6, 0.0])
    assert s.n_pairs == 3 and s.max_additivity_error == 3e-6
    assert s.orderings["shap"].mean == pytest.approx(0.3) and s.orderings["shap"].std == pytest.approx(0.1)
    assert s.orderings["shap"].median == pytest.approx(0.3) and s.orderings["shap"].q25 == pytest.approx(0.25)
    assert s.orderings["recency"].n == 2 and s.orderings["recency"].mean == pytest.approx(0.5)
    assert s.orderings["random"].std == 0.0
    assert s.shap_beats_attention == pytest.approx(2 / 3)
    card = s.to_card()
    assert card["pairs"] == 3 and card["deletion_auc"]["attention"]["mean"] == pytest.approx(0.4)


def test_deletion_curves_on_a_real_model(synthetic_db, untrained_model_dir):
    loaded = load_checkpoint(untrained_model_dir)
    with connect_read(synthetic_db) as con:
        lh = load_labelled_history(con, loaded, "u003")
    explainer = HistoryExplainer(loaded, event_evals=200)
    expl = explainer.explain(lh, windows=False, groups=False)
    curves = deletion_curves(explainer, lh, expl, n_random=3)
    n = len(expl.labels)
    assert set(curves.curves) == {"shap", "attention", "recency", "random"}
    for c in curves.curves.values():
        assert len(c.scores) == n + 1 and sorted(c.order.tolist()) == list(range(n))
        assert c.scores[0] == pytest.approx(expl.fx, abs=1e-5)  # nothing removed
        assert c.scores[-1] == pytest.approx(expl.base, abs=1e-5)  # everything removed: the empty state
        assert c.auc == pytest.approx(normalised_auc(c.scores))
    assert curves.curves["shap"].ranks[0] == 1  # the explained item is the top-1
    assert list(curves.curves["recency"].order[:3]) == [n - 1, n - 2, n - 3]  # newest first
    assert list(curves.curves["shap"].order[:2]) == list(np.argsort(-expl.values, kind="stable")[:2])
    # one point checked by hand: the 3 newest events absent (mask False) in the model's own batch
    window = lh.history.slice(int(lh.window(50)[0]), len(lh))
    b = make_batch([window], 50)
    b.mask[0, -3:] = False
    with torch.no_grad():
        scores = loaded.model(b)[0]
    assert curves.curves["recency"].scores[3] == pytest.approx(scores[expl.target_index].item(), abs=1e-5)
    seen = torch.from_numpy(lh.seen())
    others = scores.clone()
    others[seen] = float("-inf")
    others[expl.target_index] = float("-inf")
    assert curves.curves["recency"].ranks[3] == 1 + int((others > scores[expl.target_index]).sum())
    frame = curves.frame()
    assert len(frame) == 4 * (n + 1) and list(frame.columns) == ["ordering", "k", "score", "normalised", "rank"]
