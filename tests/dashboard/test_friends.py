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
