"""core.explain: exact Shapley values on a toy model, the masker's absence, additivity on real models."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
import torch

from core.checkpoint import LoadedModel, load_checkpoint
from core.explain import (
    AdditivityError,
    HistoryExplainer,
    LabelledHistory,
    PresenceMasker,
    deletion_curves,
    load_labelled_history,
    normalised_auc,
)
from core.model import FEATURE_GROUPS, Encoding, ModelConfig, ModelSizes
from core.recommend import seen_excluded
from core.sequences import History, Vocab, make_batch
from core.store import connect_read

T0 = int((dt.datetime(2024, 3, 4, 9, 0) - dt.datetime(1970, 1, 1)).total_seconds())  # a Monday, 09:00 UTC


class ToyModel(torch.nn.Module):
    """f(t) = Σ_d e_t[d] · (s_d + c·s_d²) with s = Σ over present events of e_item: known Shapley values.

    With c = 0 the game is additive (event i contributes ⟨e_i, e_t⟩); with c ≠ 0 it has pairwise interactions
    and event i's Shapley (and Owen) value is Σ_d e_t[d] · e_i[d] · (1 + c·s_d) with s the full sum.
    """

    def __init__(self, n_items: int, d: int = 4, c: float = 0.0, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        emb = torch.randn(n_items + 1, d, generator=g, dtype=torch.float64)
        emb[0] = 0
        self.emb = torch.nn.Parameter(emb)
        self.c = c

    def encode(self, batch, return_attention: bool = False) -> Encoding:
        present = (batch.mask & (batch.items > 0)).double()  # [B,T]
        s = (self.emb[batch.items] * present[..., None]).cumsum(1)  # [B,T,D]
        h = s + self.c * s * s
        att = None
        if return_attention:  # uniform over present earlier events: one layer, one head
            T = present.shape[1]
            a = torch.tril(torch.ones(T, T, dtype=torch.float64)) * present[:, None, :]
            att = [(a / a.sum(-1, keepdim=True).clamp(min=1))[:, None]]
        return Encoding(states=h, long=h, short=h, gate=torch.zeros(h.shape[:2]), attention=att)

    def readout(self, enc: Encoding, batch) -> torch.Tensor:
        return enc.states[:, -1]

    def item_vectors(self) -> torch.Tensor:
        return self.emb

    def score(self, states: torch.Tensor) -> torch.Tensor:
        logits = states @ self.emb.t()
        logits[..., 0] = float("-inf")
        return logits

    def forward(self, batch) -> torch.Tensor:
        return self.score(self.readout(self.encode(batch), batch))


def toy(n_items: int = 12, c: float = 0.0) -> LoadedModel:
    vocab = Vocab([f"m{i}" for i in range(1, n_items + 1)], ["a", "b"], ["view"], {}, [[i % 2] for i in range(n_items)])
    model = ToyModel(n_items, c=c).eval()
    return LoadedModel(model, vocab, ModelConfig(max_len=50), ModelSizes(n_items, 2, 1), Path("toy"))


def toy_history(items, minutes) -> LabelledHistory:
    ts = T0 + 60 * np.asarray(minutes, dtype=np.int64)
    h = History.from_arrays(items, ts, event_types=np.ones(len(items), np.int64))
    return LabelledHistory.from_history("toy-user", h, Vocab([f"m{i}" for i in range(1, 13)], ["a", "b"], ["view"], {}, [[i % 2] for i in range(12)]))


ITEMS = [3, 5, 1, 7, 2, 9, 4]
MINUTES = [0, 10, 70, 80, 60 * 24 + 5, 60 * 24 * 9, 60 * 24 * 9 + 20]  # sessions, days, weeks of hand-made times


@pytest.mark.parametrize("c", [0.0, 0.3])
def test_toy_model_values_equal_known_shapley_values(c):
    loaded = toy(c=c)
    lh = toy_history(ITEMS, MINUTES)
    expl = HistoryExplainer(loaded, event_evals=2 * len(ITEMS) + 1).explain(lh, target="m11")
    emb = loaded.model.emb.detach().numpy()
    e_t, x = emb[11], emb[ITEMS]  # [D], [n,D]
    s = x.sum(0)
    known = (x * e_t * (1 + c * s)).sum(1)  # [n]
    np.testing.assert_allclose(expl.values, known, atol=1e-10)  # one antithetic permutation is exact here
    np.testing.assert_allclose(expl.periods.values, known, atol=1e-10)  # Owen = Shapley without higher orders
    assert expl.base == pytest.approx(0.0, abs=1e-12)
    assert expl.fx == pytest.approx(float((e_t * (s + c * s * s)).sum()), abs=1e-10)
    by_label = {(w.level, w.label): w.value for w in expl.windows}
    assert by_label["day", "2024-03-04"] == pytest.approx(known[:4].sum(), abs=1e-10)
    assert by_label["session", "2024-03-04 09:00–09:10"] == pytest.approx(known[:2].sum(), abs=1e-10)
    assert by_label["week", "2024-W11 (Mar)"] == pytest.approx(known[5:].sum(), abs=1e-10)
    np.testing.assert_allclose(expl.groups.values, 0.0, atol=1e-12)  # the toy ignores feature groups
    assert [lab.item_id for lab in expl.labels] == [f"m{i}" for i in ITEMS]
    assert expl.events.feature_names[0].startswith("#0 m3 · 2024-03-04 09:00")


def test_toy_deletion_curve_by_shap_is_the_best_possible():
    loaded = toy()
    lh = toy_history(ITEMS, MINUTES)
    explainer = HistoryExplainer(loaded, event_evals=15)
    expl = explainer.explain(lh, target="m11", windows=False, groups=False)
    curves = deletion_curves(explainer, lh, expl, n_random=3)
    v = expl.values
    order = np.argsort(-v, kind="stable")
    expected = expl.fx - np.r_[0.0, np.cumsum(v[order])]  # additive: removing events subtracts their values
    np.testing.assert_allclose(curves.curves["shap"].scores, expected, atol=1e-10)
    np.testing.assert_allclose(curves.curves["recency"].scores, expl.fx - np.r_[0.0, np.cumsum(v[::-1])], atol=1e-10)
    assert curves.curves["shap"].auc == pytest.approx(normalised_auc(expected))
    # largest first minimises every partial sum that is left, so no ordering can have a lower area
    for name in ("attention", "recency", "random"):
        assert curves.auc["shap"] <= curves.auc[name] + 1e-12
    assert curves.curves["shap"].normalised[0] == 1.0 and curves.curves["shap"].normalised[-1] == 0.0
    assert set(curves.frame()["ordering"]) == {"shap", "attention", "recency", "random"}


def test_masker_gives_exactly_the_documented_absence(synthetic_db, untrained_model_dir):
    loaded = load_checkpoint(untrained_model_dir)
    with connect_read(synthetic_db) as con:
        lh = load_labelled_history(con, loaded, "u003")
    game = HistoryExplainer(loaded).game(lh)
    n = game.n
    rng = np.random.default_rng(0)
    masker = PresenceMasker(n)
    masks = rng.random((6, n)) > 0.4
    rows = np.concatenate([masker(m, np.arange(n)) for m in masks])
    assert rows.shape == (6, n) and rows.dtype == bool and (rows == masks).all()
    got = game.events(rows)
    # the same absence written by hand: a batch of the window whose absent events have mask False
    window = lh.history.slice(int(lh.window(50)[0]), len(lh))
    for m, value in zip(masks, got, strict=True):
        b = make_batch([window], 50)
        b.mask[0, -n:] = torch.from_numpy(m)
        with torch.no_grad():
            expected = loaded.model(b)[0, game.target].item()
        assert value == pytest.approx(expected, abs=1e-5)
    # an absent feature group is the model's "unknown" embedding for that group
    groups = np.array([[True, False, True, False]])
    b = make_batch([window], 50)
    b.group_present = torch.from_numpy(groups)
    with torch.no_grad():
        expected = loaded.model(b)[0, game.target].item()
    assert game.groups(groups)[0] == pytest.approx(expected, abs=1e-5)
    assert game.groups(np.ones((1, len(FEATURE_GROUPS)), bool))[0] == pytest.approx(game.full(), abs=1e-6)


@pytest.mark.parametrize("margin", [False, True])
def test_additivity_on_the_trained_model(synthetic_db, trained_model_dir, margin):
    loaded = load_checkpoint(trained_model_dir)
    with connect_read(synthetic_db) as con:
        lh = load_labelled_history(con, loaded, "u007")
    explainer = HistoryExplainer(loaded, event_evals=300, window_evals=300)
    expl = explainer.explain(lh, margin=margin, k=5)
    tol = 1e-4 * max(1.0, abs(expl.fx))
    for part in (expl.events, expl.periods, expl.groups):
        assert abs(part.values.sum() + part.base_values - expl.fx) <= tol
    assert expl.additivity_error <= tol
    batch = make_batch([lh.history], 50)
    with torch.no_grad():
        scores = loaded.model(batch)[0]
    ranked = scores.clone()
    if seen_excluded(loaded):  # the model card's seen rule (the tiny log re-consumes items: auto keeps them)
        ranked[torch.from_numpy(lh.seen())] = float("-inf")
    ranked[0] = float("-inf")  # padding is never recommended
    order = torch.argsort(ranked, descending=True, stable=True)
    assert expl.target_index == int(order[0])  # default target: the current top-1 under the seen rule
    fx = scores[expl.target_index] - (scores[int(order[5])] if margin else 0.0)
    assert expl.fx == pytest.approx(float(fx), abs=1e-5)
    assert (expl.foil == loaded.vocab.item_id(int(order[5]))) if margin else expl.foil is None
    assert sum(w.n_events for w in expl.windows if w.level == "month") == len(expl.labels)


class BatchDependentToy(ToyModel):
    """A broken model: each row's output depends on the other rows of its batch (like batch norm left on)."""

    def readout(self, enc: Encoding, batch) -> torch.Tensor:
        h = enc.states[:, -1]
        return h - 0.5 * h.mean(0, keepdim=True)


def test_additivity_failure_names_the_explanation():
    loaded = toy()
    loaded.model = BatchDependentToy(12).eval()
    lh = toy_history(ITEMS, MINUTES)
    with pytest.raises(AdditivityError, match=r"^The per-event explanation of item 'm11' for user 'toy-user' is not additive"):
        HistoryExplainer(loaded, event_evals=15).explain(lh, target="m11", windows=False, groups=False)
