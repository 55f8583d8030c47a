"""Trajectories of a social model read its friends: each step's category distribution is the one the model scores
with (fused states and the copy mixture over friends' recent items, strictly before the step), not the model
without friends."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from core.checkpoint import LoadedModel
from core.friends.context import SocialContext, user_context
from core.friends.graph import load_graph
from core.friends.states import compute_timelines
from core.model import InterestModel, ModelConfig, ModelSizes
from core.model.social import attach_branch
from core.social.fit import social_batch
from core.store import connect_read
from core.trajectory import TrajectoryAnalyzer, TrajectoryConfig
from core.trajectory.engine import encode_steps

CFG = ModelConfig(d_model=16, n_heads=2, n_layers=1, max_len=8, dropout=0.0)


@pytest.fixture(scope="module")
def social_db(social_log):
    """The shared social log (tests/core/conftest.py) and a social model over it whose branch really mixes."""
    db, vocab, seqs, graph = social_log.db, social_log.vocab, social_log.seqs, social_log.graph
    torch.manual_seed(0)
    model = attach_branch(InterestModel(CFG, ModelSizes(vocab.n_items, len(vocab.categories), len(vocab.event_types)),
                                        vocab.category_weights()))  # fmt: skip
    torch.manual_seed(1)
    for p in model.social.parameters():  # a branch that really mixes friends in and copies
        torch.nn.init.normal_(p, std=0.5)
    return db, vocab, seqs, graph, model.eval()


def _reference(model, seqs, graph, tl, row, w):
    """[n,C] each step's distribution from the model's own scores of the window ending there, friends included."""
    a, b = int(seqs.offsets[row]), int(seqs.offsets[row + 1])
    hi = np.arange(a + 1, b + 1)
    lo = np.maximum(a, hi - CFG.max_len)
    batch = social_batch(seqs, lo, hi, CFG.max_len, tl, graph)
    with torch.no_grad():
        return (model(batch).softmax(-1) @ w).double().numpy()


def test_social_trajectory_is_what_the_model_scores_with_friends(social_db):
    _db, vocab, seqs, graph, model = social_db
    w = vocab.category_weights()
    tl = compute_timelines(model, seqs)
    ctx = SocialContext(seqs, graph, tl)
    row = int(np.argmax(np.diff(graph.offsets)))  # a user with friends
    hist = seqs.history(row)
    with_friends = encode_steps(model, [hist], w, stride=1, components=False, friends=ctx.history_hook([row]))[0]
    without = encode_steps(model, [hist], w, stride=1, components=False)[0]
    ref = _reference(model, seqs, graph, tl, row, w)
    assert np.allclose(with_friends.distribution, ref, atol=1e-5)
    assert not np.allclose(without.distribution, ref, atol=1e-3)  # without the hook: the model without friends


def test_user_context_reads_the_same_friends_as_the_whole_graph(social_db):
    db, vocab, seqs, graph, model = social_db
    w = vocab.category_weights()
    row = int(np.argmax(np.diff(graph.offsets)))
    user = str(seqs.user_ids[row])
    with connect_read(db) as con:
        ctx, r = user_context(con, model, vocab, user, k=graph.k)
    assert sorted(ctx.seqs.user_ids[ctx.graph.friends(r)]) == sorted(seqs.user_ids[graph.friends(row)])
    ego = encode_steps(model, [ctx.seqs.history(r)], w, stride=1, components=False, friends=ctx.history_hook([r]))[0]
    ref = _reference(model, seqs, graph, compute_timelines(model, seqs), row, w)
    assert np.allclose(ego.distribution, ref, atol=1e-5)


def test_the_analyzer_reads_a_social_models_friends(social_db):
    db, vocab, seqs, graph, model = social_db
    loaded = LoadedModel(model, vocab, CFG, model.sizes, Path("."))
    row = int(np.argmax(np.diff(graph.offsets)))
    with connect_read(db) as con:
        traj = TrajectoryAnalyzer(loaded, TrajectoryConfig(stride=1)).user(con, str(seqs.user_ids[row]))
        full = load_graph(con, seqs)  # the training cap (DEFAULT_K), as the analyzer applies it
    assert len(full.friends(row)) > graph.k  # the cap matters for this user
    ref = _reference(model, seqs, full, compute_timelines(model, seqs), row, vocab.category_weights())
    assert np.allclose(traj.distribution, ref, atol=1e-5)  # no fitted forecast: the model's own distribution


def _hand_mixture(model, batch, enc, t, w, by_category):
    """[C] by hand: the category marginal of the next-item mixture after step t of window 0 (plain or within
    categories, core.model.social), from the model's own logits, copy share, attention and friends' recent items."""
    with torch.no_grad():
        logits = (enc.states[0, t] @ model.item_vectors().t()).double().numpy()
    p = np.exp(logits[1:] - logits[1:].max())
    p = np.concatenate([[0.0], p / p.sum()])  # [I+1] softmax, padding excluded
    g = float(enc.social_copy[0, t])
    q = np.zeros_like(p)
    for k in range(batch.social.recent.shape[2]):
        items = [int(i) for i in batch.social.recent[0, t, k] if i > 0]
        for i in items:
            q[i] += float(enc.social_attention[0, t, k]) / len(items)
    W = w.double().numpy()
    P, Q = p @ W, q @ W
    if not by_category:
        mix, marginal = (1 - g) * p + g * q, None
    else:  # category c keeps P_c; inside it, a share g goes to the friends' items of c (in proportion to q)
        marginal = P
        mix = p * (1 - g * (W @ (Q > 0))) + g * q * (W @ np.where(Q > 0, P / np.where(Q > 0, Q, 1.0), 0.0))
    assert abs(mix.sum() - 1.0) < 1e-6  # (attention is float32)
    return mix @ W, P if marginal is None else marginal, g


@pytest.mark.parametrize("by_category", [False, True])
def test_trajectory_is_the_category_marginal_of_the_copy_mixture(social_db, by_category):
    """Each step's interest is the category marginal of the model's whole next-item mixture (softmax and the copy
    share of friends' recent items), computed here by hand; within categories it is exactly the softmax's."""
    _db, vocab, seqs, graph, base = social_db
    w = vocab.category_weights()
    assert bool(((w > 0).sum(1)[1:] == 1).all())  # one category per item: the marginal is exact
    torch.manual_seed(0)
    model = attach_branch(InterestModel(CFG, base.sizes, w), by_category=by_category)
    model.load_state_dict(base.state_dict(), strict=not by_category)  # same weights (+ the kind's buffer)
    torch.nn.init.zeros_(model.social.copy.weight)
    torch.nn.init.constant_(model.social.copy.bias, 1.0)  # copy share ~0.73 wherever a friend is present
    model.eval()
    tl = compute_timelines(model, seqs)
    row = int(np.argmax(np.diff(graph.offsets)))
    a, n = int(seqs.offsets[row]), min(CFG.max_len, int(seqs.offsets[row + 1] - seqs.offsets[row]))
    hist = seqs.history(row)
    traj = encode_steps(model, [hist], w, components=False, friends=SocialContext(seqs, graph, tl).history_hook([row]))[0]
    batch = social_batch(seqs, np.array([a]), np.array([a + n]), n, tl, graph)
    with torch.no_grad():
        enc = model.encode(batch)
    assert bool(batch.social.present[0].any(-1).all())  # a friend at every step: g ~0.73 everywhere
    for t in range(n):  # the first window: step t is read from position t
        want, soft, g = _hand_mixture(model, batch, enc, t, w, by_category)
        assert g > 0.7
        assert np.allclose(traj.distribution[t], want, atol=1e-5)
        if by_category:
            assert np.allclose(traj.distribution[t], soft, atol=1e-5)  # friends move items, not categories
        else:
            assert np.abs(want - soft).sum() > 0.01  # the plain mixture moves the marginal to friends' categories
