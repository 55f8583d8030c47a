"""Which model goes with which database: a model trained on another database is refused when named and passed
over when the newest is picked, so nothing is recommended from (or written beside) the wrong data; a new
training drops the files derived from the weights it replaces."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
from typer.testing import CliRunner

from cli import app
from core.checkpoint import WEIGHT_DERIVED, model_for, save_checkpoint
from core.errors import UserInputError
from core.evaluate import EVAL_USERS_FILE
from core.ingest import ingest
from core.recommend import RECOMMENDATIONS_FILE
from core.semantic import VECTORS_FILE
from core.trajectory import DRIFT_FILE, VIEWS_FILE


@pytest.fixture(scope="module")
def other_db(tmp_path_factory):
    """A shop log whose item ids the tiny synthetic database (and its models) never had."""
    folder = tmp_path_factory.mktemp("other")
    rows = [(f"c{u}", f"SKU-{(u * 7 + k) % 40:03d}", 1_700_000_000 + u * 1000 + k * 60) for u in range(30) for k in range(8)]
    csv = folder / "shop.csv"
    pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]).to_csv(csv, index=False)
    db = folder / "shop.duckdb"
    ingest(db, "generic", csv)
    return db


def test_a_named_model_of_another_database_is_refused_and_writes_nothing(cli, other_db, trained_model_dir, tmp_path,
                                                                         monkeypatch, capsys):
    model = tmp_path / "m"
    shutil.copytree(trained_model_dir, model)
    before = sorted(p.name for p in model.iterdir())
    with pytest.raises(UserInputError, match="was trained on another database"):
        model_for(other_db, model)
    for args in (["recommend", "--user", "c1"], ["trajectory", "--user", "c1"], ["explain", "--user", "c1"],
                 ["drift"], ["evaluate"], ["fairness", "--n-boot", "10", "--no-trend"]):
        code, out, err = cli(*args, "--db", str(other_db), "--model", str(model), "--json")
        assert code == 1 and out == "", (args, out, err)
        assert err.startswith("error: The model at ") and "was trained on another database" in err, (args, err)
        assert len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in model.iterdir()) == before  # no drift / eval / recommendation file written


def test_the_default_model_is_the_newest_trained_on_this_database(synthetic_db, other_db, trained_model_dir,
                                                                   tmp_path, monkeypatch):
    root = tmp_path / "models"
    shutil.copytree(trained_model_dir, root / "synthetic")
    monkeypatch.delenv("INTERESTLENS_MODEL", raising=False)
    monkeypatch.setenv("INTERESTLENS_MODELS", str(root))
    assert model_for(synthetic_db, None) == root / "synthetic"
    with pytest.raises(Exception, match="None of the 1 models under .* was trained on"):
        model_for(other_db, None)
    r = CliRunner().invoke(app, ["train", "--db", str(other_db), "--out", str(root / "shop"), "--epochs", "1",
                                 "--max-len", "8", "--device", "cpu", "--json"])
    assert r.exit_code == 0, r.output
    assert model_for(other_db, None) == root / "shop"  # the newest
    assert model_for(synthetic_db, None) == root / "synthetic"  # not the newest: the newest is the shop's
    r = CliRunner().invoke(app, ["recommend", "--db", str(synthetic_db), "--user", "u003", "--k", "5", "--json"])
    assert r.exit_code == 0, r.output
    assert all(not it["item_id"].startswith("SKU-") for it in json.loads(r.stdout)["items"])


def test_training_again_drops_the_files_derived_from_the_old_weights(synthetic_db, trained_model_dir, tmp_path):
    out = tmp_path / "again"
    shutil.copytree(trained_model_dir, out)
    for name in (*WEIGHT_DERIVED, VECTORS_FILE):
        pd.DataFrame({"x": [1]}).to_parquet(out / name)
    assert set(WEIGHT_DERIVED) == {EVAL_USERS_FILE, RECOMMENDATIONS_FILE, DRIFT_FILE, VIEWS_FILE}
    r = CliRunner().invoke(app, ["train", "--db", str(synthetic_db), "--out", str(out), "--epochs", "1",
                                 "--max-len", "20", "--device", "cpu", "--json"])
    assert r.exit_code == 0, r.output
    left = {p.name for p in out.iterdir()}
    assert not left & set(WEIGHT_DERIVED)
    assert VECTORS_FILE in left  # text vectors depend on the item texts only
    r = CliRunner().invoke(app, ["fairness", "--db", str(synthetic_db), "--model", str(out), "--n-boot", "10",
                                 "--no-trend", "--json"])
    assert r.exit_code == 0, r.output


def test_save_checkpoint_keeps_derived_files_unless_told(trained_model_dir, tmp_path):
    from core.checkpoint import load_checkpoint

    out = tmp_path / "keep"
    shutil.copytree(trained_model_dir, out)
    pd.DataFrame({"x": [1]}).to_parquet(out / DRIFT_FILE)
    loaded = load_checkpoint(out)
    save_checkpoint(out, loaded.model, loaded.vocab, loaded.fingerprint, loaded.card)
    assert (out / DRIFT_FILE).exists()
    save_checkpoint(out, loaded.model, loaded.vocab, loaded.fingerprint, loaded.card, drop=WEIGHT_DERIVED)
    assert not (out / DRIFT_FILE).exists()


def test_one_models_root_for_training_forget_serve_and_the_app(synthetic_db, trained_model_dir, tmp_path, monkeypatch):
    from cli.commands.forget import model_dirs
    from cli.commands.serve import _model_env
    from cli.commands.train import _default_out
    from core.checkpoint import list_checkpoints, models_root
    from dashboard.cache import models_root as app_models_root

    named = tmp_path / "elsewhere" / "m"
    shutil.copytree(trained_model_dir, named)
    monkeypatch.chdir(tmp_path)
    rules = [
        ({}, tmp_path / "data" / "models"),  # nothing set: data/models under the working directory
        ({"INTERESTLENS_MODEL": str(named)}, named.parent),  # one model named: its folder
        ({"INTERESTLENS_MODEL": str(named), "INTERESTLENS_MODELS": str(tmp_path / "all")}, tmp_path / "all"),
    ]
    for env, root in rules:
        for key in ("INTERESTLENS_MODEL", "INTERESTLENS_MODELS"):
            monkeypatch.delenv(key, raising=False)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        assert models_root().resolve() == root, env
        assert app_models_root() == root, env
        assert _default_out(synthetic_db).resolve() == root / synthetic_db.stem, env
        assert _model_env(None)["INTERESTLENS_MODELS"] == str(root), env
        assert model_dirs(None) == ([named.resolve()] if env else [])  # the named model, and no other
        assert list_checkpoints() == ([named] if root == named.parent else []), env
    monkeypatch.delenv("INTERESTLENS_MODELS")
    monkeypatch.delenv("INTERESTLENS_MODEL")
    assert _model_env(named)["INTERESTLENS_MODELS"] == str(named.parent)  # serve --model: its folder too
