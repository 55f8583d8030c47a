"""The social branch: exactly today's model without friends, causality over friends' timelines, the lookup rule
(strictly before), the cap rule, and the synthetic log's planted influence."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import torch

from core.datasets.social import generate_social
from core.evaluate.split import leave_one_out
from core.friends.graph import friend_degrees, graph_from_frame, load_graph
from core.friends.states import compute_timelines
from core.model import InterestModel, ModelConfig, ModelSizes
from core.sequences import load_sequences
from core.social.fit import attach_branch, fit, social_batch
from core.store import connect_read

CFG = ModelConfig(d_model=16, n_heads=2, n_layers=1, max_len=8, dropout=0.0)


def _model(vocab, social: bool) -> InterestModel:
    torch.manual_seed(0)
    m = InterestModel(CFG, ModelSizes(vocab.n_items, len(vocab.categories), len(vocab.event_types)),
                      vocab.category_weights())  # fmt: skip
    return (attach_branch(m) if social else m).eval()


def _windows(seqs, rows):
    hi = seqs.offsets[np.asarray(rows) + 1]
    lo = np.maximum(seqs.offsets[np.asarray(rows)], hi - CFG.max_len)
    return lo, hi


def test_without_friends_the_model_and_outputs_are_exactly_todays(social_log):
    vocab, seqs = social_log.vocab, social_log.seqs  # tests/core/conftest.py
    plain, social = _model(vocab, False), _model(vocab, True)
    # the branch is registered last: every other weight is drawn exactly as without it
    for k, v in plain.state_dict().items():
        assert torch.equal(v, social.state_dict()[k])
    assert set(social.state_dict()) - set(plain.state_dict()) == {
        f"social.{n}.{p}" for n in ("query", "key", "value", "gate", "copy") for p in ("weight", "bias")
    } | {"social.similarity", "social.overlap"}
    empty = graph_from_frame(pd.DataFrame({"src_user": [], "dst_user": []}), seqs, k=5)
    tl = compute_timelines(plain, seqs)
    lo, hi = _windows(seqs, range(10))
    b_social = social_batch(seqs, lo, hi, CFG.max_len, tl, empty)
    b_plain = dataclasses.replace(b_social, social=None)
    with torch.no_grad():
        e1, e2 = social.encode(b_social), plain.encode(b_plain)
        assert torch.equal(e1.states, e2.states)
        assert torch.equal(social(b_social), plain(b_plain))
    assert float(e1.social_share.abs().max()) == 0.0 and e2.social_share is None
    # a model trained without a graph has no branch and no extra weights
    f = fit(seqs, vocab, leave_one_out(seqs), None, CFG, epochs=1, batch_size=16)
    assert f.model.social is None and set(f.model.state_dict()) == set(plain.state_dict())


def test_friends_states_are_strictly_before_each_step_and_later_events_change_nothing(social_log):
    vocab, seqs, graph = social_log.vocab, social_log.seqs, social_log.graph  # tests/core/conftest.py
    model = _model(vocab, True)
    torch.manual_seed(1)
    for p in model.social.parameters():  # a branch that really mixes friends in
        torch.nn.init.normal_(p, std=0.5)
    u = int(np.flatnonzero(np.diff(graph.offsets) > 0)[0])
    lo, hi = _windows(seqs, [u])
    ts_u = seqs.ts[lo[0] : hi[0]]
    cut = int(ts_u[len(ts_u) // 2])  # friends' events at or after this time are rewritten
    tl = compute_timelines(model, seqs)
    before = social_batch(seqs, lo, hi, CFG.max_len, tl, graph)
    # every friend state used at step t comes from an event strictly before the step's time
    fr = graph.friends(u)
    for t in range(CFG.max_len):
        for k, f in enumerate(fr):
            a, b = seqs.offsets[f], seqs.offsets[f + 1]
            n_before = int((seqs.ts[a:b] < ts_u[t]).sum())
            assert bool(before.social.present[0, t, k]) == (n_before > 0)
            if n_before:
                assert torch.equal(before.social.states[0, t, k], tl.states[a + n_before - 1])
            # the copy path's recent items: the friend's last items strictly before the step, latest first
            want = seqs.items[a : a + n_before][::-1][: before.social.recent.shape[-1]]
            got = before.social.recent[0, t, k].numpy()
            assert list(got[: len(want)]) == list(want) and not got[len(want) :].any()
    items = seqs.items.copy()
    for f in fr:
        a, b = seqs.offsets[f], seqs.offsets[f + 1]
        later = np.arange(a, b)[seqs.ts[a:b] >= cut]
        items[later] = (items[later] % vocab.n_items) + 1  # other items
    changed = dataclasses.replace(seqs, items=items)
    after = social_batch(changed, lo, hi, CFG.max_len, compute_timelines(model, changed), graph)
    with torch.no_grad():
        e1, e2 = model.encode(before), model.encode(after)
        s1, s2 = e1.states[0], e2.states[0]
    early = torch.from_numpy(ts_u <= cut)
    assert torch.allclose(s1[early], s2[early], atol=1e-6, rtol=0)
    assert torch.allclose(e1.social_copy[0][early], e2.social_copy[0][early], atol=1e-6, rtol=0)
    assert torch.equal(before.social.recent[0][early], after.social.recent[0][early])
    assert not torch.allclose(s1[~early], s2[~early], atol=1e-4)  # the test can fail: later steps do change


def test_timelines_are_causal_within_a_history(social_log):
    vocab, seqs = social_log.vocab, social_log.seqs
    model = _model(vocab, False)
    tl = compute_timelines(model, seqs)
    r = int(np.argmax(seqs.lengths))
    a, b = seqs.offsets[r], seqs.offsets[r + 1]
    j = a + (b - a) // 2
    items = seqs.items.copy()
    items[j + 1 : b] = (items[j + 1 : b] % vocab.n_items) + 1
    tl2 = compute_timelines(model, dataclasses.replace(seqs, items=items))
    assert torch.allclose(tl.states[a : j + 1], tl2.states[a : j + 1], atol=1e-6, rtol=0)
    assert not torch.allclose(tl.states[j + 1 : b], tl2.states[j + 1 : b], atol=1e-4)


def test_cap_rule_weight_then_degree_then_id_and_direction(social_log):
    seqs = social_log.seqs
    ids = [str(x) for x in seqs.user_ids[:6]]
    frame = pd.DataFrame({
        "src_user": [ids[0], ids[0], ids[0], ids[0], ids[3], ids[5]],
        "dst_user": [ids[1], ids[2], ids[3], ids[4], ids[2], ids[0]],
        "weight": [1.0, 1.0, 1.0, 3.0, 1.0, 1.0],
        "directed": [False, False, False, False, False, True],
    })  # fmt: skip
    g = graph_from_frame(frame, seqs, k=3)
    # 4 (weight 3) first; then 2 and 3 (degree 2) before 1 (degree 1); the cap of 3 drops 1
    assert list(g.friends(0)) == [4, 2, 3]
    assert list(g.friends(5)) == [0] and 5 not in set(g.friends(0))  # directed 5 -> 0: 0 is 5's friend only
    full, has = g.padded()
    assert full[0].tolist() == [4, 2, 3] and full[1].tolist() == [0, -1, -1] and has.sum() == g.n_edges
    rows = np.array([5, 0, 0, 7, 2])  # a batch's users, repeated and in any order: only their lists are read
    some, some_has = g.padded(rows)
    assert np.array_equal(some, full[rows]) and np.array_equal(some_has, has[rows])


def test_an_ego_graph_keeps_the_friends_the_whole_graph_keeps(social_log):
    """The Friends panel and explanations read one user's edges only; with the friends' degrees from the store
    (`friend_degrees`) the cap rule keeps exactly the friends training kept, in the same order."""
    from core.friends.context import _member_edges
    from core.friends.index import edge_index

    vocab, seqs = social_log.vocab, social_log.seqs
    differs = 0
    with connect_read(social_log.db) as con:  # the shared log's database, read only
        whole = load_graph(con, seqs, k=2)
        index = edge_index(con)
        for r, user in enumerate(str(u) for u in seqs.user_ids):
            edges = _member_edges(con, [user])
            others = sorted({str(x) for x in pd.concat([edges.src_user, edges.dst_user])} - {user})
            ego = load_sequences(con, vocab, users=[user, *others])
            want = [str(seqs.user_ids[f]) for f in whole.friends(r)]
            got = graph_from_frame(edges, ego, 2, degrees=friend_degrees(con, others))
            assert [str(ego.user_ids[f]) for f in got.friends(ego.row(user))] == want, user
            held = graph_from_frame(index.edges_of([user]), ego, 2, degrees=index.degrees(others))  # in memory
            assert [str(ego.user_ids[f]) for f in held.friends(ego.row(user))] == want, user
            bare = graph_from_frame(edges, ego, 2)  # degrees counted in the ego edges alone
            differs += [str(ego.user_ids[f]) for f in bare.friends(ego.row(user))] != want
    assert differs > 0  # without the store's degrees some users' capped friends differ: the check can fail


def test_synthetic_social_truth(social_log):
    ds = social_log.ds
    again = generate_social(users=30, items=40, events=900, categories=4, communities=2, mean_degree=4, seed=3)
    pd.testing.assert_frame_equal(ds.events, again.events)
    pairs = set(zip(ds.edges.src_user, ds.edges.dst_user, strict=True))
    assert all(a < b for a, b in pairs) and len(pairs) == len(ds.edges)  # symmetric, each pair once
    assert len(ds.influence) > 0
    for u, s, infl, c in ds.influence[["user_id", "step", "influencer", "category"]].itertuples(index=False):
        assert (min(u, infl), max(u, infl)) in pairs  # the influencer is a friend
        ev = ds.events[ds.events.user_id == u].sort_values("ts")
        lead = ds.leaders.set_index("user_id").loc[infl]
        assert ev.ts.iloc[s] > pd.Timestamp(lead.ts, unit="s")  # adoption after the influencer's switch
        assert ds.mixture_at(u, s)[ds.categories.index(c)] >= 0.8  # the planted mixture at the step
    lf = generate_social(users=300, events=6000, degree="lastfm", seed=1)
    assert 10 < 2 * len(lf.edges) / 300 < 16  # about 13 friends per user, like HetRec Last.fm
