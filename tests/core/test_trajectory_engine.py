"""Per-step model outputs: exact for short histories, overlapping windows for long ones, unknown items skipped."""

import numpy as np
import pytest
import torch

from core.model import InterestModel, ModelConfig, ModelSizes
from core.sequences import History, make_batch
from core.trajectory import category_distribution, encode_steps, plan_windows

I, C, L = 40, 5, 16


@pytest.fixture(scope="module")
def model_and_weights():
    torch.manual_seed(0)
    w = torch.zeros(I + 1, C)
    for i in range(1, I + 1):
        cats = {i % C, (i * 3) % C}
        w[i, list(cats)] = 1.0 / len(cats)
    model = InterestModel(ModelConfig(d_model=16, n_layers=2, n_heads=2, max_len=L, dropout=0.0), ModelSizes(I, C, 2), w)
    return model.eval(), w


def history(n: int, seed: int = 0) -> History:
    rng = np.random.default_rng(seed)
    ts = np.cumsum(rng.integers(1, 5000, n))
    return History.from_arrays(rng.integers(1, I + 1, n), ts, rng.integers(1, 3, n))


def exact(model, w, h: History) -> np.ndarray:
    """The model's distribution after the last event of `h`, read as recommendations read it."""
    with torch.no_grad():
        batch = make_batch([h], L)
        state = model.readout(model.encode(batch), batch)
        return category_distribution(model.score(state), w).numpy()[0]


def test_plan_covers_every_step_once_with_enough_context():
    for m, stride in [(5, 4), (16, 4), (17, 4), (50, 4), (50, 7), (50, 16), (33, 1)]:
        plan = plan_windows(m, L, stride)
        read = [s for lo, hi, first in plan for s in range(first, hi)]
        assert read == list(range(m))
        for lo, hi, first in plan:
            assert hi - lo <= L
            assert first - lo >= min(first, L - stride)  # each read step sees >= L - stride earlier events
        assert plan[-1][1] == m


def test_short_history_is_exact_at_every_step(model_and_weights):
    model, w = model_and_weights
    h = history(12)
    (out,) = encode_steps(model, [h], w)
    for t in (0, 5, 11):
        np.testing.assert_allclose(out.distribution[t], exact(model, w, h.slice(0, t + 1)), atol=1e-5)
    np.testing.assert_allclose(out.distribution.sum(axis=1), 1.0, atol=1e-9)
    assert out.gate.shape == (12,) and np.all((out.gate > 0) & (out.gate < 1))


def test_long_history_reads_each_step_from_its_window(model_and_weights):
    model, w = model_and_weights
    h = history(60, seed=1)
    stride = 4
    (out,) = encode_steps(model, [h], w, stride=stride)
    # the last step is what recommendations use: the latest L events
    np.testing.assert_allclose(out.distribution[-1], exact(model, w, h), atol=1e-5)
    plan = plan_windows(60, L, stride)
    for lo, hi, first in [plan[0], plan[len(plan) // 2], plan[-1]]:
        for t in {first, hi - 1}:
            np.testing.assert_allclose(out.distribution[t], exact(model, w, h.slice(lo, t + 1)), atol=1e-5)
    # stride 1 is the exact sliding window at every step
    (one,) = encode_steps(model, [h.slice(0, 30)], w, stride=1)
    for t in (20, 29):
        np.testing.assert_allclose(one.distribution[t], exact(model, w, h.slice(t + 1 - L, t + 1)), atol=1e-5)


def test_batching_does_not_change_results(model_and_weights):
    model, w = model_and_weights
    hs = [history(n, seed=n) for n in (3, 40, 9, 25)]
    together = encode_steps(model, hs, w, batch_size=2)
    for h, out in zip(hs, together, strict=True):
        (alone,) = encode_steps(model, [h], w)
        np.testing.assert_allclose(out.distribution, alone.distribution, atol=1e-5)
        np.testing.assert_allclose(out.long_term, alone.long_term, atol=1e-5)
        np.testing.assert_allclose(out.gate, alone.gate, atol=1e-5)


def test_unknown_items_repeat_the_previous_interest(model_and_weights):
    model, w = model_and_weights
    h = history(10, seed=2)
    h.items[[0, 4]] = 0  # the model never saw these items
    (out,) = encode_steps(model, [h], w)
    np.testing.assert_allclose(out.distribution[4], out.distribution[3])
    assert np.isnan(out.gate[0]) and not np.isnan(out.gate[1])
    with torch.no_grad():
        empty = category_distribution(model.score(model.empty[None]), w).numpy()[0]
    np.testing.assert_allclose(out.distribution[0], empty, atol=1e-6)
    known = h.slice(0, 4)
    np.testing.assert_allclose(out.distribution[3], exact(model, w, known), atol=1e-5)


def test_components_match_scoring_each_state_directly(model_and_weights):
    """The gated distribution comes from mixing the long- and short-term logits; it must equal scoring the gated
    state itself (components=False), and each component must equal scoring that component."""
    model, w = model_and_weights
    h = history(40, seed=3)
    (full,) = encode_steps(model, [h], w)
    (gated_only,) = encode_steps(model, [h], w, components=False)
    np.testing.assert_allclose(full.distribution, gated_only.distribution, atol=1e-6)
    with torch.no_grad():
        batch = make_batch([h.slice(0, L)], L)
        enc = model.encode(batch)
        for part, got in (("long", full.long_term), ("short", full.short_term)):
            want = category_distribution(model.score(getattr(enc, part)[0]), w).numpy()
            np.testing.assert_allclose(got[:L], want, atol=1e-5)
