"""The app as a whole: every page opens without an exception, and the states without data each get a message with
a way forward (no database, an empty database, no model, an unknown user)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from dashboard_helpers import APP, TIMEOUT, USER, open_page, problems
from streamlit.testing.v1 import AppTest

from core.checkpoint import load_checkpoint
from core.recommend import recommend_users
from core.store import connect_read, connect_write

PAGES = ["overview", "user_explorer", "attention", "explain", "fairness", "cohorts", "data_models"]


@pytest.mark.parametrize("page", PAGES)
def test_every_page_opens_without_an_exception(dash_env, page):
    at = open_page(page, user=USER)
    assert not problems(at)
    assert at.title[0].value


def test_sidebar_shows_the_model_card_and_the_database(dash_env):
    db, model = dash_env

    # The sidebar is checked on the first run: AppTest (streamlit 1.67) drops the entrypoint's sidebar
    # elements from its tree on reruns under st.navigation, although a browser keeps showing them.
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    assert not problems(at)
    assert db.name in [t.value for t in at.sidebar.text]
    assert at.sidebar.selectbox(key="sidebar_model").value == str(model)
    facts = next(d.value for d in at.sidebar.dataframe if "value" in d.value.columns)
    card = json.loads((model / "metrics.json").read_text())
    assert facts.loc["epochs", "value"] == str(card["epochs"])
    assert facts.loc["device", "value"] == card["device"]
    metrics = next(d.value for d in at.sidebar.dataframe if "valid" in d.value.columns)
    assert abs(metrics.loc["NDCG@10", "valid"] - card["valid"]["NDCG@10"]) < 1e-9
    assert not at.sidebar.warning  # the model was trained on this very database


def test_missing_database_says_how_to_create_one(monkeypatch, tmp_path):
    monkeypatch.setenv("INTERESTLENS_DB", str(tmp_path / "none.duckdb"))
    monkeypatch.setenv("INTERESTLENS_MODELS", str(tmp_path / "models"))
    monkeypatch.delenv("INTERESTLENS_MODEL", raising=False)
    at = open_page()
    assert not at.exception
    assert any("No database at" in i.value for i in at.info)
    assert any(c.value.startswith("interestlens build --db ") for c in at.code)


def test_empty_database_and_no_model(monkeypatch, tmp_path):
    db = tmp_path / "empty.duckdb"
    with connect_write(db):
        pass
    monkeypatch.setenv("INTERESTLENS_DB", str(db))
    monkeypatch.setenv("INTERESTLENS_MODELS", str(tmp_path / "models"))
    monkeypatch.delenv("INTERESTLENS_MODEL", raising=False)
    for page in PAGES[:-1]:
        at = open_page(page, user=USER)
        assert not at.exception, page
        assert any("has no events yet" in i.value for i in at.info), page
    at = open_page("data_models")
    assert not at.exception
    assert any("No trained model" in i.value for i in at.info)


def test_no_model_keeps_the_timeline_and_offers_training(monkeypatch, synthetic_db, tmp_path):
    monkeypatch.setenv("INTERESTLENS_DB", str(synthetic_db))
    monkeypatch.setenv("INTERESTLENS_MODELS", str(tmp_path / "models"))
    monkeypatch.delenv("INTERESTLENS_MODEL", raising=False)
    at = open_page("user_explorer", user=USER)
    assert not problems(at)
    assert any("needs a trained model" in i.value for i in at.info)
    assert any(c.value.startswith("interestlens train --db ") for c in at.code)
    at = open_page("attention", user=USER)
    assert not at.exception and any("No trained model yet" in i.value for i in at.info)


@pytest.fixture
def two_models(monkeypatch, synthetic_db, dash_model, untrained_model_dir, tmp_path) -> Path:
    """A models folder holding a trained and an untrained model, the app pointed at it and the synthetic log."""
    root = tmp_path / "models"
    shutil.copytree(dash_model, root / "trained")
    shutil.copytree(untrained_model_dir, root / "untrained")
    monkeypatch.setenv("INTERESTLENS_DB", str(synthetic_db))
    monkeypatch.setenv("INTERESTLENS_MODELS", str(root))
    monkeypatch.delenv("INTERESTLENS_MODEL", raising=False)
    return root


def test_model_switch_in_the_sidebar(two_models, synthetic_db):
    root = two_models
    at = open_page(None, user=USER)  # first run: the sidebar is in AppTest's tree
    box = at.sidebar.selectbox(key="sidebar_model")
    assert sorted(box.options) == ["trained", "untrained"]
    box.set_value(str(root / "untrained")).run()
    assert not problems(at)
    with connect_read(synthetic_db) as con:
        expected = recommend_users(load_checkpoint(root / "untrained"), con, [USER], 10)
    recs = next(d.value for d in at.dataframe if "score" in d.value.columns)
    assert recs["item_id"].tolist() == expected["item_id"].tolist()


def test_the_active_model_lives_in_the_url(two_models):
    root = two_models
    at = open_page(None, user=USER)  # no ?model=: the default model, and the server writes no model into the URL
    default = Path(at.sidebar.selectbox(key="sidebar_model").value).name
    other = "trained" if default == "untrained" else "untrained"
    assert "model" not in at.query_params
    at.sidebar.selectbox(key="sidebar_model").set_value(str(root / other)).run()  # a pick goes into the URL
    assert not problems(at) and at.query_params["model"] in (other, [other])
    at = open_page(None, user=USER, model=other)  # a reload or a shared link with ?model= opens that model
    assert not problems(at) and at.sidebar.selectbox(key="sidebar_model").value == str(root / other)
    at = open_page(None, user=USER, model="gone")  # a model the folder no longer holds: said, and the default shown
    assert at.sidebar.selectbox(key="sidebar_model").value == str(root / default)
    assert [w.value for w in at.warning if "gone" in w.value and f"{default} instead" in w.value]
