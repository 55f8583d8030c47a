"""Attention at a step: rollout on a hand-made stack, alignment with history steps, aggregation by category/time."""

import numpy as np
import pytest
import torch

from core.attention import NO_CATEGORY, AttentionAnalyzer, StepAttention, attention_rollout
from core.checkpoint import load_checkpoint
from core.errors import NotFoundError, UserInputError
from core.sequences import History, load_sequences, make_batch
from core.store import connect_read


def test_rollout_on_a_hand_made_stack():
    # one head per layer, three positions, causal rows
    a1 = np.array([[1.0, 0, 0], [0.5, 0.5, 0], [0.2, 0.2, 0.6]])
    a2 = np.array([[1.0, 0, 0], [1.0, 0.0, 0], [0.0, 0.5, 0.5]])
    r1 = 0.5 * a1 + 0.5 * np.eye(3)  # rows already sum to one
    r2 = 0.5 * a2 + 0.5 * np.eye(3)
    out = attention_rollout(np.stack([a1[None], a2[None]]))
    np.testing.assert_allclose(out, r2 @ r1)
    # by hand: r2 row 2 = (0, ¼, ¾); r1 rows 1, 2 = (¼, ¾, 0), (0.1, 0.1, 0.8) -> ¼·row1 + ¾·row2
    np.testing.assert_allclose(out[2], [0.1375, 0.2625, 0.6])
    np.testing.assert_allclose(out.sum(axis=1), 1.0)
    # heads are averaged before the residual is added
    two_heads = np.stack([np.stack([a1, np.eye(3)])])
    np.testing.assert_allclose(attention_rollout(two_heads), 0.5 * (0.5 * a1 + 0.5 * np.eye(3)) + 0.5 * np.eye(3))
    np.testing.assert_allclose(attention_rollout(np.stack([a1[None]]), residual=False), a1)


def _step(weights, cats, days) -> StepAttention:
    n = len(days)
    return StepAttention(
        step=n - 1,
        steps=np.arange(n),
        items=[f"i{k}" for k in range(n)],
        times=np.array(days, dtype="datetime64[s]"),
        weights=np.asarray(weights, float)[None, None, :],
        rollout=np.asarray(weights, float),
        event_categories=np.asarray(cats, float),
        categories=["A", "B"],
    )


def test_aggregation_by_category_and_time_by_hand():
    att = _step(
        [0.1, 0.2, 0.3, 0.4],
        [[1, 0], [0.5, 0.5], [0, 0], [0, 1]],  # A, A+B, no category, B
        ["2025-01-01", "2025-01-02", "2025-01-08", "2025-02-01"],
    )
    cat = att.by_category().set_index("category")
    assert cat.loc["A", "weight"] == pytest.approx(0.1 + 0.1)
    assert cat.loc["B", "weight"] == pytest.approx(0.1 + 0.4)
    assert cat.loc[NO_CATEGORY, "weight"] == pytest.approx(0.3)
    assert list(cat.index) == ["B", NO_CATEGORY, "A"]  # largest first
    month = att.by_time("month")
    np.testing.assert_allclose(month["weight"], [0.6, 0.4])
    assert list(month["first_step"]) == [0, 3] and list(month["last_step"]) == [2, 3]
    week = att.by_time("week")  # 2025-01-01 is a Wednesday: the first two events share a week
    np.testing.assert_allclose(week["weight"], [0.3, 0.3, 0.4])
    with pytest.raises(UserInputError):
        att.by_time("year")
    with pytest.raises(UserInputError):
        att.values((3, 0))


@pytest.fixture(scope="module")
def loaded(untrained_model_dir):
    return load_checkpoint(untrained_model_dir)


def test_step_attention_matches_the_model_and_history(synthetic_db, loaded):
    analyzer = AttentionAnalyzer(loaded)
    with connect_read(synthetic_db) as con:
        uid = con.execute("SELECT user_id FROM events GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1").fetchone()[0]
        h = load_sequences(con, loaded.vocab, users=[uid]).history(0)
        last = analyzer.user(con, uid)
        with pytest.raises(NotFoundError):
            analyzer.user(con, "nobody")
    L = loaded.config.max_len
    n = len(h)
    assert last.step == n - 1 and list(last.steps) == list(range(n - L, n))
    assert last.weights.shape == (loaded.config.n_layers, loaded.config.n_heads, L)
    np.testing.assert_allclose(last.weights.sum(axis=-1), 1.0, atol=1e-6)
    np.testing.assert_allclose(last.rollout.sum(), 1.0, atol=1e-9)
    with torch.no_grad():
        enc = loaded.model.encode(make_batch([h], L), return_attention=True)
    np.testing.assert_allclose(last.weights[1, 0], enc.attention[1][0, 0, -1].numpy(), atol=1e-6)
    # an earlier step sees only events up to it
    early = analyzer.at_step(h, 9)
    assert list(early.steps) == list(range(10)) and early.weights.shape[-1] == 10
    np.testing.assert_allclose(early.by_category("mean")["weight"].sum(), 1.0, atol=1e-9)
    with pytest.raises(UserInputError):
        analyzer.at_step(h, n)


def test_unknown_items_are_left_out_of_the_window(loaded):
    h = History.from_arrays([0, 3, 0, 5, 7], np.arange(5) * 60, k=len(loaded.vocab.context))
    att = AttentionAnalyzer(loaded).at_step(h, 2)  # the query is the last known event <= 2, i.e. step 1
    assert list(att.steps) == [1] and att.items == [loaded.vocab.item_id(3)]
    with pytest.raises(UserInputError):
        AttentionAnalyzer(loaded).at_step(h, 0)
