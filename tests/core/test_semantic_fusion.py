"""Text vectors fused into the interest model: attached by index, trained, saved and loaded back identically, and new
items (no training events) represented by their text alone."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from core.checkpoint import load_checkpoint, save_checkpoint
from core.errors import InterestLensError
from core.model import InterestModel, ModelConfig, ModelSizes
from core.semantic import (
    VECTORS_FILE,
    attach_text,
    encode_items,
    extend_catalogue,
    interest_states,
    read_vectors,
    text_config,
)
from core.sequences import build_vocab, load_sequences
from core.store import connect_read

SMALL = dict(d_model=32, n_layers=2, n_heads=2, max_len=50, dropout=0.1)  # as the text_model_dir fixture


def _sizes(vocab) -> ModelSizes:
    return ModelSizes(vocab.n_items, len(vocab.categories), len(vocab.event_types), tuple(len(v) for v in vocab.context.values()))


def test_attach_text_puts_each_items_vector_at_its_model_index(semantic_db):
    tv = encode_items(semantic_db, encoder_name="tiny-test-encoder")
    with connect_read(semantic_db) as con:
        vocab = build_vocab(con)
    model = InterestModel(text_config(ModelConfig(**SMALL), tv), _sizes(vocab), vocab.category_weights())
    assert attach_text(model, vocab, tv) == vocab.n_items
    assert float(model.item_text[0].abs().sum()) == 0.0
    for item_id in (vocab.items[0], vocab.items[17], vocab.items[-1]):
        got = model.item_text[vocab.item_index(item_id)].numpy()
        assert np.array_equal(got, tv.vectors[tv.row(item_id)])
    plain = InterestModel(ModelConfig(**SMALL), _sizes(vocab), vocab.category_weights())
    with pytest.raises(InterestLensError, match="no text input"):
        attach_text(plain, vocab, tv)


def test_fused_model_trains_and_loads_back_identically(semantic_db, text_model_dir, tmp_path):
    tv = read_vectors(text_model_dir / VECTORS_FILE)
    loaded = load_checkpoint(text_model_dir)
    assert loaded.config.text_dim == tv.dim == 32
    assert np.array_equal(loaded.model.item_text.numpy(), tv.aligned(loaded.vocab.items))
    torch.manual_seed(0)  # train() seeds the initial weights with TrainConfig.seed = 0
    init = InterestModel(loaded.config, loaded.sizes, loaded.vocab.category_weights())
    assert not torch.allclose(init.text_proj.weight, loaded.model.text_proj.weight)  # the projection was trained
    assert loaded.card["test"]["HR@10"] > 0

    with connect_read(semantic_db) as con:
        seqs = load_sequences(con, loaded.vocab)
    histories = [seqs.history(r) for r in range(20)]
    copy = load_checkpoint(save_checkpoint(tmp_path / "copy", loaded.model, loaded.vocab))
    with torch.no_grad():
        a = loaded.model.score(interest_states(loaded, histories))
        b = copy.model.score(interest_states(copy, histories))
    assert torch.equal(a, b)
    assert all(torch.equal(v, copy.model.state_dict()[k]) for k, v in loaded.model.state_dict().items())


def test_new_items_are_scored_from_their_text_alone(semantic_db, text_model_dir, untrained_model_dir):
    tv = encode_items(semantic_db, encoder_name="tiny-test-encoder")
    loaded = load_checkpoint(text_model_dir)
    known = loaded.vocab.items[0]  # already in the catalogue: ignored
    tv2 = _with_new(tv, "brand-new", tv.item_ids[5])
    grown = extend_catalogue(loaded, ["brand-new", known, "not-in-the-store"], tv2, [["Books"], ["Books"], []])
    n = loaded.vocab.n_items
    assert grown.vocab.n_items == n + 2 and grown.vocab.items[n:] == ["brand-new", "not-in-the-store"]
    assert grown.vocab.item_categories[n] == [loaded.vocab.categories.index("Books")]
    with connect_read(semantic_db) as con:
        seqs = load_sequences(con, loaded.vocab)
    histories = [seqs.history(r) for r in range(30)]
    with torch.no_grad():
        old = loaded.model.score(interest_states(loaded, histories))  # [U, n+1]
        states = interest_states(grown, histories)
        new = grown.model.score(states)  # [U, n+3]
        expected = states @ grown.model.text_proj(grown.model.item_text[n + 1])  # text alone, no own embedding
    assert torch.allclose(new[:, : n + 1], old, atol=1e-5)  # old items score as before
    assert torch.allclose(new[:, n + 1], expected, atol=1e-5)
    assert torch.all(new[:, n + 2] == 0)  # no text and no embedding: nothing to score it by

    plain = load_checkpoint(untrained_model_dir)  # a model without text: every new item scores the same
    grown_plain = extend_catalogue(plain, ["x", "y"])
    with torch.no_grad():
        s = grown_plain.model.score(interest_states(grown_plain, histories[:5]))
    assert torch.equal(s[:, -1], s[:, -2])


def _with_new(tv, new_id: str, like: str):
    """The vectors plus `new_id` carrying a copy of item `like`'s text vector."""
    from dataclasses import replace

    r = tv.row(like)
    return replace(tv, item_ids=[*tv.item_ids, new_id], texts=[*tv.texts, tv.texts[r]],
                   vectors=np.concatenate([tv.vectors, tv.vectors[r : r + 1]]))


def test_held_out_category_items_go_to_users_of_that_category(semantic_db, text_model_dir, tiny_text_encoder):
    """New items whose text names one category score highest for users whose recent events are in it."""
    from dataclasses import replace

    tv = encode_items(semantic_db, encoder_name="tiny-test-encoder")
    loaded = load_checkpoint(text_model_dir)
    cats = loaded.vocab.categories
    ids = [f"new-{c}" for c in cats]
    texts = [f"New Arrival. {c}" for c in cats]
    tv2 = replace(tv, item_ids=tv.item_ids + ids, texts=tv.texts + texts,
                  vectors=np.concatenate([tv.vectors, tiny_text_encoder.encode(texts)]))
    grown = extend_catalogue(loaded, ids, tv2, [[c] for c in cats])
    with connect_read(semantic_db) as con:
        seqs = load_sequences(con, loaded.vocab)
    n = loaded.vocab.n_items
    histories = [seqs.history(r) for r in range(seqs.n_users)]
    with torch.no_grad():
        scores = grown.model.score(interest_states(grown, histories))[:, n + 1 :]  # [U, C] the new items
    agree = []
    for h, s in zip(histories, scores, strict=True):
        recent = Counter(c for i in h.items[-10:] if i for c in loaded.vocab.item_categories[i - 1])
        agree.append(int(s.argmax()) == recent.most_common(1)[0][0])
    assert np.mean(agree) > 2 / len(cats)  # chance is 1/C


def test_text_id_dropout_scores_items_by_text_alone_in_training_only():
    sizes = ModelSizes(n_items=40)
    torch.manual_seed(0)
    model = InterestModel(ModelConfig(**SMALL, text_dim=8, text_id_dropout=1.0), sizes)
    with torch.no_grad():
        model.item_text.copy_(torch.randn(41, 8))
        text_part = model.text_proj(model.item_text)  # [I+1, D]
        model.train()
        assert torch.equal(model.item_vectors(), text_part)  # every own embedding dropped
        model.eval()
        assert torch.equal(model.item_vectors(), model.item_emb.weight + text_part)  # never at inference
        model.config = ModelConfig(**SMALL, text_dim=8, text_id_dropout=0.25)
        model.train()
        torch.manual_seed(1)
        w = model.item_vectors()
        dropped = torch.isclose(w, text_part, atol=0).all(1)[1:]  # row 0 (padding) has a zero embedding anyway
        assert 0 < int(dropped.sum()) < 40  # some items by text alone, the others with their own embedding
        kept = ~dropped
        assert torch.equal(w[1:][kept], (model.item_emb.weight + text_part)[1:][kept])
