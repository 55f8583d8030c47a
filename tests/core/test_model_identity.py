"""Never the wrong model, silently: two MovieLens-style releases number their movies alike (item 10 is *Richard III*
in one, *GoldenEye* in the other). A model trained on one is refused for the other before anything is printed, is
passed over when the newest is picked, and is still accepted for its own database through copies, appends, live
ingest, export-parquet → attach and a rebuild (the last with a warning saying why)."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from core.checkpoint import model_for
from core.errors import NotFoundError, UserInputError
from core.ingest import ingest
from core.model import ModelConfig
from core.model_match import match_model
from core.store import connect_read
from core.store.identity import database_id
from core.train import TrainConfig, train

GENRES = ["Action", "Adventure", "Comedy", "Drama", "Thriller", "War", "Romance", "Horror"]


def _release(folder: Path, titles: dict[int, str], genres: dict[int, str], shift: int) -> Path:
    """A tiny MovieLens-1M-format release: movies 10..39, 40 users with 8 ratings each (`shift` varies who rates
    what, so the two releases also differ in their logs)."""
    folder.mkdir(parents=True)
    (folder / "movies.dat").write_text("".join(f"{i}::{titles[i]}::{genres[i]}\n" for i in titles), encoding="latin-1")
    ratings = [f"{u}::{10 + (u * 3 + k * (5 + shift)) % 30}::{1 + (u + k) % 5}::{978300000 + u * 1000 + k * 60}\n"
               for u in range(1, 41) for k in range(8)]
    (folder / "ratings.dat").write_text("".join(ratings), encoding="latin-1")
    (folder / "users.dat").write_text("".join(f"{u}::{'MF'[u % 2]}::25::{u % 20}::0000{u % 10}\n" for u in range(1, 41)),
                                      encoding="latin-1")
    return folder


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    """(release A's database, release B's database, a model trained on A, A's release folder)."""
    root = tmp_path_factory.mktemp("releases")
    ids = range(10, 40)
    a_titles = {i: f"A film {i} (1995)" for i in ids} | {10: "Richard III (1995)"}
    b_titles = {i: f"B film {i} (1996)" for i in ids} | {10: "GoldenEye (1995)"}
    a_genres = {i: f"{GENRES[i % 8]}|{GENRES[(i + 3) % 8]}" for i in ids} | {10: "Drama|War"}
    b_genres = {i: GENRES[(i + 1) % 8] for i in ids} | {10: "Action|Adventure|Thriller"}
    a_dir = _release(root / "a", a_titles, a_genres, 0)
    b_dir = _release(root / "b", b_titles, b_genres, 1)
    a_db, b_db = root / "a.duckdb", root / "b.duckdb"
    ingest(a_db, "movielens-1m", a_dir)
    ingest(b_db, "movielens-1m", b_dir)
    model = root / "models" / "a"
    train(a_db, model, ModelConfig(d_model=16, n_layers=1, n_heads=2, max_len=8),
          TrainConfig(epochs=1, batch_size=32, seed=0, device="cpu"))
    return a_db, b_db, model, a_dir


def test_each_database_has_an_identity_recorded_in_the_checkpoint(releases):
    a_db, b_db, model, _ = releases
    with connect_read(a_db) as con:
        a_id = database_id(con)
    with connect_read(b_db) as con:
        b_id = database_id(con)
    assert a_id and b_id and a_id != b_id
    card = json.loads((model / "metrics.json").read_text())
    assert card["database"]["id"] == a_id
    assert card["database"]["titles"]["10"] == "Richard III (1995)"


def test_a_named_model_of_the_colliding_release_is_refused_before_any_output(releases, cli):
    a_db, b_db, model, _ = releases
    with pytest.raises(UserInputError) as caught:
        model_for(b_db, model)
    sentence = str(caught.value)
    assert sentence == (
        f"The model at {model} was trained on another database: only 0 of the 30 of its items checked are in {b_db} "
        f'with the same titles and categories (item 10 is "GoldenEye (1995)" in the database, "Richard III (1995)" '
        f"in the model). Choose another model (one trained on this database), or train one on it."
    )  # core describes the problem and names the step as a value; it knows no command
    assert (caught.value.next_step, caught.value.step_db) == ("train", str(b_db))
    code, out, err = cli("trajectory", "--db", str(b_db), "--model", str(model), "--user", "1")
    flagged = sentence.replace("Choose another model", "Choose another --model")  # the CLI names its flag
    assert (code, out, err) == (1, "", f"error: {flagged} Train one with `interestlens train --db {b_db}`.\n")


def test_the_newest_model_is_passed_over_for_the_colliding_release(releases, cli, monkeypatch):
    a_db, b_db, model, _ = releases
    monkeypatch.delenv("INTERESTLENS_MODEL", raising=False)
    monkeypatch.setenv("INTERESTLENS_MODELS", str(model.parent))
    assert model_for(a_db, None) == model
    with pytest.raises(NotFoundError, match="None of the 1 models under .* was trained on"):
        model_for(b_db, None)
    code, out, err = cli("trajectory", "--db", str(b_db), "--user", "1")  # no --model: as a new user would
    assert code == 1 and out == "" and "None of the 1 models" in err


def test_an_old_checkpoint_without_identity_is_judged_by_its_categories(releases, tmp_path):
    a_db, b_db, model, _ = releases
    old = tmp_path / "old"
    shutil.copytree(model, old)
    card = json.loads((old / "metrics.json").read_text())
    del card["database"]  # as written before identities existed: no identity, no titles
    (old / "metrics.json").write_text(json.dumps(card))
    assert model_for(a_db, old) == old
    with connect_read(a_db) as con:
        m = match_model(old, con)
    assert (m.fits, m.same_identity, m.checked, m.agreeing) == (True, None, 30, 30)
    with pytest.raises(UserInputError, match=r"item 10 is Action, Adventure, Thriller in the database, Drama, War in the model"):
        model_for(b_db, old)


def test_the_identity_survives_copies_appends_live_ingest_forgetting_and_export_attach(releases, tmp_path):
    from core.live import Follower
    from core.privacy import forget_user
    from core.store.parquet import attach_parquet
    from core.store.parquet_export import export_parquet

    a_db, _, model, _ = releases
    with connect_read(a_db) as con:
        a_id = database_id(con)
    copy = tmp_path / "copy.duckdb"
    shutil.copy2(a_db, copy)
    extra = tmp_path / "extra.csv"
    extra.write_text("user_id,item_id,timestamp\n1,11,1000000000\n2,12,1000000100\n")
    ingest(copy, "generic", extra)  # an append
    live = tmp_path / "live"
    live.mkdir()
    (live / "batch1.csv").write_text("user_id,item_id,timestamp\n3,13,1000000200\n")
    Follower(copy, "generic", live).poll(final=True)  # live ingest
    with connect_read(copy) as con:
        assert database_id(con) == a_id
        assert con.execute("SELECT count(*) FROM events WHERE user_id IN ('1', '2', '3') AND ts > '2001-09-01'").fetchone()[0] == 3
        assert match_model(model, con).same_identity is True
    forget_user(copy, "40")  # forgetting a user compacts the file into a new one (COPY FROM DATABASE)
    with connect_read(copy) as con:
        assert database_id(con) == a_id
        assert con.execute("SELECT count(*) FROM events WHERE user_id = '40'").fetchone()[0] == 0
    export_parquet(copy, tmp_path / "export")
    attached = tmp_path / "attached.duckdb"
    attach_parquet(attached, tmp_path / "export")
    with connect_read(attached) as con:
        assert database_id(con) == a_id
        assert match_model(model, con).same_identity is True
    assert model_for(attached, model) == model


def test_a_rebuilt_database_is_accepted_on_its_items_and_says_so(releases, tmp_path, caplog):
    a_db, _, model, a_dir = releases
    rebuilt = tmp_path / "rebuilt.duckdb"
    ingest(rebuilt, "movielens-1m", a_dir)
    with connect_read(rebuilt) as con:
        assert database_id(con) not in (None, json.loads((model / "metrics.json").read_text())["database"]["id"])
        m = match_model(model, con)
    assert (m.fits, m.same_identity, m.checked, m.agreeing) == (True, False, 30, 30)
    with caplog.at_level(logging.WARNING, logger="core.checkpoint"):
        assert model_for(rebuilt, model) == model
    assert f"The model at {model} was trained on another database file" in caplog.text
    assert "30 of the 30 of its items checked are here with the same titles and categories" in caplog.text
