"""The fairness inputs saved beside the model (core.fairness.saved): read back instead of scoring every user, the
same report either way, and never used once the database or the weights changed."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from core.fairness import fairness_report, load_inputs, save_inputs
from core.fairness.saved import SAVED_DIR, SAVED_K


@pytest.fixture
def model_copy(trained_model_dir, tmp_path):
    out = tmp_path / "model"
    shutil.copytree(trained_model_dir, out)
    return out


def _as_text(report) -> str:
    """The whole report as JSON text (NaN compares equal to NaN there), trend windows included."""
    return json.dumps(report.to_dict(), default=str, sort_keys=True)


def test_saved_inputs_are_read_back_and_give_the_same_report(synthetic_db, model_copy):
    fresh = load_inputs(synthetic_db, model_copy, k=10)  # nothing saved: computed, and the notes say so
    assert len(fresh.notes) == 2 and not (model_copy / SAVED_DIR).exists()
    want = fairness_report(fresh.inputs, k=10, n_boot=20, recommend_fn=fresh.recommend_fn, freq="quarter")

    save_inputs(synthetic_db, model_copy, freqs=("quarter",))
    files = sorted(p.name for p in (model_copy / SAVED_DIR).iterdir())
    assert {"key.json", "recommendations.parquet", "eval_users.parquet"} <= set(files)
    assert any(f.startswith("trend-") for f in files)
    assert int(pd.read_parquet(model_copy / SAVED_DIR / "recommendations.parquet")["rank"].max()) == SAVED_K

    calls = []
    again = load_inputs(synthetic_db, model_copy, k=10)
    assert again.notes == []  # nothing computed
    inner = again.recommend_fn
    again.recommend_fn = lambda h, k: calls.append(len(h)) or inner(h, k)
    got = fairness_report(again.inputs, k=10, n_boot=20, recommend_fn=again.recommend_fn, freq="quarter")
    pd.testing.assert_frame_equal(again.inputs.recs, fresh.inputs.recs)
    pd.testing.assert_frame_equal(again.inputs.eval_users, fresh.inputs.eval_users)
    assert _as_text(got) == _as_text(want) and len(got.over_time) >= 2
    assert len(calls) == len(got.over_time)  # every window read its saved lists (the model was not asked)
    # a shorter K is a cut of the saved top-20
    five = load_inputs(synthetic_db, model_copy, k=5)
    assert five.notes == [] and int(five.inputs.recs["rank"].max()) == 5


def test_a_changed_database_or_retrained_weights_never_read_the_saved_inputs(synthetic_db, model_copy, tmp_path):
    from safetensors.torch import load_file, save_file

    from core.checkpoint import FORMAT
    from core.store import connect_write

    save_inputs(synthetic_db, model_copy, freqs=())
    assert load_inputs(synthetic_db, model_copy, k=10).notes == []

    db = tmp_path / "later.duckdb"  # one more event for one user: the saved lists are stale
    shutil.copy(synthetic_db, db)
    with connect_write(db) as con:
        con.execute("""INSERT INTO events (user_id, item_id, ts, event_type, value, context, run_id, seq)
                       SELECT user_id, item_id, ts + INTERVAL 1 HOUR, event_type, value, context, run_id, seq + 1
                       FROM events ORDER BY run_id DESC, seq DESC LIMIT 1""")
    later = load_inputs(db, model_copy, k=10)
    assert len(later.notes) == 2

    key = json.loads((model_copy / SAVED_DIR / "key.json").read_text())
    weights = load_file(str(model_copy / "model.safetensors"))  # "retrained": the same shapes, other weights
    name = next(iter(weights))
    weights[name] = weights[name] + 0.5
    save_file(weights, str(model_copy / "model.safetensors"), metadata={"format": str(FORMAT)})
    retrained = load_inputs(synthetic_db, model_copy, k=10, save=True)
    assert len(retrained.notes) == 2
    new_key = json.loads((model_copy / SAVED_DIR / "key.json").read_text())
    assert new_key["weights_sha256"] != key["weights_sha256"] and new_key["events"] == key["events"]


def test_external_models_are_keyed_by_their_files_and_entry_points_never_saved(tmp_path):
    """An ONNX / TorchScript model has no model.safetensors: its key hashes its registration, model file and item
    map (a changed file changes the key); a Python entry point's code lives outside the folder, so nothing is saved
    or read for it."""
    from core.fairness.saved import SavedInputs, _weights_sha

    onnx = tmp_path / "onnx"
    onnx.mkdir()
    (onnx / "external.json").write_text(json.dumps({"kind": "onnx", "file": "model.onnx"}))
    (onnx / "model.onnx").write_bytes(b"first")
    (onnx / "items.csv").write_text("item_id\na\n")
    first = _weights_sha(onnx)
    assert first is not None and first == _weights_sha(onnx)
    (onnx / "model.onnx").write_bytes(b"second")
    assert _weights_sha(onnx) not in (None, first)

    entry = tmp_path / "entry"
    entry.mkdir()
    (entry / "external.json").write_text(json.dumps({"kind": "entry", "entry": "pkg.mod:factory"}))
    assert _weights_sha(entry) is None
    saved = SavedInputs.open(entry, {"weights_sha256": None})
    assert not saved.write("recommendations", pd.DataFrame({"user_id": ["u"], "item_id": ["a"], "rank": [1]}))
    assert not saved.valid() and saved.read("recommendations") is None
    assert not (entry / "fairness_inputs").exists()
