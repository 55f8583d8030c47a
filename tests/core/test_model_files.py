"""One rule picks a model folder's identifying file (`core.model_files`): the weights, else an external model's
registration. The checkpoint's content hash, the registry's folder list and the dashboard's model reference all
follow it, and the module loads without torch."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from core.checkpoint import weights_fingerprint
from core.external import model_folders
from core.model_files import EXTERNAL_FILE, WEIGHTS_FILE, is_model, model_file

ROOT = Path(__file__).resolve().parents[2]


def _blake(path: Path) -> str:
    return hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()


def test_the_weights_win_and_a_registration_alone_names_an_external_model(tmp_path):
    ours, external, both, empty, odd = (tmp_path / n for n in ("ours", "external", "both", "empty", "odd"))
    for d in (ours, external, both, empty, odd):
        d.mkdir()
    (ours / WEIGHTS_FILE).write_bytes(b"weights")
    (external / EXTERNAL_FILE).write_text('{"kind": "onnx"}')
    (both / WEIGHTS_FILE).write_bytes(b"weights")
    (both / EXTERNAL_FILE).write_text('{"kind": "onnx"}')
    (odd / WEIGHTS_FILE).mkdir()  # a folder with the weights' name is no weights file
    assert [model_file(d).name for d in (ours, external, both, empty, odd)] == [
        "model.safetensors", "external.json", "model.safetensors", "external.json", "external.json"]
    assert [is_model(d) for d in (ours, external, both, empty, odd)] == [True, True, True, False, False]
    assert model_folders(tmp_path) == [both, external, ours]  # by name; the empty and odd folders hold no model


def test_the_content_hash_and_the_apps_model_reference_read_the_same_file(tmp_path):
    from dashboard.cache.handles import model_ref

    folder = tmp_path / "m"
    folder.mkdir()
    (folder / EXTERNAL_FILE).write_text('{"kind": "entry"}')
    assert weights_fingerprint(folder) == model_ref(folder).stamp == _blake(folder / EXTERNAL_FILE)
    (folder / WEIGHTS_FILE).write_bytes(b"new weights")  # weights appear: they are the model's identity now
    assert weights_fingerprint(folder) == model_ref(folder).stamp == _blake(folder / WEIGHTS_FILE)


def test_the_rule_loads_without_torch():
    code = "import sys, core.model_files; assert 'torch' not in sys.modules and 'duckdb' not in sys.modules"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert done.returncode == 0, done.stderr
