"""Evidence: the social share and influencers per step, Shapley values over events and friends (additive, exact on
a friend the branch cannot see), and the deletion curve over friends."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.checkpoint import load_checkpoint, save_checkpoint
from core.datasets.social import generate_social
from core.ingest.frames import ingest_frames
from core.model import InterestModel, ModelConfig, ModelSizes
from core.model.social import attach_branch
from core.sequences import build_vocab, data_fingerprint
from core.social.evidence import friend_deletion_curve, social_shapley, user_social_evidence
from core.store import connect_read

CFG = ModelConfig(d_model=16, n_heads=2, n_layers=1, max_len=8, dropout=0.0)


@pytest.fixture(scope="module")
def evidence(tmp_path_factory):
    ds = generate_social(users=30, items=40, events=900, categories=4, communities=2, mean_degree=4, seed=7)
    root = tmp_path_factory.mktemp("evidence")
    db = root / "s.duckdb"
    ingest_frames(db, ds.events, ds.users, ds.items, edges=ds.edges)
    with connect_read(db) as con:
        vocab = build_vocab(con)
        fp = data_fingerprint(con)
    torch.manual_seed(0)
    model = attach_branch(InterestModel(CFG, ModelSizes(vocab.n_items, len(vocab.categories),
                                                        len(vocab.event_types)), vocab.category_weights()))  # fmt: skip
    for p in model.social.parameters():
        torch.nn.init.normal_(p, std=0.5)
    save_checkpoint(root / "m", model.eval(), vocab, fp, {"social": True})
    loaded = load_checkpoint(root / "m")
    with connect_read(db) as con:
        ev = user_social_evidence(con, loaded, "s00")
    return loaded, ev


def test_share_and_influencers_per_step(evidence):
    loaded, ev = evidence
    n = len(ev.times)
    assert ev.social_share.shape == (n,) and len(ev.influencers) == n
    assert (ev.social_share >= 0).all() and (ev.social_share < 1).all()
    # a step before any friend had an event has share exactly 0 and no influencers
    for t in range(n):
        assert (ev.social_share[t] == 0) == (ev.influencers[t] == [])
    weights = [x["weight"] for step in ev.influencers for x in step]
    assert weights and all(0 < w <= 1 for w in weights)
    assert set(x["user_id"] for step in ev.influencers for x in step) <= set(ev.friends)


def test_shapley_over_events_and_friends_is_additive_and_matches_deletion(evidence):
    loaded, ev = evidence
    model, batch = loaded.model, ev.batch
    target = int(batch.items[0, -1])
    sv = social_shapley(model, batch, target, permutations=8)
    assert sv.additivity_error < 1e-8
    assert abs(sv.events.sum() + sv.friends.sum() - (sv.full - sv.base)) < 1e-8
    empty = batch.social.friends[0].numpy() < 0
    assert (sv.friends[empty] == 0).all()
    # a friend slot the branch never sees (absent at every step) is worth exactly 0
    never = (~batch.social.present[0].any(0)).numpy() & ~empty
    assert (sv.friends[never] == 0).all()
    # the deletion curve starts at the full logit and ends at the logit with no friends at all
    order = np.argsort(-sv.friends)
    curve = friend_deletion_curve(model, batch, target, order)
    assert curve[0] == pytest.approx(sv.full, abs=1e-6)
    no_friends = batch.social.without(torch.ones_like(batch.social.present[:, 0]))
    batch2 = type(batch)(**{**batch.__dict__, "social": no_friends})
    with torch.no_grad():
        alone = float(model.readout(model.encode(batch2), batch2)[0] @ model.item_vectors()[target])
    assert curve[-1] == pytest.approx(alone, abs=1e-5)


def test_communities_follow_the_planted_groups_and_dominant_categories(tmp_path):
    from core.social.communities import dominant_categories, graph_communities

    ds = generate_social(users=60, items=40, events=1800, categories=4, communities=2, mean_degree=6,
                         p_within=0.95, seed=2)  # fmt: skip
    db = tmp_path / "c.duckdb"
    ingest_frames(db, ds.events, ds.users, ds.items, edges=ds.edges)
    with connect_read(db) as con:
        comm = graph_communities(con, seed=0)
        dom = dominant_categories(con, ["s00", "nobody"], last=5)
    assert list(comm["user_id"]) == sorted(comm["user_id"]) and set(comm["user_id"]) <= set(ds.users.user_id)
    # each Louvain community is mostly one planted group (homophily is in the graph)
    planted = dict(zip(ds.users.user_id, ds.users.community, strict=True))
    purity = comm.assign(p=comm.user_id.map(planted)).groupby("community")["p"].agg(lambda s: s.value_counts().iloc[0] / len(s))
    assert purity.mean() > 0.8
    last5 = ds.events[ds.events.user_id == "s00"].sort_values("ts").tail(5)
    cats = last5.item_id.map(dict(zip(ds.items.item_id, ds.items.categories.str[0], strict=True)))
    top = cats.value_counts()
    assert dom["s00"] == sorted(top[top == top.max()].index)[0] and dom["nobody"] is None


def test_shapley_of_the_log_probability_explains_the_whole_mixture(evidence):
    loaded, ev = evidence
    model, batch = loaded.model, ev.batch
    target = int(batch.items[0, -1])
    sv = social_shapley(model, batch, target, permutations=8, log_prob=True)
    assert abs(sv.events.sum() + sv.friends.sum() - (sv.full - sv.base)) < 1e-8
    with torch.no_grad():  # full: the model's own log-probability of the target, copy mixture and friends included
        full = float(model(batch).double().log_softmax(-1)[0, target])
        empty = model.score(model.empty[None, :]).double().log_softmax(-1)[0, target]
    assert model.social.copy is not None and sv.full == pytest.approx(full, abs=1e-6)
    assert sv.base == pytest.approx(float(empty), abs=1e-6)  # nothing present: the empty history, no friends
    never = (~batch.social.present[0].any(0)).numpy() | (batch.social.friends[0].numpy() < 0)
    assert (sv.friends[never] == 0).all()


def test_shapley_reads_friends_at_the_explained_step_in_every_coalition(evidence):
    """Every coalition explains the last step's prediction, so friends are as of that step's time: a friend who is
    absent at the last step (present only earlier) is worth exactly 0, and a coalition without the latest event
    attends over the last step's friends, not over the friends' inputs of the step it is read out at."""
    from dataclasses import replace

    from core.social.evidence import _value

    loaded, ev = evidence
    model, batch = loaded.model, ev.batch
    target = int(batch.items[0, -1])
    s = batch.social
    k = int(np.flatnonzero(s.present[0, -1].numpy() & s.present[0, -2].numpy())[0])
    gone = s.present.clone()
    gone[0, -1, k] = False  # now present only at earlier steps
    sv = social_shapley(model, replace(batch, social=replace(s, present=gone)), target, permutations=8)
    assert sv.friends[k] == 0.0
    assert np.abs(sv.friends).max() > 0  # the others still count
    # other friends' inputs at the earlier steps: the value of "all events but the last, every friend" is the same
    T = batch.items.shape[1]
    ev_p = torch.ones(1, T, dtype=torch.bool)
    ev_p[0, -1] = False
    fr_p = s.friends >= 0
    states = s.states.clone()
    states[0, :-1] = torch.randn(states[0, :-1].shape, generator=torch.Generator().manual_seed(0))
    other = replace(batch, social=replace(s, states=states))
    with torch.no_grad():
        got = float(_value(model, batch, target, ev_p, fr_p)[0])
        assert float(_value(model, other, target, ev_p, fr_p)[0]) == pytest.approx(got, abs=1e-9)
    # by hand: read out at the step before last with the last step's friends (states, presence, recent items)
    last = {f: getattr(s, f).clone() for f in ("states", "present", "recent")}
    for x in last.values():
        x[0, -2] = x[0, -1]
    hand = replace(batch, mask=batch.mask & ev_p, social=replace(s, **last))
    stale = replace(other, mask=batch.mask & ev_p)
    with torch.no_grad():
        want = float(model.readout(model.encode(hand), hand)[0] @ model.item_vectors()[target])
        old = float(model.readout(model.encode(stale), stale)[0] @ model.item_vectors()[target])
    assert got == pytest.approx(want, abs=1e-6)
    assert abs(got - old) > 1e-4  # the step's own friends' inputs would give another value
