"""The social branch trains in the one training loop (`TrainConfig.social`): the same initial weights as without it
(the branch drawn last), resume (the checkpoint decides the branch), text vectors and torchrun with it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core.checkpoint import load_checkpoint
from core.datasets.social import generate_social
from core.ingest.frames import ingest_frames
from core.model import ModelConfig
from core.model.social import CATEGORY_COPY
from core.train import TrainConfig, train
from core.train.distributed import DistContext
from core.train.setup import setup

ROOT = Path(__file__).resolve().parents[2]
SMALL = ModelConfig(d_model=16, n_layers=1, n_heads=2, max_len=10, dropout=0.1)


@pytest.fixture(scope="module")
def social_db(tmp_path_factory):
    ds = generate_social(users=30, items=40, events=900, categories=4, communities=2, mean_degree=4, seed=5)
    db = tmp_path_factory.mktemp("social-train") / "s.duckdb"
    ingest_frames(db, ds.events, ds.users, ds.items, edges=ds.edges)
    return db


def test_the_branch_is_drawn_last_so_every_other_initial_weight_is_todays(social_db, tmp_path):
    ctx = DistContext(0, 1, 0, torch.device("cpu"))
    plain, _, _ = setup(social_db, tmp_path / "a", SMALL, TrainConfig(seed=3, device="cpu"), False, ctx)
    social, _, _ = setup(social_db, tmp_path / "b", SMALL, TrainConfig(seed=3, device="cpu", social=True), False, ctx)
    assert plain.social is None and plain.model.social is None
    assert social.social is not None and social.social.graph.n_edges > 0 and social.model.social is not None
    ours, theirs = plain.model.state_dict(), social.model.state_dict()
    assert set(theirs) - set(ours) == {k for k in theirs if k.startswith("social.")} != set()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    # the optimiser holds the branch too, and the best-weights copy has it
    assert sum(p.numel() for g in social.opt.param_groups for p in g["params"]) == sum(
        p.numel() for p in social.model.parameters())
    assert social.best.social is not None


def test_social_training_resumes_and_the_checkpoint_decides_the_branch(social_db, tmp_path):
    out = tmp_path / "m"
    first = train(social_db, out, SMALL, TrainConfig(epochs=1, batch_size=16, seed=1, device="cpu", patience=50,
                                                      social=True))
    assert first.social and first.epochs == 1
    seen: list[int] = []
    # the resumed run says nothing of friends: the checkpoint's branch carries on, weights and moments included
    more = train(social_db, out, None, TrainConfig(epochs=2, batch_size=16, seed=1, device="cpu", patience=50),
                 progress=lambda e: seen.append(e.epoch), resume=True)
    assert seen == [2] and more.social and more.epochs == 2
    loaded = load_checkpoint(out)
    assert loaded.model.social is not None and loaded.card["social"] is True
    assert loaded.model.social.by_category is CATEGORY_COPY  # the new branch's copy mixture, kept on resume
    assert [h["epoch"] for h in loaded.card["resume"]["history"]] == [1, 2]
    assert loaded.card["social_graph"]["cap_k"] == 20 and loaded.card["social_graph"]["friend_links"] > 0


def test_social_with_text_vectors(social_db, tmp_path, tiny_text_encoder):
    import shutil

    from core.semantic import encode_items

    db = tmp_path / "t.duckdb"
    shutil.copy2(social_db, db)
    encode_items(db, tiny_text_encoder)
    r = train(db, tmp_path / "m", SMALL, TrainConfig(epochs=1, batch_size=16, device="cpu", social=True, text=True))
    loaded = load_checkpoint(tmp_path / "m")
    assert r.social and loaded.model.social is not None and loaded.config.text_dim == tiny_text_encoder.dim
    assert loaded.card["social"] is True and loaded.card["train_config"]["text"] is True


def test_social_under_torchrun_two_cpu_processes(social_db, tmp_path, torchrun_train):
    out = tmp_path / "ddp"
    res = torchrun_train("--db", str(social_db), "--out", str(out), "--epochs", "1", "--max-len", "10")
    assert res["social"] is True and res["epochs"] == 1  # on by default: the database has edges
    loaded = load_checkpoint(out)
    assert loaded.card["processes"] == 2 and loaded.card["social"] is True and loaded.model.social is not None


def test_friends_timelines_are_computed_once_per_set_of_weights(social_db, tmp_path, monkeypatch):
    """Each epoch starts from the weights its previous validation read, so the timelines are not computed again:
    2 epochs = the first epoch's start, 2 validations and the test of the best weights (6 without the reuse)."""
    import core.train.loop as loop

    calls: list[int] = []
    real = loop.compute_timelines
    monkeypatch.setattr(loop, "compute_timelines", lambda *a, **k: calls.append(1) or real(*a, **k))
    r = train(social_db, tmp_path / "m", SMALL, TrainConfig(epochs=2, batch_size=16, device="cpu", patience=50,
                                                             social=True, fit_interest=False))
    assert r.epochs == 2 and len(calls) == 4
