"""The category head trained jointly with the next-item loss (core.model, `ModelConfig.category_loss`) and the
forecast that may read it (core.trajectory.forecast, core.trajectory.engine)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from core.model import Batch, InterestModel, ModelConfig, ModelSizes
from core.sequences import History, load_sequences
from core.store import connect_read
from core.trajectory.engine import encode_steps
from core.trajectory.forecast import InterestForecast, fit_forecast, forecast_components

C, I = 3, 6
# items 1-2 in category 0, 3-4 in category 1, 5-6 in category 2
W = torch.zeros(I + 1, C)
W[1:3, 0] = 1.0
W[3:5, 1] = 1.0
W[5:, 2] = 1.0


def _model(category_loss: float, seed: int = 0) -> InterestModel:
    torch.manual_seed(seed)
    cfg = ModelConfig(d_model=16, n_heads=2, n_layers=1, max_len=8, dropout=0.0, category_loss=category_loss)
    return InterestModel(cfg, ModelSizes(I, C), W)


def _cycle_batch(rows: int = 16, T: int = 8) -> tuple[Batch, torch.Tensor]:
    """Histories whose categories cycle 0 → 1 → 2 → 0 (the item within a category at random): the next category
    is a function of the current one, the next item is not."""
    g = torch.Generator().manual_seed(1)
    start = torch.randint(0, C, (rows, 1), generator=g)
    cats = (start + torch.arange(T + 1)) % C  # [B,T+1]
    items = 1 + 2 * cats + torch.randint(0, 2, cats.shape, generator=g)  # [B,T+1]
    z = torch.zeros(rows, T, dtype=torch.long)
    batch = Batch(items=items[:, :T], gaps=z, event_types=z, context=torch.zeros(rows, T, 0, dtype=torch.long),
                  mask=torch.ones(rows, T, dtype=torch.bool))
    return batch, items[:, 1:]


def test_the_head_exists_only_with_a_weight_and_leaves_the_other_weights_as_they_start():
    plain, head = _model(0.0), _model(0.5)
    assert plain.cat_head is None and plain.category_forecast(torch.zeros(2, 16)) is None
    assert head.cat_head is not None and head.cat_head.weight.shape == (C, 16)
    a, b = plain.state_dict(), head.state_dict()
    assert set(b) - set(a) == {"cat_head.weight", "cat_head.bias"}
    assert all(torch.equal(a[k], b[k]) for k in a)  # same seed, same start: the head is drawn last
    p = head.category_forecast(torch.randn(4, 16))
    assert p.shape == (4, C) and torch.allclose(p.sum(-1), torch.ones(4))


def test_loss_adds_the_weighted_category_cross_entropy():
    model = _model(0.5).eval()
    batch, targets = _cycle_batch(rows=4)
    with torch.no_grad():
        total = model.loss(batch, targets)
    # by hand: the same states, the item cross-entropy plus 0.5 x the head's cross-entropy on the targets'
    # categories (targets, then the first event of each row from the empty state, as `loss` orders them)
    with torch.no_grad():
        states = model.encode(batch).states.reshape(-1, 16)
        h = torch.cat([states, model.empty.expand(4, -1)])
        y = torch.cat([targets.reshape(-1), batch.items[:, 0]])
        logits = h @ model.item_vectors().t()
        logits[:, 0] = float("-inf")
        item_ce = F.cross_entropy(logits, y)
        cat_ce = -(W[y] * model.cat_head(h).log_softmax(-1)).sum(-1).mean()
    assert float(total) == pytest.approx(float(item_ce + 0.5 * cat_ce), rel=1e-5)


def test_head_learns_a_deterministic_next_category():
    model = _model(1.0)
    batch, targets = _cycle_batch()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(60):
        loss = model.loss(batch, targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            cat = float(model._category_loss(model.encode(batch).states.reshape(-1, 16), targets.reshape(-1)))
        first = cat if first is None else first
    assert first > 1.0  # about log 3 at the start
    assert cat < 0.1 * first
    model.eval()
    with torch.no_grad():
        p = model.category_forecast(model.encode(batch).states)  # [B,T,C]
    true_next = (targets - 1) // 2  # the category of each target
    assert float(p.gather(-1, true_next.unsqueeze(-1)).mean()) > 0.9


def test_trajectory_engine_reads_the_head_from_the_same_states():
    model = _model(0.5).eval()
    batch, _ = _cycle_batch(rows=1, T=6)
    items = batch.items[0].numpy()
    n = len(items)
    hist = History(items, np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros((n, 0), np.int64),
                   np.arange(n, dtype=np.int64) * 60)
    out = encode_steps(model, [hist], W, components=False)[0]
    with torch.no_grad():
        want = model.category_forecast(model.encode(batch).states)[0].double().numpy()  # [T,C]
    assert out.head is not None and out.head.shape == (n, C)
    np.testing.assert_allclose(out.head, want, atol=1e-5)
    assert encode_steps(_model(0.0).eval(), [hist], W, components=False)[0].head is None


def _targets(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Forecastable targets: each drawn from a sharp random distribution q (what a good head would say)."""
    rng = np.random.default_rng(seed)
    q = rng.dirichlet(np.full(4, 0.3), n)
    y = np.eye(4)[[rng.choice(4, p=row) for row in q]]
    return q, y


def test_forecast_picks_the_head_when_it_is_better_on_validation_and_not_otherwise():
    q, y = _targets(200, 0)
    prior = np.full(4, 0.25)
    flat = np.tile(prior, (len(y), 1))
    # components at each target: no history (zero counts), the prior, and a flat model marginal
    comps = np.zeros((len(y), 7, 4))
    comps[:, -2] = prior
    comps[:, -1] = flat
    good = fit_forecast(comps, y, prior, head=0.9 * q + 0.1 * prior)
    assert good.source == "head"
    assert good.valid["heldout_log_loss"][f"head_{good.kind}"] < good.valid["heldout_log_loss"]["model"] - 0.3
    # a head that knows nothing loses to a marginal that knows the targets
    comps[:, -1] = 0.9 * q + 0.1 * prior
    bad = fit_forecast(comps, y, prior, head=flat)
    assert bad.source == "marginal"
    # the chosen forecast reads the head's output in `apply`, and round-trips through the card's JSON
    back = InterestForecast.from_dict(good.to_dict())
    assert back.source == "head" and back == good
    ev = np.eye(4)[[0, 1, 1]]
    marginal, head = np.tile(prior, (3, 1)), np.eye(4)[[2, 2, 3]] * 0.7 + 0.075
    direct = back.apply_components(forecast_components(head, ev, prior)[0])
    np.testing.assert_allclose(back.apply(back.model_input(marginal, head), ev), direct)
    with pytest.raises(ValueError, match="category head"):
        back.model_input(marginal, None)


def test_a_model_trained_with_the_head_saves_loads_and_draws_its_trajectory(synthetic_db, tmp_path):
    from core.checkpoint import load_checkpoint
    from core.train import TrainConfig, train
    from core.trajectory import TrajectoryAnalyzer

    out = tmp_path / "head"
    train(synthetic_db, out, ModelConfig(d_model=16, n_layers=1, n_heads=2, max_len=20, category_loss=0.5),
          TrainConfig(epochs=2, max_steps=30, batch_size=16, warmup=5, seed=0, device="cpu"))
    loaded = load_checkpoint(out)
    assert loaded.model.cat_head is not None and loaded.config.category_loss == 0.5
    params = loaded.card["interest"]["forecast_params"]
    assert params["source"] in ("marginal", "head")
    assert {f"head_{k}" for k in ("model", "temperature", "mixture", "product")} <= set(params["valid"]["log_loss"])
    assert "category_head" in loaded.card["interest"]  # the head's own test scores beside the forecast's
    an = TrajectoryAnalyzer(loaded)
    with connect_read(synthetic_db) as con:
        seqs = load_sequences(con, loaded.vocab)
    h = seqs.history(int(np.argmax(seqs.lengths >= 40)), 0, 40)
    steps = pd.DataFrame({"index": np.arange(len(h)), "time": h.ts.astype("datetime64[s]"), "item": "", "title": None})
    out_steps = an.outputs([h], components=False)[0]
    assert out_steps.head is not None and out_steps.head.shape == (len(h), len(loaded.vocab.categories))
    tr = an.build("u", h, steps, out_steps)
    want = an.forecast.apply(an.forecast.model_input(out_steps.distribution, out_steps.head), tr.events)
    np.testing.assert_allclose(tr.distribution, want)


def test_evaluate_text_shows_the_head_when_there_is_one():
    from cli.commands.evaluate import interest_lines

    row = {"log_loss": 2.0, "brier": 0.4, "ece": 0.01, "ece_top": 0.02, "entropy": 2.1}
    section = {"split": "loo", "forecast": row, "histogram": row, "model_marginal": row, "forecast_kind": "mixture",
               "histogram_half_life": 12, "histogram_pseudo_count": 3.0}
    plain = interest_lines(section)
    assert not [line for line in plain if line.startswith("category_head")]
    assert "forecast: mixture; histogram half-life 12 events" in plain[-1]
    lines = interest_lines({**section, "category_head": row, "forecast_source": "head"})
    assert [line for line in lines if line.startswith("category_head")]
    assert lines[-1].startswith("forecast: mixture on the category head;")
