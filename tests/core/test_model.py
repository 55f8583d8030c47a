import torch

from core.model import Batch, InterestModel, ModelConfig, ModelSizes

B, T, I, C = 3, 12, 30, 4


def make_model(**cfg) -> InterestModel:
    torch.manual_seed(0)
    sizes = ModelSizes(n_items=I, n_categories=C, n_event_types=3, context_sizes=(2,))
    w = torch.zeros(I + 1, C)
    for i in range(1, I + 1):
        cats = [i % C, (i * 7) % C]
        for c in set(cats):
            w[i, c] = 1 / len(set(cats))
    model = InterestModel(ModelConfig(d_model=16, n_heads=2, n_layers=2, max_len=T, **cfg), sizes, w)
    return model.eval()


def make_batch(seed: int = 1) -> Batch:
    g = torch.Generator().manual_seed(seed)
    items = torch.randint(1, I + 1, (B, T), generator=g)
    items[0, :4] = 0  # left padding on the first row
    return Batch(
        items=items,
        gaps=torch.randint(0, 20, (B, T), generator=g),
        event_types=torch.randint(0, 4, (B, T), generator=g),
        context=torch.randint(0, 3, (B, T, 1), generator=g),
        mask=items > 0,
    )


def test_shapes():
    model, batch = make_model(), make_batch()
    with torch.no_grad():
        enc = model.encode(batch, return_attention=True)
        logits = model(batch)
    assert enc.states.shape == enc.long.shape == enc.short.shape == (B, T, 16)
    assert enc.gate.shape == (B, T) and bool(((enc.gate > 0) & (enc.gate < 1)).all())
    assert len(enc.attention) == 2 and enc.attention[0].shape == (B, 2, T, T)
    assert logits.shape == (B, I + 1) and torch.isinf(logits[:, 0]).all()
    # attention rows of present queries are distributions over present keys <= query
    att = enc.attention[0][1]  # [H,T,T]
    assert torch.allclose(att.sum(-1), torch.ones(2, T), atol=1e-6)
    assert float(att.triu(1).abs().sum()) == 0.0


def test_fast_and_explain_paths_agree():
    model, batch = make_model(), make_batch()
    with torch.no_grad():
        fast = model.encode(batch)
        slow = model.encode(batch, return_attention=True)
    for a, b in [(fast.states, slow.states), (fast.long, slow.long), (fast.gate, slow.gate)]:
        assert (a - b).abs().max().item() <= 1e-5


def test_causality_later_events_do_not_change_earlier_outputs():
    model, batch = make_model(), make_batch()
    changed = make_batch()
    changed.items[:, 8:] = (changed.items[:, 8:] % I) + 1
    changed.gaps[:, 8:] = 3
    with torch.no_grad():
        a, b = model.encode(batch), model.encode(changed)
    assert torch.allclose(a.states[:, :8], b.states[:, :8], atol=1e-6)
    assert torch.allclose(a.gate[:, :8], b.gate[:, :8], atol=1e-6)
    assert not torch.allclose(a.states[:, 8:], b.states[:, 8:], atol=1e-4)


def test_absent_event_has_no_influence():
    model, batch = make_model(), make_batch()
    batch.mask[:, 6] = False
    other = make_batch()
    other.mask[:, 6] = False
    other.items[:, 6] = (other.items[:, 6] % I) + 1  # change only the absent event's content
    other.event_types[:, 6] = 0
    with torch.no_grad():
        a, b = model.encode(batch), model.encode(other)
        ra, rb = model.readout(a, batch, per_step=True), model.readout(b, other, per_step=True)
    present = batch.mask.clone()
    assert torch.allclose(a.states[present], b.states[present], atol=1e-6)
    assert torch.allclose(ra, rb, atol=1e-6)
    # the readout at the absent step is the previous present step's state
    assert torch.allclose(ra[:, 6], a.states[:, 5], atol=1e-6)


def test_absent_last_event_reads_out_previous_state_and_empty_history_reads_empty():
    model, batch = make_model(), make_batch()
    with torch.no_grad():
        enc = model.encode(batch)
        full = model.readout(enc, batch)
        batch.mask[:, -1] = False
        enc2 = model.encode(batch)
        assert torch.allclose(model.readout(enc2, batch), enc.states[:, -2], atol=1e-6)
        assert not torch.allclose(model.readout(enc2, batch), full, atol=1e-4)
        batch.mask[:] = False
        out = model.readout(model.encode(batch), batch)
    assert torch.allclose(out, model.empty.expand_as(out))


def test_group_unknown_replaces_embeddings():
    model, batch = make_model(), make_batch()
    gp = torch.ones(B, 4, dtype=torch.bool)
    gp[:, 1] = False  # event types unknown
    batch.group_present = gp
    other = make_batch()
    other.event_types[:] = 0
    with torch.no_grad():
        assert torch.allclose(model(batch), model(other), atol=1e-5)


def test_loss_full_and_sampled_backpropagate():
    model, batch = make_model(), make_batch()
    model.train()
    targets = torch.roll(batch.items, -1, dims=1)
    targets[:, -1] = 0
    for n_neg in (None, 10):
        model.zero_grad()
        loss = model.loss(batch, targets, n_negatives=n_neg)
        loss.backward()
        assert torch.isfinite(loss) and model.item_emb.weight.grad.abs().sum() > 0


def test_empty_history_state_is_trained_on_first_events():
    model, batch = make_model(), make_batch()
    model.train()
    targets = torch.zeros_like(batch.items)  # no next-item targets at all: only the first events teach `empty`
    loss = model.loss(batch, targets)
    loss.backward()
    assert torch.isfinite(loss) and model.empty.grad is not None and model.empty.grad.abs().sum() > 0
    first = torch.tensor([batch.items[b][batch.mask[b]][0].item() for b in range(B)])
    logits = model.score(model.empty.detach())  # [I+1]
    expected = torch.nn.functional.cross_entropy(logits.expand(B, -1), first)
    assert torch.allclose(loss, expected, atol=1e-5)


def test_label_smoothing_spreads_the_target_mass_over_real_items_only():
    """Known answer: with smoothing s the loss is (1 - s) * NLL + s * mean over the I real items of -log p (the
    padding column gets no mass, so the loss stays finite); s = 0 is the plain cross-entropy."""
    batch = make_batch()
    targets = torch.zeros_like(batch.items)  # only the first events are targets: their state is `empty`
    first = torch.tensor([batch.items[b][batch.mask[b]][0].item() for b in range(B)])
    plain = make_model()
    smooth = make_model(label_smoothing=0.25)
    smooth.load_state_dict(plain.state_dict())
    logp = plain.score(plain.empty.detach())[1:].log_softmax(-1)  # [I] over the real items
    nll = -logp[first - 1]  # [B]
    expected = (0.75 * nll - 0.25 * logp.mean()).mean()
    with torch.no_grad():
        assert torch.allclose(plain.loss(batch, targets), nll.mean(), atol=1e-5)
        got = smooth.loss(batch, targets)
    assert torch.isfinite(got) and torch.allclose(got, expected, atol=1e-5)
