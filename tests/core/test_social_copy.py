"""The social branch's copy path: the next-item distribution mixed with friends' recent items (known answers for the
mixture, the loss and the ranking; across and within categories), and a branch without it staying as it was."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from core.checkpoint import load_checkpoint, save_checkpoint
from core.friends.states import compute_timelines
from core.model import InterestModel, ModelConfig, ModelSizes
from core.model.social import attach_branch, copy_log_probs, has_category_copy, has_copy_weights
from core.social.fit import social_batch
from core.train.data import train_batch

CFG = ModelConfig(d_model=16, n_heads=2, n_layers=1, max_len=8, dropout=0.0)


def _model(vocab, copy_bias: float | None = None, by_category: bool = False) -> InterestModel:
    torch.manual_seed(0)
    m = attach_branch(InterestModel(CFG, ModelSizes(vocab.n_items, len(vocab.categories), len(vocab.event_types)),
                                    vocab.category_weights()), by_category=by_category)  # fmt: skip
    torch.manual_seed(1)
    for p in m.social.parameters():  # a branch that really attends and copies
        torch.nn.init.normal_(p, std=0.5)
    if copy_bias is not None:
        torch.nn.init.zeros_(m.social.copy.weight)
        torch.nn.init.constant_(m.social.copy.bias, copy_bias)
    return m.eval()


def _batch(seqs, graph, model, users):
    rows = np.asarray(users)
    hi = seqs.offsets[rows + 1] - 1
    lo = np.maximum(seqs.offsets[rows], hi - CFG.max_len)
    return lo, hi, compute_timelines(model, seqs)


def test_copy_mixture_known_answer():
    logits = torch.tensor([[float("-inf"), 1.0, 2.0, 0.0, -1.0], [float("-inf"), 1.0, 2.0, 0.0, -1.0]])
    att = torch.tensor([[0.75, 0.25], [0.5, 0.5]])
    recent = torch.tensor([[[2, 2, 0], [3, 0, 0]], [[1, 0, 0], [4, 0, 0]]])
    g = torch.tensor([0.5, 0.0])
    out = copy_log_probs(logits, g, att, recent)
    soft = logits[0].softmax(-1)
    q = torch.tensor([0.0, 0.0, 0.75, 0.25, 0.0])  # friend 1's 0.75 on item 2 (listed twice), friend 2's 0.25 on 3
    assert torch.allclose(out[0].exp(), 0.5 * soft + 0.5 * q, atol=1e-6)
    assert math.isclose(float(out[0].exp().sum()), 1.0, abs_tol=1e-6)
    assert torch.equal(out[1], logits[1])  # g = 0: the logits themselves, bit for bit


def test_copy_within_categories_known_answer():
    logits = torch.tensor([[float("-inf"), 1.0, 2.0, 0.0, -1.0], [float("-inf"), 1.0, 2.0, 0.0, -1.0]])
    W = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])  # items 1, 2: cat 0; 3, 4: cat 1
    att = torch.tensor([[0.75, 0.25], [1.0, 0.0]])
    recent = torch.tensor([[[2, 2, 0], [3, 0, 0]], [[1, 0, 0], [0, 0, 0]]])
    g = torch.tensor([0.5, 0.4])
    out = copy_log_probs(logits, g, att, recent, W).exp()
    s = logits[0].softmax(-1)
    P0, P1 = float(s[1] + s[2]), float(s[3] + s[4])
    # row 0: friends had both categories; in each, half its mass goes to the friends' items of it
    want0 = torch.tensor([0.0, 0.5 * s[1], 0.5 * s[2] + 0.5 * P0, 0.5 * s[3] + 0.5 * P1, 0.5 * s[4]])
    # row 1: friends had only category 0 (item 1); category 1 keeps the softmax
    want1 = torch.tensor([0.0, 0.6 * s[1] + 0.4 * P0, 0.6 * s[2], s[3], s[4]])
    assert torch.allclose(out[0], want0, atol=1e-6) and torch.allclose(out[1], want1, atol=1e-6)
    assert torch.allclose(out.sum(-1), torch.ones(2), atol=1e-6)
    assert torch.allclose(out @ W, (s @ W).expand(2, -1), atol=1e-6)  # the category marginal is the softmax's


def _soft(h: torch.Tensor, E: torch.Tensor, y: int, neg: torch.Tensor | None) -> torch.Tensor:
    """[I+1] the softmax the loss reads for target y: over the catalogue, or (sampled) over [y, drawn items] with the
    drawn copies of y masked, put back at the items' indices."""
    if neg is None:
        return torch.cat([torch.zeros(1), (h @ E[1:].t()).softmax(-1)])  # index 0 is padding, never scored
    z = torch.cat([(h * E[y]).sum()[None], (h @ E[neg].t()).masked_fill(neg == y, float("-inf"))]).softmax(-1)
    return torch.zeros(len(E)).scatter_add_(0, torch.cat([torch.tensor([y]), neg]), z)


@pytest.mark.parametrize(("by_category", "n_negatives"), [(False, None), (True, None), (True, 15)])
def test_loss_is_minus_log_of_the_mixture(social_log, by_category, n_negatives):
    vocab, seqs, graph = social_log.vocab, social_log.seqs, social_log.graph  # tests/core/conftest.py
    model = _model(vocab, by_category=by_category)
    users = np.flatnonzero(np.diff(graph.offsets) > 0)[:6]
    lo, _hi, tl = _batch(seqs, graph, model, users)
    hi = seqs.offsets[users + 1] - 1
    batch, targets = train_batch(seqs, lo, hi)
    T = batch.items.shape[1]
    full = social_batch(seqs, lo, hi, T, tl, graph)
    batch.social = full.social
    with torch.no_grad():
        torch.manual_seed(7)
        loss = float(model.loss(batch, targets, n_negatives))
        torch.manual_seed(7)  # the items the sampled loss drew (its one random draw; eval mode, no dropout)
        neg = None if n_negatives is None else torch.randint(1, vocab.n_items + 1, (n_negatives,))
        enc = model.encode(batch)
        E = model.item_vectors()
        W = vocab.category_weights()
        assert bool(((W > 0).sum(1)[1:] == 1).all())  # one category per item
        total, n = 0.0, 0
        for b in range(len(users)):
            for t in range(T):
                y = int(targets[b, t])
                if y == 0:
                    continue
                soft = _soft(enc.states[b, t], E, y, neg)
                p = float(soft[y])
                g = float(enc.social_copy[b, t])
                q = torch.zeros(vocab.n_items + 1)
                for k in range(batch.social.recent.shape[2]):
                    items = [int(i) for i in batch.social.recent[b, t, k] if i > 0]
                    for i in items:
                        q[i] += float(enc.social_attention[b, t, k]) / len(items)
                if by_category:  # within y's category c: P_c (1 - g) p(y | c) + P_c g q(y | c)
                    c = int(W[y].argmax())
                    P_c, Q_c = float(soft @ W[:, c]), float(q @ W[:, c])
                    total -= math.log((1 - g) * p + g * float(q[y]) * P_c / Q_c if Q_c > 0 else p)
                else:
                    total -= math.log((1 - g) * p + g * float(q[y]))
                n += 1
            first = int(batch.items[b][batch.items[b] > 0][0])
            total -= math.log(float(_soft(model.empty, E, first, neg)[first]))
            n += 1
    assert float(enc.social_copy.max()) > 0.01  # the copy path is really used here
    assert math.isclose(loss, total / n, rel_tol=1e-5)


def test_a_copying_model_ranks_friends_recent_items_first(social_log):
    vocab, seqs, graph = social_log.vocab, social_log.seqs, social_log.graph  # tests/core/conftest.py
    model = _model(vocab, copy_bias=30.0)  # copy share ~1: the mixture is the friends' recent items
    users = np.arange(seqs.n_users)
    lo, hi, tl = _batch(seqs, graph, model, users)
    # and every user's first event alone: the earliest user of all has no friend with an event before it
    users = np.concatenate([users, users])
    lo, hi = np.concatenate([lo, seqs.offsets[:-1]]), np.concatenate([hi, seqs.offsets[:-1] + 1])
    batch = social_batch(seqs, lo, hi, CFG.max_len, tl, graph)
    with torch.no_grad():
        scores = model(batch)
        enc = model.encode(batch)
        plain = model.score(model.readout(enc, batch))
    friends_now = batch.social.present[:, -1].any(-1)
    assert bool(friends_now.any()) and bool((~friends_now).any())
    for b in range(len(users)):
        if not friends_now[b]:  # no friend before the step: exactly the plain logits
            assert torch.equal(scores[b], plain[b])
            continue
        q = np.zeros(vocab.n_items + 1)
        for k in range(batch.social.recent.shape[2]):
            items = [int(i) for i in batch.social.recent[b, -1, k] if i > 0]
            for i in items:
                q[i] += float(enc.social_attention[b, -1, k]) / len(items)
        top = set(np.flatnonzero(np.isclose(q, q.max(), rtol=1e-5)))
        assert int(scores[b].argmax()) in top
        # every recent item of a friend outranks every item no friend had lately
        assert float(scores[b, torch.from_numpy(q > 0)].min()) > float(scores[b, 1:][torch.from_numpy(q[1:] == 0)].max())


def test_branch_without_copy_path_keeps_its_weights_and_outputs(social_log):
    vocab, seqs, graph = social_log.vocab, social_log.seqs, social_log.graph  # tests/core/conftest.py
    torch.manual_seed(0)
    m = attach_branch(InterestModel(CFG, ModelSizes(vocab.n_items, len(vocab.categories), len(vocab.event_types)),
                                    vocab.category_weights()), copy=False).eval()  # fmt: skip
    assert not has_copy_weights(m.state_dict()) and has_copy_weights(_model(vocab).state_dict())
    lo, hi, tl = _batch(seqs, graph, m, np.arange(5))
    batch = social_batch(seqs, lo, hi, CFG.max_len, tl, graph)
    with torch.no_grad():
        enc = m.encode(batch)
        assert enc.social_copy is None
        assert torch.equal(m(batch), m.score(m.readout(enc, batch)))


def test_a_checkpoint_keeps_the_kind_of_copy_mixture(social_log, tmp_path):
    vocab = social_log.vocab
    for by_category in (False, True):
        m = _model(vocab, by_category=by_category)
        assert has_category_copy(m.state_dict()) is by_category
        save_checkpoint(tmp_path / str(by_category), m, vocab)
        loaded = load_checkpoint(tmp_path / str(by_category)).model
        assert loaded.social.by_category is by_category
        assert all(torch.equal(v, m.state_dict()[k]) for k, v in loaded.state_dict().items())


def test_target_category_masses_equal_the_dense_product_at_the_targets_categories():
    """The loss's category masses read only the targets' categories: equal to (softmax @ W) there, in value and
    gradient, with items of two categories (weights 0.5 / 0.5), an item without one and the padding item."""
    from core.model.social import target_category_masses

    W = torch.tensor([[0, 0, 0], [1, 0, 0], [0.5, 0.5, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0], [0, 0.5, 0.5]],
                     dtype=torch.float64)  # item 0 padding, item 5 without a category; fmt: skip
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(5, 7, dtype=torch.float64, generator=g)
    logits[:, 0] = float("-inf")
    x1 = logits.clone().requires_grad_(True)
    x2 = logits.clone().requires_grad_(True)
    y = torch.tensor([1, 2, 5, 6, 4])
    fast = target_category_masses(x1.log_softmax(-1), y, W)
    dense = x2.log_softmax(-1).exp() @ W
    need = W[y] > 0
    assert torch.allclose(fast[need], dense[need], atol=1e-12) and (fast[~need] == 0).all()
    assert need.sum() == 6  # rows 1 and 3 need two categories, row 2 (no category) none
    # by hand, row 0: P of category 0 = p1 + 0.5 p2
    p = logits[0].softmax(-1)
    assert float(fast[0, 0]) == pytest.approx(float(p[1] + 0.5 * p[2]), abs=1e-12)
    w = torch.randn(5, 3, dtype=torch.float64, generator=g) * need
    (fast * w).sum().backward()
    (dense * w).sum().backward()
    assert torch.allclose(x1.grad, x2.grad, atol=1e-12)
