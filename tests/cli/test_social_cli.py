"""`train --social/--no-social` (default on when the database has edges), the model card and `evaluate --json`."""

from __future__ import annotations

import json

import pytest

from core.checkpoint import load_checkpoint
from core.datasets.social import generate_social
from core.ingest.frames import ingest_frames


@pytest.fixture(scope="module")
def social_db(tmp_path_factory):
    ds = generate_social(users=30, items=40, events=900, categories=4, communities=2, mean_degree=4, seed=5)
    db = tmp_path_factory.mktemp("social-cli") / "s.duckdb"
    ingest_frames(db, ds.events, ds.users, ds.items, edges=ds.edges)
    return db


def test_train_defaults_to_social_with_edges_and_evaluate_says_so(social_db, tmp_path, cli):
    out = tmp_path / "m"
    code, stdout, err = cli("train", "--db", str(social_db), "--out", str(out), "--epochs", "2", "--max-len", "10",
                            "--json")  # fmt: skip
    assert code == 0, err
    res = json.loads(stdout)
    assert res["social"] is True
    loaded = load_checkpoint(out)
    assert loaded.card["social"] is True and loaded.model.social is not None  # the branch round-trips
    code, stdout, err = cli("evaluate", "--db", str(social_db), "--model", str(out), "--json")
    assert code == 0, err
    ev = json.loads(stdout)
    assert ev["social"] is True
    assert ev["NDCG@10"] == pytest.approx(loaded.card["test"]["NDCG@10"], abs=1e-9)  # same friends' states


def test_no_social_trains_todays_model(social_db, tmp_path, cli):
    out = tmp_path / "n"
    code, stdout, err = cli("train", "--db", str(social_db), "--out", str(out), "--epochs", "1", "--max-len", "10",
                            "--no-social", "--json")  # fmt: skip
    assert code == 0, err
    assert json.loads(stdout)["social"] is False
    loaded = load_checkpoint(out)
    assert loaded.model.social is None and loaded.card["social"] is False


@pytest.fixture(scope="module")
def social_model(social_db, tmp_path_factory):
    from core.model import ModelConfig
    from core.train import TrainConfig, train

    out = tmp_path_factory.mktemp("social-model") / "m"
    train(social_db, out, ModelConfig(max_len=10), TrainConfig(epochs=1, device="cpu", social=True))
    return out


def test_trajectory_json_gains_social_share_and_influencers(social_db, social_model, cli):
    out = social_model
    code, stdout, err = cli("trajectory", "--db", str(social_db), "--model", str(out), "--user", "s00", "--json")
    assert code == 0, err
    t = json.loads(stdout)
    n = len(t["steps"])
    assert len(t["social_share"]) == n and len(t["influencers"]) == n
    assert all(0 <= s < 1 for s in t["social_share"])
    friends = {x["user_id"] for step in t["influencers"] for x in step}
    assert friends and all(0 < x["weight"] <= 1 for step in t["influencers"] for x in step)
    code, human, _ = cli("trajectory", "--db", str(social_db), "--model", str(out), "--user", "s00")
    assert code == 0 and "most influential friends" in human


def test_build_synthetic_social_has_edges_and_truth(tmp_path, cli):
    db = tmp_path / "b.duckdb"
    code, stdout, err = cli("build", "--db", str(db), "--dataset", "synthetic-lastfm", "--users", "60", "--items",
                            "40", "--events", "1500", "--json")  # fmt: skip
    assert code == 0, err
    assert json.loads(stdout)["edges"]["directed"] is False
    code, stdout, _ = cli("summary", "--db", str(db), "--json")
    s = json.loads(stdout)["edges"]
    assert s["edges"] > 0 and s["undirected"] == s["edges"] and 8 < s["mean_degree"] < 18
    assert (tmp_path / "b.duckdb.social-truth" / "influence.parquet").exists()


def test_explain_json_gains_friends_as_players(social_db, social_model, cli):
    out = social_model
    code, stdout, err = cli("explain", "--db", str(social_db), "--model", str(out), "--user", "s00", "--json")
    assert code == 0, err
    s = json.loads(stdout)["social"]
    assert s["friends"] and s["additivity_error"] < 1e-6
    total = s["events_total"] + sum(f["value"] for f in s["friends"])
    assert abs(total - (s["fx"] - s["base"])) < 1e-6  # additive over events and friends together
    assert len(s["deletion_by_value"]) == len(s["friends"]) + 1 and s["deletion_by_value"][0] == s["deletion_by_attention"][0]
