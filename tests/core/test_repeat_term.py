"""The repeat term (core.model.repeat, `ModelConfig.repeat_term`): known answers on tiny histories."""

import json
import shutil

import numpy as np
import torch
import torch.nn.functional as F

from core.model import Batch, InterestModel, ModelConfig, ModelSizes, repeat

I, T = 12, 5


def make_model(**cfg) -> InterestModel:
    torch.manual_seed(0)
    sizes = ModelSizes(n_items=I)
    conf = ModelConfig(d_model=8, n_heads=2, n_layers=1, max_len=T, use_categories=False, **cfg)
    return InterestModel(conf, sizes).eval()


def make_batch(rows: list[list[int]]) -> Batch:
    items = torch.tensor(rows)
    z = torch.zeros_like(items)
    return Batch(items=items, gaps=z, event_types=z, context=z[..., None], mask=items > 0)


def dense_reference(items: torch.Tensor, present: torch.Tensor, w_seen: float, w_last: float) -> torch.Tensor:
    """The offsets written out by hand, one step at a time: [B,T,I+1]."""
    B, T = items.shape
    out = torch.zeros(B, T, I + 1)
    for b in range(B):
        for t in range(T):
            seen = {int(items[b, j]) for j in range(t + 1) if present[b, j]}
            at = [j for j in range(t + 1) if present[b, j]]
            last = int(items[b, at[-1]]) if at else None
            for v in seen:
                out[b, t, v] = w_seen + (w_last if v == last else 0.0)
    return out


def test_offsets_are_causal_count_duplicates_once_and_skip_absent_events():
    """Known answer: step t gets the items at present positions <= t only, each once, the read-out one extra."""
    items = torch.tensor([[0, 5, 7, 5, 9], [3, 3, 4, 6, 2]])
    present = items > 0
    present[1, 3] = False  # item 6 is absent: it counts for nothing, and step 3 reads out item 4
    model = make_model(repeat_term=True)
    with torch.no_grad():
        model.repeat.copy_(torch.tensor([-1.0, -2.0]))
    batch = make_batch(items.tolist())
    batch.mask = present
    idx, off = model.repeat_offsets(batch)  # [B,T,T]
    B = items.shape[0]
    got = repeat.add_full(torch.zeros(B * T, I + 1), idx.reshape(B * T, T), off.reshape(B * T, T))[:, 1:]
    want = dense_reference(items, present, -1.0, -2.0).reshape(B * T, I + 1)[:, 1:]
    assert torch.equal(got, want)
    # row 0, step 2 (history 5, 7): 5 seen -1, 7 seen and last -3, the later 9 untouched (causality)
    assert got[2, 4] == -1.0 and got[2, 6] == -3.0 and got[2, 8] == 0.0
    # row 0, step 3 re-reads 5: once, as seen and last (-3), not twice
    assert got[3, 4] == -3.0 and got[3, 6] == -1.0
    # row 1, step 3: the absent 6 gets nothing; 4 (the read-out event) gets -3
    assert got[T + 3, 5] == 0.0 and got[T + 3, 3] == -3.0


def test_a_negative_offset_ranks_a_seen_item_below_an_unseen_one_with_equal_base_score():
    model = make_model(repeat_term=True)
    with torch.no_grad():
        model.item_emb.weight[8] = model.item_emb.weight[2]  # items 2 and 8: the same vector, the same base score
        model.repeat.copy_(torch.tensor([-0.5, 0.0]))
    batch = make_batch([[1, 2, 3, 4, 5]])  # 2 seen, 8 not
    with torch.no_grad():
        base = model.score(model.readout(model.encode(batch), batch))[0]
        scores = model(batch)[0]
    assert base[2] == base[8]
    assert scores[2] == base[2] - 0.5 and scores[8] == base[8] and scores[2] < scores[8]
    assert torch.isinf(scores[0])


def test_zero_offsets_score_and_train_exactly_as_without_the_term():
    plain, term = make_model(), make_model(repeat_term=True)
    assert torch.equal(term.repeat, torch.zeros(2))  # starts at zero, drawing no random numbers
    for k, v in plain.state_dict().items():
        assert torch.equal(v, term.state_dict()[k])
    batch = make_batch([[0, 2, 3, 2, 5], [4, 4, 6, 7, 1]])
    targets = torch.roll(batch.items, -1, dims=1)
    targets[:, -1] = 0
    with torch.no_grad():
        assert torch.equal(plain(batch), term(batch))
        assert torch.allclose(plain.loss(batch, targets), term.loss(batch, targets), atol=1e-6)
        torch.manual_seed(3)
        a = plain.loss(batch, targets, n_negatives=7)
        torch.manual_seed(3)
        b = term.loss(batch, targets, n_negatives=7)  # the same negatives, sorted: the same loss
    assert torch.allclose(a, b, atol=1e-6)


def test_training_losses_use_the_offsets_of_each_step():
    """Known answer: both losses equal cross-entropy over the dense per-step logits + offsets, the sampled one
    with a seen item drawn more than once (every copy of a seen item gets its offset)."""
    model = make_model(repeat_term=True)
    with torch.no_grad():
        model.repeat.copy_(torch.tensor([-1.5, 0.7]))
    batch = make_batch([[0, 2, 3, 2, 5], [4, 4, 6, 7, 1]])
    targets = torch.tensor([[0, 3, 2, 5, 0], [4, 6, 7, 1, 0]])  # includes repeats (2, 4) as targets
    with torch.no_grad():
        states = model.encode(batch).states
        sel = targets > 0
        dense = states @ model.item_vectors().t() + dense_reference(batch.items, batch.mask, -1.5, 0.7)  # [B,T,I+1]
        h_empty = model.empty @ model.item_vectors().t()  # the first-event rows: no history, no offset
        first = torch.tensor([2, 4])
        logits = torch.cat([dense[sel], h_empty.expand(2, -1)])
        logits[:, 0] = float("-inf")
        y = torch.cat([targets[sel], first])
        assert torch.allclose(model.loss(batch, targets), F.cross_entropy(logits, y), atol=1e-5)
        torch.manual_seed(5)
        neg = torch.randint(1, I + 1, (11,))  # 11 draws over 12 items (fewer than I: the sampled path)
        torch.manual_seed(5)
        got = model.loss(batch, targets, n_negatives=11)
    seen = {2, 3, 4, 5, 6, 7, 1}
    assert any(int((neg == v).sum()) > 1 for v in seen)  # some seen item drawn twice: each copy gets its offset
    neg_logit = logits[:, neg].masked_fill(neg[None, :] == y[:, None], float("-inf"))
    want = F.cross_entropy(torch.cat([logits.gather(1, y[:, None]), neg_logit], 1), torch.zeros_like(y))
    assert torch.allclose(got, want, atol=1e-5)


def test_old_checkpoint_without_the_field_loads_as_before_and_a_term_round_trips(untrained_model_dir, tmp_path):
    from core.checkpoint import load_checkpoint, save_checkpoint
    from core.sequences import History
    from core.sequences import make_batch as history_batch

    old = tmp_path / "old"
    shutil.copytree(untrained_model_dir, old)
    cfg = json.loads((old / "config.json").read_text())
    cfg["model"].pop("repeat_term", None)  # what a checkpoint saved before the term looks like
    (old / "config.json").write_text(json.dumps(cfg))
    a, b = load_checkpoint(untrained_model_dir), load_checkpoint(old)
    assert b.config.repeat_term is False and b.model.repeat is None
    batch = history_batch([History.from_arrays([1, 2, 1, 3], [0, 60, 120, 180], k=len(a.vocab.context))], a.config.max_len,
                          n_context=len(a.vocab.context))
    with torch.no_grad():
        assert torch.equal(a.model(batch), b.model(batch))
    # a model with the term saves and loads its learned offsets
    m = InterestModel(ModelConfig(**{**a.config.to_dict(), "repeat_term": True}), a.sizes, a.model.item_cats)
    m.load_state_dict(a.model.state_dict(), strict=False)
    with torch.no_grad():
        m.repeat.copy_(torch.tensor([-2.0, 1.0]))
    c = load_checkpoint(save_checkpoint(tmp_path / "term", m.eval(), a.vocab))
    assert c.config.repeat_term is True and torch.equal(c.model.repeat, torch.tensor([-2.0, 1.0]))
    with torch.no_grad():
        assert torch.equal(c.model(batch), m(batch))


def test_explanations_explain_the_scores_with_the_repeat_term():
    """Known answer: the explained margin of a seen target over the last item equals the model's own scores under
    every subset of present events (both the present-events path and the masked full window)."""
    from core.contract import InterestScorer
    from core.explain.game import HistoryGame

    model = make_model(repeat_term=True)
    with torch.no_grad():
        model.repeat.copy_(torch.tensor([-1.0, -2.0]))
    window = make_batch([[2, 3, 2, 5, 6]])
    scorer = InterestScorer(model, [str(i) for i in range(1, I + 1)], T)
    game = HistoryGame(scorer, window, target=2, foil=6)
    rows = torch.rand(24, T, generator=torch.Generator().manual_seed(0)) < 0.6
    rows[0], rows[1] = True, False
    rows = rows.numpy()
    b = make_batch([[2, 3, 2, 5, 6]] * len(rows))
    b.mask = torch.from_numpy(rows)
    with torch.no_grad():
        s = model(b)
        want = (s[:, 2] - s[:, 6]).double().numpy()
        assert not torch.equal(s, model.score(model.readout(model.encode(b), b)))  # the term moves these scores
        logits = game.logits(b)
    np.testing.assert_allclose(game.event_values(rows), want, atol=1e-5)
    np.testing.assert_allclose((logits[:, 0] - logits[:, 1]).double().numpy(), want, atol=1e-5)
