"""Interests in words and users found by a free-text query (core.semantic.describe, search_users)."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import numpy as np
import pytest
import torch

from core.checkpoint import load_checkpoint
from core.errors import NotFoundError, UserInputError
from core.model import InterestModel, ModelConfig, ModelSizes
from core.semantic import (
    TextVectors,
    catalogue_centre,
    current_interest_text,
    describe_user,
    encode_items,
    interest_text,
    search_users,
    words_for,
)
from core.sequences import load_sequences
from core.store import connect_read


def test_interest_text_is_the_normalised_expectation_of_item_texts():
    """Three items, D = 2, worked by hand: logits (ln 2, 0, −ln 2) -> p = (4, 2, 1)/7."""
    model = InterestModel(ModelConfig(d_model=2, n_heads=1, n_layers=1, max_len=4), ModelSizes(n_items=3))
    with torch.no_grad():
        model.item_emb.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]))
    item_text = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])  # [I+1, d]
    u = interest_text(model, torch.tensor([[np.log(2.0), 0.0]], dtype=torch.float32), item_text)
    # p = (4/7, 2/7, 1/7); u ∝ (4/7, 3/7) -> (0.8, 0.6)
    assert np.allclose(u, [[0.8, 0.6]], atol=1e-6)


def test_opposite_tastes_get_different_words_relative_to_the_catalogue():
    """Eight items of genre A (text e1), two of genre B (text e2); one user leans a little to A, the other a little to
    B. Both interests are spread over the whole catalogue, so their absolute text vectors sit near its A-heavy
    centre and both read "A"; relative to the catalogue, the first reads "A" and the second "B"."""
    model = InterestModel(ModelConfig(d_model=2, n_heads=1, n_layers=1, max_len=4), ModelSizes(n_items=10))
    a, b = [1.0, 0.0], [0.0, 1.0]
    with torch.no_grad():
        model.item_emb.weight.copy_(torch.tensor([[0.0, 0.0]] + [a] * 8 + [b] * 2))
    item_text = torch.tensor([[0.0, 0.0]] + [a] * 8 + [b] * 2)  # [I+1, d]
    ids = [f"i{n}" for n in range(1, 11)]
    tv = TextVectors(ids, ["A film"] * 8 + ["B film"] * 2, item_text[1:].numpy().astype(np.float32), ["A", "B"],
                     np.eye(2, dtype=np.float32), "hand-made", "f")
    states = torch.tensor([[0.1, 0.0], [0.0, 0.1]])  # leans to A, leans to B
    centre = catalogue_centre(item_text)
    assert torch.allclose(centre, torch.tensor([0.8, 0.2]))
    absolute = interest_text(model, states, item_text)
    relative = interest_text(model, states, item_text, centre)
    assert [words_for(u, tv, 1)[0][0].key for u in absolute] == ["A", "A"]  # the same words for opposite users
    assert [words_for(u, tv, 1)[0][0].key for u in relative] == ["A", "B"]
    # the relative vector of the A-leaning user by hand: p(A item) = e^0.1 / (8 e^0.1 + 2), expectation minus centre
    pa = np.exp(0.1) / (8 * np.exp(0.1) + 2)
    r = np.array([8 * pa - 0.8, 2 * (1 - 8 * pa) / 2 - 0.2])
    assert np.allclose(relative[0], r / np.linalg.norm(r), atol=1e-5)


@pytest.fixture(scope="module")
def setup(semantic_db, text_model_dir):
    tv = encode_items(semantic_db, encoder_name="tiny-test-encoder")
    loaded = load_checkpoint(text_model_dir)
    with connect_read(semantic_db) as con:
        seqs = load_sequences(con, loaded.vocab)
    return tv, loaded, seqs


def _recent_top_category(loaded, history) -> str:
    counts = Counter(c for i in history.items[-10:] if i for c in loaded.vocab.item_categories[i - 1])
    return loaded.vocab.categories[counts.most_common(1)[0][0]]


def test_describe_user_points_end_at_the_current_interest(setup):
    tv, loaded, seqs = setup
    user = str(seqs.user_ids[0])
    n = len(seqs.history(0))
    words = describe_user(loaded, tv, seqs, user, points=4, k=3)
    steps = [p.step for p in words.points]
    assert words.n_events == n and steps == sorted(steps) and steps[-1] == n - 1 and len(steps) == 4
    last_ts = int(seqs.history(0).ts[-1])
    assert words.current.ts == dt.datetime(1970, 1, 1) + dt.timedelta(seconds=last_ts)  # naive UTC
    for p in words.points:
        assert len(p.terms) == 3 and len(p.items) == 3
        assert [m.score for m in p.terms] == sorted((m.score for m in p.terms), reverse=True)
        assert all(m.key in tv.terms for m in p.terms)
    assert words.current.summary == ", ".join(m.key for m in words.current.terms)
    explicit = describe_user(loaded, tv, seqs, user, steps=[0, n - 1], k=2)
    assert [p.step for p in explicit.points] == [0, n - 1]
    alone = describe_user(loaded, tv, seqs, user, points=1, k=2).current.terms
    assert [m.key for m in explicit.current.terms] == [m.key for m in alone]
    assert [m.score for m in explicit.current.terms] == pytest.approx([m.score for m in alone], abs=1e-5)
    with pytest.raises(UserInputError):
        describe_user(loaded, tv, seqs, user, steps=[n])
    with pytest.raises(NotFoundError):
        describe_user(loaded, tv, seqs, "no-such-user")


def test_current_interest_in_words_names_the_users_recent_category(setup):
    tv, loaded, seqs = setup
    u = current_interest_text(loaded, tv, seqs)  # [U, d]
    hits = []
    for r in range(seqs.n_users):
        terms, _ = words_for(u[r], tv, k=1)
        hits.append(terms[0].key == _recent_top_category(loaded, seqs.history(r)))
    first = describe_user(loaded, tv, seqs, str(seqs.user_ids[0]), points=1, k=1).current.terms[0]
    assert first.key == words_for(u[0], tv, k=1)[0][0].key
    assert np.mean(hits) > 2 / len(loaded.vocab.categories)  # chance is 1/C


def test_search_users_finds_users_whose_current_interest_matches(setup, tiny_text_encoder):
    tv, loaded, seqs = setup
    u = current_interest_text(loaded, tv, seqs)  # [U, d]
    assert u.shape == (seqs.n_users, tv.dim) and np.allclose(np.linalg.norm(u, axis=1), 1, atol=1e-5)
    category = loaded.vocab.categories[0]
    found = search_users(loaded, tv, seqs, category, tiny_text_encoder, k=10)
    assert len(found) == 10 and [f.score for f in found] == sorted((f.score for f in found), reverse=True)
    q = tiny_text_encoder.encode([category])[0]
    best = int(np.argmax(u @ q))
    assert found[0].user_id == str(seqs.user_ids[best])
    rows = [seqs.row(f.user_id) for f in found]
    share = np.mean([_recent_top_category(loaded, seqs.history(r)) == category for r in rows])
    base = np.mean([_recent_top_category(loaded, seqs.history(r)) == category for r in range(seqs.n_users)])
    assert share > base  # the matched users lean to the category more than users at large


def test_a_match_is_explained_by_its_own_terms_nearest_to_the_query():
    from core.semantic import match_reasons

    terms = ["War", "Sci-Fi", "Romance"]
    term_vectors = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32)
    texts = ["Star Wars. Sci-Fi, War", "Warm Hearts. Romance", "Plain"]
    tv = TextVectors(["s", "w", "p"], texts, np.eye(3, dtype=np.float32), terms, term_vectors, "hand-made", "f")
    query = np.array([0.6, 0.8, 0.0])  # closer to Sci-Fi than to War; nothing of Romance
    s, w, p = match_reasons(tv, query, ["s", "w", "p"])
    assert [t for t, _ in s.terms] == ["Sci-Fi", "War"] and s.terms[0][1] == pytest.approx(0.8)
    assert [t for t, _ in w.terms] == ["Romance"]  # "War" inside "Warm" is not the term War
    assert p.terms == () and p.text() == "its wording as a whole"
    assert s.text() == "near “Sci-Fi” (0.80), “War” (0.60)"
