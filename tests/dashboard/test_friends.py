"""The user explorer's Friends panel on a model trained with the social branch: the ego network, the social share
over time and "influenced by" links (`?user=`), the same numbers as core; demo mode shows friends as pseudonyms."""

from __future__ import annotations

import pytest
from dashboard_helpers import figure, numbers, open_page, problems

from core.checkpoint import load_checkpoint
from core.privacy import Pseudonymizer
from core.social.evidence import user_social_evidence
from core.store import connect_read

USER = "s00"


def test_friends_panel_shows_the_ego_network_share_and_links(friends_env):
    db, model = friends_env
    at = open_page("user_explorer", user=USER)
    assert not problems(at)
    assert "Friends" in [h.value for h in at.subheader]
    ego = figure(at, "friends_ego")
    with connect_read(db) as con:
        ev = user_social_evidence(con, load_checkpoint(model), USER)
    shown = {name for trace in ego["data"] if trace.get("mode") == "markers" for name in trace.get("text", [])}
    assert shown == set(ev.friends) | {USER}
    share = figure(at, "friends_share")
    assert [round(v, 6) for v in share["data"][0]["y"]] == [round(float(v), 6) for v in ev.social_share]
    links = [m.value for m in at.markdown if "?user=" in m.value]
    top = max(zip(ev.influence, ev.friends, strict=True))[1]
    assert links and f"?user={top})" in links[0]  # the most influential friend first, linked to their page


def test_demo_mode_pseudonymises_friends(friends_env, monkeypatch):
    db, model = friends_env
    monkeypatch.setenv("INTERESTLENS_DEMO", "1")
    monkeypatch.setenv("INTERESTLENS_DEMO_KEY", "k" * 32)
    p = Pseudonymizer("k" * 32)
    at = open_page("user_explorer", user=p.pseudonym(USER))
    assert not problems(at)
    ego = figure(at, "friends_ego")
    names = {n for trace in ego["data"] if trace.get("mode") == "markers" for n in trace.get("text", [])}
    with connect_read(db) as con:
        real = set(user_social_evidence(con, load_checkpoint(model), USER).friends)
    assert names and not names & real  # no stored friend id is shown
    assert {p.pseudonym(f) for f in real} <= names
    assert not any(f"?user={f})" in m.value for m in at.markdown for f in real)


def test_cohorts_by_graph_community(friends_env):
    db, _model = friends_env
    from core.social.communities import graph_communities

    at = open_page("cohorts", cohorts_by="graph communities")
    assert not problems(at)
    with connect_read(db) as con:
        comm = graph_communities(con, seed=0)
    sizes = comm.groupby("community").size()
    assert at.selectbox(key="cohorts_comm_a").value == 0
    assert f"{len(sizes):,} communities" in " ".join(c.value for c in at.caption)
    assert figure(at, "cohorts_comm_share_A")["data"]


def test_explain_page_shows_friends_as_a_feature_group(friends_env):
    """Feature groups of a social model: friends beside the own events, each group the sum of its players' Shapley
    values (core.social.evidence.explain_friends), the two adding up to fx − base; each friend linked."""
    import numpy as np

    from core.recommend import recommend_users
    from core.social.evidence import explain_friends

    db, model = friends_env
    loaded = load_checkpoint(model)
    with connect_read(db) as con:
        item = str(recommend_users(loaded, con, [USER], 10).sort_values("rank")["item_id"].iloc[0])
        fx = explain_friends(con, loaded, USER, loaded.vocab.item_index(item))
    at = open_page("explain", user=USER, item=item, explain_tab="Feature groups")
    assert not problems(at)
    assert "Friends and own events" in [h.value for h in at.subheader]
    bars = figure(at, "explain_friends_groups")["data"][0]
    x = numbers(bars["x"])
    values = dict(zip(bars["y"], x, strict=True))
    assert values["friends"] == pytest.approx(float(np.sum(fx.values)), abs=1e-9)
    assert values["own events (latest window)"] == pytest.approx(float(np.sum(fx.events)), abs=1e-9)
    assert sum(values.values()) == pytest.approx(fx.fx - fx.base, abs=1e-6)
    table = next(d.value for d in at.dataframe if "explorer" in d.value.columns and "value" in d.value.columns)
    assert dict(zip(table["user_id"], table["value"], strict=True)) == pytest.approx(
        dict(zip(fx.friends, map(float, fx.values), strict=True)))
    assert (table["explorer"] == "/user?user=" + table["user_id"]).all()


def test_the_community_pickers_live_in_the_url(friends_env):
    """A link with ?cohorts_comm_a=&cohorts_comm_b=&cohorts_period= opens those communities over those windows; a
    pick is bound to the URL under its key, by the id alone (so a reload or a shared link gives the same comparison)."""
    db, _model = friends_env
    from core.social.communities import graph_communities

    with connect_read(db) as con:
        comm = graph_communities(con, seed=0)
    ids = sorted(int(c) for c in comm["community"].unique())
    assert len(ids) >= 2
    a, b = ids[-1], ids[0]  # not the defaults (A = first, B = second)
    at = open_page("cohorts", cohorts_by="graph communities", cohorts_comm_a=str(a), cohorts_comm_b=str(b),
                   cohorts_period="quarter")
    assert not problems(at)
    assert at.selectbox(key="cohorts_comm_a").value == a and at.selectbox(key="cohorts_comm_b").value == b
    assert at.segmented_control(key="cohorts_period").value == "quarter"
    assert figure(at, "cohorts_comm_share_A")["layout"]["title"]["text"] == f"Category share, community {a}"
    at.selectbox(key="cohorts_comm_b").set_value(ids[1]).run()
    assert not problems(at) and at.selectbox(key="cohorts_comm_b").value == ids[1]
    # the browser writes a bound widget's shown option into the URL under its key: the id alone, stable as sizes move
    assert [s.proto.query_param_key for s in at.selectbox] == ["cohorts_comm_a", "cohorts_comm_b"]
    assert at.selectbox(key="cohorts_comm_b").options == [str(i) for i in ids]


def test_a_switch_builds_one_friend_context_over_edges_read_once_per_database(friends_env, monkeypatch):
    """The explorer's view and its Friends panel share one friend context per user switch, and the edges (with the
    cap rule's degrees) are read once, not per switch nor per database version while they do not change; results
    equal core's own paths."""
    import numpy as np

    from core.friends import context as context_module
    from core.friends import index as index_module
    from core.friends.states import compute_timelines
    from core.social import evidence as evidence_module
    from core.trajectory import TrajectoryAnalyzer
    from dashboard import cache
    from dashboard.cache import social
    from dashboard.components.friends import friends_view
    from dashboard.reader import file_stamp

    db, model = friends_env
    built, reads = [], []
    edge_index = index_module.edge_index
    monkeypatch.setattr(index_module, "edge_index", lambda con: reads.append(1) or edge_index(con))

    def timelines(model, seqs, *args, **kwargs):  # the model over the user's and friends' sequences: the costly part
        built.append(seqs.n_users)
        return compute_timelines(model, seqs, *args, **kwargs)

    # wherever a friend context is built (the panel's evidence built its own before it took the view's)
    monkeypatch.setattr(context_module, "compute_timelines", timelines)
    monkeypatch.setattr(evidence_module, "compute_timelines", timelines, raising=False)
    # the panel colours friends by the dominant categories the context read with their events: no scan of its own
    from core.social import communities

    dominant = communities.dominant_categories
    monkeypatch.setattr(communities, "dominant_categories", lambda *a, **k: pytest.fail("dominant_categories called"))
    social.forget_contexts()
    cache.user_view.clear()
    friends_view.clear()
    ref, mref = cache.DbRef(str(db), file_stamp(db)), cache.model_ref(model)
    for user in ("s00", "s03"):
        view = cache.user_view(ref, mref, user)
        panel = friends_view(ref.path, ref.stamp, mref.path, mref.stamp, user)
    assert len(built) == 2  # one context per switch, for the view and the panel together (4 before)
    assert reads == [1]  # the edges once for this database version
    # a new version of the file (live mode commits events every few seconds; here only the stamp moves): the index
    # of the version before is refreshed, the edges are not read again
    moved = cache.DbRef(ref.path, (*ref.stamp[:2], ref.stamp[2] + 1))
    cache.user_view(moved, mref, "s05")
    friends_view(moved.path, moved.stamp, mref.path, mref.stamp, "s05")
    assert reads == [1] and len(built) == 3
    loaded = load_checkpoint(model)
    with connect_read(db) as con:  # core's paths, each building its own context from the store
        ev = user_social_evidence(con, loaded, "s03")
        traj = TrajectoryAnalyzer(loaded).user(con, "s03")
    assert np.array_equal(view.trajectory.distribution, traj.distribution)
    got = dict(zip(panel.friends["user_id"], panel.friends["influence"], strict=True))
    assert got == dict(zip(ev.friends, ev.influence, strict=True)) and len(got) > 0
    assert np.array_equal(panel.share["social_share"].to_numpy(), ev.social_share)
    with connect_read(db) as con:
        colours = dominant(con, ev.friends)
    assert dict(zip(panel.friends["user_id"], panel.friends["category"], strict=True)) == {
        f: colours[f] or "—" for f in ev.friends
    }
