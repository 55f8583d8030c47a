"""core.semantic: item texts, the Parquet vector cache, and nearest-neighbour search (tiny real encoder)."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import InterestLensError, NotFoundError, UserInputError
from core.semantic import (
    compose_text,
    default_vectors_path,
    encode_items,
    item_texts,
    nearest,
    read_vectors,
    search_items,
    similar_items,
)
from core.store import connect_read, connect_write


def _never_load():
    raise AssertionError("the encoder was loaded although the cache was up to date")


def test_compose_text_orders_title_categories_and_text_attributes():
    text = compose_text(
        "Toy Story (1995)",
        ["Animation", "Comedy"],
        {"tags": "pixar| toys ,friendship", "description": "Toys come alive.", "zip": "12345", "release_year": "1995"},
    )
    assert text == "Toy Story (1995). Animation, Comedy. Tags: pixar, toys, friendship. Year: 1995. Toys come alive"
    assert compose_text(None, [], {}) == ""


def test_item_texts_cover_every_item_and_collect_terms(synthetic_db):
    with connect_read(synthetic_db) as con:
        texts = item_texts(con)
        n_items, title, cats = con.execute(
            "SELECT (SELECT count(*) FROM items), title, categories FROM items WHERE item_id = ?", [texts.item_ids[0]]
        ).fetchall()[0]
    assert len(texts.item_ids) == len(texts.texts) == n_items == 150
    assert texts.item_ids == sorted(texts.item_ids)
    assert texts.texts[0] == f"{title}. {', '.join(cats)}"
    assert len(texts.terms) == 6  # the six synthetic category names
    assert texts.fingerprint("a") != texts.fingerprint("b")


def test_vectors_are_cached_and_recomputed_only_for_changed_texts(writable_db, tiny_text_encoder, tmp_path):
    enc = tiny_text_encoder
    path = tmp_path / "vectors" / "text_vectors.parquet"
    first = encode_items(writable_db, enc, path)
    with connect_read(writable_db) as con:
        n_texts = len(set(item_texts(con).texts)) + 6
    assert first.encoded == enc.texts_encoded == n_texts  # every distinct text once
    assert first.vectors.shape == (150, enc.dim) and path.exists()
    assert np.allclose(np.linalg.norm(first.vectors, axis=1), 1.0, atol=1e-5)

    again = encode_items(writable_db, _never_load, path, encoder_name=enc.name)
    assert again.encoded == 0 and enc.texts_encoded == n_texts
    assert again.fingerprint == first.fingerprint
    assert np.array_equal(again.vectors, first.vectors) and again.item_ids == first.item_ids

    changed = first.item_ids[3]
    with connect_write(writable_db) as con:
        con.execute("UPDATE items SET title = ? WHERE item_id = ?", ["Lunar Rover Expedition", changed])
    third = encode_items(writable_db, enc, path)
    assert third.encoded == 1 and enc.texts_encoded == n_texts + 1
    assert third.fingerprint != first.fingerprint
    r = third.row(changed)
    assert np.allclose(third.vectors[r], enc.encode([third.texts[r]])[0], atol=1e-6)
    others = [n for n in range(150) if n != r]
    assert np.array_equal(third.vectors[others], first.vectors[others])
    assert read_vectors(path).fingerprint == third.fingerprint  # the cache on disk was updated


def test_another_encoder_re_encodes_everything(writable_db, tiny_text_encoder, tmp_path):
    path = tmp_path / "v.parquet"
    first = encode_items(writable_db, tiny_text_encoder, path)
    other = type(tiny_text_encoder)(seed=1)
    other.name = "tiny-test-encoder-2"
    second = encode_items(writable_db, other, path)
    assert second.encoded == first.encoded == other.texts_encoded
    assert second.encoder == "tiny-test-encoder-2" and second.fingerprint != first.fingerprint
    assert not np.allclose(second.vectors, first.vectors)


def test_default_cache_lives_beside_the_database_not_in_it(writable_db, tiny_text_encoder):
    tv = encode_items(writable_db, tiny_text_encoder)
    path = default_vectors_path(writable_db)
    assert path == writable_db.parent / (writable_db.name + ".semantic") / "text_vectors.parquet"
    assert path.exists() and read_vectors(path).item_ids == tv.item_ids
    with connect_read(writable_db) as con:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert not any("vector" in t or "text" in t for t in tables)


def test_damaged_or_missing_cache_gives_a_clear_error(tmp_path):
    with pytest.raises(NotFoundError, match="There are no text vectors at") as missing:
        read_vectors(tmp_path / "none.parquet")
    assert missing.value.next_step == "encode_texts" and "interestlens" not in str(missing.value)
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(InterestLensError, match="damaged"):
        read_vectors(bad)


def _add_items(db, rows):
    with connect_write(db) as con:
        for item_id, title, cats in rows:
            con.execute("INSERT INTO items VALUES (?, ?, ?, MAP {})", [item_id, title, cats])


def test_search_returns_the_planted_neighbour(writable_db, tiny_text_encoder, tmp_path):
    _add_items(
        writable_db,
        [
            ("planted-a", "Lunar Rover Expedition", ["Space"]),
            ("planted-b", "Rover Expedition to the Lunar Highlands", ["Space"]),
            ("decoy-1", "Deep Sea Submarine Voyage", ["Ocean"]),
            ("decoy-2", "Copper Kettle for Loose Leaf Tea", ["Kitchen"]),
        ],
    )
    tv = encode_items(writable_db, tiny_text_encoder, tmp_path / "v.parquet")
    near = similar_items(tv, "planted-a", k=3)
    assert near[0].key == "planted-b"
    assert near[0].score > near[1].score and all(m.key != "planted-a" for m in near)
    hits = search_items(tv, "an expedition with a lunar rover", tiny_text_encoder, k=2)
    assert {hits[0].key, hits[1].key} == {"planted-a", "planted-b"}
    assert hits[0].text.startswith(("Lunar Rover", "Rover Expedition"))
    with pytest.raises(UserInputError):
        search_items(tv, "   ", tiny_text_encoder)
    with pytest.raises(NotFoundError):
        similar_items(tv, "no-such-item")


def test_nearest_skips_excluded_and_empty_rows_and_breaks_ties_by_row():
    v = np.array([[1, 0], [0, 0], [1, 0], [0.6, 0.8]], np.float32)
    rows, sims = nearest(v, np.array([1, 0], np.float32), k=3, exclude=np.array([0]))
    assert rows.tolist() == [2, 3] and np.allclose(sims, [1.0, 0.6])
    rows, _ = nearest(v, np.array([1, 0], np.float32), k=2)
    assert rows.tolist() == [0, 2]


def test_query_encoder_must_match_the_vectors(writable_db, tiny_text_encoder, tmp_path):
    tv = encode_items(writable_db, tiny_text_encoder, tmp_path / "v.parquet")
    tv.encoder = "another-encoder"
    with pytest.raises(InterestLensError, match="encode the items again"):
        search_items(tv, "kettle", tiny_text_encoder)
