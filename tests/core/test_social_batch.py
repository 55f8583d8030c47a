"""Batch trajectories, cohorts, the drift job and recommendations of a social model read every user's friends, as
the model scores (the single-user trajectory already did: test_social_trajectory.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.checkpoint import load_checkpoint, save_checkpoint
from core.datasets.social import generate_social
from core.friends.context import social_context
from core.friends.graph import load_graph
from core.friends.states import compute_timelines
from core.ingest.frames import ingest_frames
from core.model import InterestModel, ModelConfig, ModelSizes
from core.model.social import attach_branch
from core.recommend import recommend_all, recommend_users
from core.sequences import build_vocab, load_sequences
from core.social.fit import social_batch
from core.store import connect_read
from core.trajectory import TrajectoryAnalyzer, TrajectoryConfig
from core.trajectory.batch import build_drift
from core.trajectory.cohort import cohort_mean, cohort_trajectory
from core.trajectory.grid import drift_summary

CFG = ModelConfig(d_model=16, n_heads=2, n_layers=1, max_len=8, dropout=0.0)


@pytest.fixture(scope="module")
def social_db(tmp_path_factory):
    ds = generate_social(users=24, items=40, events=720, categories=4, communities=2, mean_degree=4, seed=4)
    db = tmp_path_factory.mktemp("batch") / "s.duckdb"
    ingest_frames(db, ds.events, ds.users, ds.items, edges=ds.edges)
    with connect_read(db) as con:
        vocab = build_vocab(con)
        seqs = load_sequences(con, vocab)
    torch.manual_seed(0)
    model = attach_branch(InterestModel(CFG, ModelSizes(vocab.n_items, len(vocab.categories), len(vocab.event_types)),
                                        vocab.category_weights()), by_category=True)  # fmt: skip
    torch.manual_seed(1)
    for p in model.social.parameters():  # a branch that really mixes friends in and copies
        torch.nn.init.normal_(p, std=0.5)
    torch.nn.init.constant_(model.social.copy.bias, 2.0)
    model.eval()
    out = tmp_path_factory.mktemp("model") / "m"
    save_checkpoint(out, model, vocab)
    return db, seqs, load_checkpoint(out)


def test_batch_trajectories_read_friends_like_the_single_user_one(social_db):
    db, seqs, loaded = social_db
    analyzer = TrajectoryAnalyzer(loaded, TrajectoryConfig(stride=4))
    users = [str(u) for u in seqs.user_ids[:6]]
    with connect_read(db) as con:
        one = {u: analyzer.user(con, u).model_distribution for u in users}
        ctx, rows = analyzer.social_context(con, users)
        whole = social_context(con, loaded.model, seqs)
    group = {t.user_id: t.model_distribution for t in analyzer.trajectories(ctx.seqs, rows, social=ctx)}
    every = {t.user_id: t.model_distribution for t in analyzer.trajectories(seqs, range(6), social=whole)}
    without = {t.user_id: t.model_distribution for t in analyzer.trajectories(seqs, range(6))}
    for u in users:
        assert np.allclose(group[u], one[u], atol=1e-5) and np.allclose(every[u], one[u], atol=1e-5)
    assert not all(np.allclose(without[u], one[u], atol=1e-3) for u in users)  # friends do change them


def test_a_cohort_of_a_social_model_averages_its_with_friends_trajectories(social_db):
    db, seqs, loaded = social_db
    analyzer = TrajectoryAnalyzer(loaded)
    users = [str(u) for u in seqs.user_ids]
    with connect_read(db) as con:
        cohort = cohort_trajectory(con, analyzer, users=users)
        trajs = [analyzer.user(con, u) for u in users]
    want = cohort_mean([t.times for t in trajs], [t.distribution for t in trajs], analyzer.categories)
    assert cohort.members == len(users)
    assert np.allclose(cohort.mean, want.mean, atol=1e-6)


def test_the_drift_job_of_a_social_model_reads_friends(social_db):
    db, seqs, loaded = social_db
    analyzer = TrajectoryAnalyzer(loaded)
    job = build_drift(db, loaded)
    with connect_read(db) as con:
        u = str(job.table["user_id"].iloc[0])
        want = analyzer.user(con, u)
    row = job.table.set_index("user_id").loc[u]
    assert row["n_events"] == len(want.steps)
    assert row["total_drift"] == pytest.approx(drift_summary(want).total_drift, rel=1e-6)
    with connect_read(db) as con:  # and not the figure without friends
        seqs_u = load_sequences(con, loaded.vocab, users=[u])
    alone = next(analyzer.trajectories(seqs_u))
    assert row["total_drift"] != pytest.approx(drift_summary(alone).total_drift, rel=1e-3)


def test_recommendations_of_a_social_model_are_its_with_friends_scores(social_db):
    db, seqs, loaded = social_db
    model = loaded.model
    with connect_read(db) as con:
        graph = load_graph(con, seqs)
        users = [str(u) for u in seqs.user_ids[:8]]
        some = recommend_users(loaded, con, users, k=5, exclude_seen=False)
        every = recommend_all(loaded, con, k=5, exclude_seen=False)
    tl = compute_timelines(model, seqs)
    rows = np.arange(8)
    hi = seqs.offsets[rows + 1]
    lo = np.maximum(seqs.offsets[rows], hi - CFG.max_len)
    batch = social_batch(seqs, lo, hi, CFG.max_len, tl, graph)
    with torch.no_grad():
        scores = model(batch)
        scores[:, 0] = float("-inf")
        top = scores.topk(5, dim=-1).indices.numpy()
    for n, u in enumerate(users):
        want = [loaded.vocab.item_id(i) for i in top[n]]
        assert list(some[some.user_id == u].item_id) == want
        assert list(every[every.user_id == u].item_id) == want
