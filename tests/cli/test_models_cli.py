"""`interestlens models list` finds the models folder by the one rule of `core.checkpoint.models_root` (issue 20:
one `models_root()`): $INTERESTLENS_MODELS, else the folder of $INTERESTLENS_MODEL, else data/models."""

from __future__ import annotations

import json
import shutil

from core.checkpoint import models_root


def _names(cli, *args: str) -> list[str]:
    code, out, err = cli("models", "list", *args, "--json")
    assert code == 0, err
    return sorted(m["name"] for m in json.loads(out)["models"])


def test_models_list_shows_the_siblings_of_the_named_model_as_the_app_does(cli, untrained_model_dir, tmp_path,
                                                                          monkeypatch):
    root = tmp_path / "elsewhere"
    for name in ("mine", "other"):
        shutil.copytree(untrained_model_dir, root / name)
    (tmp_path / "data" / "models").mkdir(parents=True)  # the fallback folder, empty: a second rule would read it
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("INTERESTLENS_MODELS", raising=False)
    monkeypatch.setenv("INTERESTLENS_MODEL", str(root / "mine"))
    assert models_root() == root
    assert _names(cli) == ["mine", "other"]
    monkeypatch.setenv("INTERESTLENS_MODELS", str(tmp_path / "data" / "models"))  # the folder variable wins
    assert _names(cli) == []
    assert _names(cli, "--models", str(root)) == ["mine", "other"]  # and the flag wins over both
