"""The store's edges held in memory (`core.friends.index`): the same ego edges and degrees as the SQL reads, the
same friend context as without it, and no read of the edges table (or `friend_degrees`' scan) per user."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest
import torch

from core.friends import context as context_module
from core.friends.context import _member_edges, user_context
from core.friends.graph import friend_degrees
from core.friends.index import edge_index
from core.model import InterestModel, ModelConfig, ModelSizes
from core.model.social import attach_branch
from core.store import connect_read
from core.store.edges import EDGES_SCHEMA, EDGES_TABLE


def _sorted(frame: pd.DataFrame) -> list[tuple]:
    return sorted(zip(frame.src_user.astype(str), frame.dst_user.astype(str), frame.weight.astype(float),
                      frame.directed.astype(bool), strict=True))  # fmt: skip


@pytest.fixture
def mixed():
    """Directed and undirected edges over 40 named users (u30..u39 without events), parallel edges of other kinds
    with other weights, a self-loop, and edges both ways."""
    rng = np.random.default_rng(4)
    con = duckdb.connect()
    con.execute(EDGES_SCHEMA)
    con.execute("CREATE TABLE events (user_id VARCHAR, run_id BIGINT)")
    con.executemany("INSERT INTO events VALUES (?, 1)", [[f"u{i:02d}"] for i in range(30) for _ in range(2)])
    rows = []
    for n in range(160):
        a, b = (int(x) for x in rng.integers(0, 40, 2))
        rows.append(
            [f"u{a:02d}", f"u{b:02d}", f"k{n % 3}", float(rng.integers(1, 4)), bool(rng.random() < 0.4), n]
        )
    rows += [
        ["u01", "u01", "friend", 1.0, False, 160],
        ["u02", "u03", "trust", 2.0, True, 161],
        ["u03", "u02", "trust", 5.0, True, 162],
        ["u02", "u03", "friend", 1.0, False, 163],
    ]
    con.executemany(f"INSERT INTO {EDGES_TABLE} VALUES (?, ?, ?, ?, NULL, ?, 0, ?)", rows)
    return con


def test_ego_edges_and_degrees_equal_the_store_queries(mixed):
    index = edge_index(mixed)
    assert index.n_edges == 164
    users = [f"u{i:02d}" for i in range(40)] + ["nobody"]
    for u in users:
        assert _sorted(index.edges_of([u])) == _sorted(_member_edges(mixed, [u])), u
    for group in (["u02", "u03"], ["u01", "u05", "u31", "nobody"], users):
        assert _sorted(index.edges_of(group)) == _sorted(_member_edges(mixed, group))
        assert index.degrees(group) == friend_degrees(mixed, group)
    # by hand: u02 -> u03 (trust, directed) and u02 - u03 (friend) are one friend for u02, as for the SQL count
    assert index.degrees(["u02"])["u02"] == friend_degrees(mixed, ["u02"])["u02"] >= 1
    assert index.degrees(["nobody"]) == {} and index.edges_of(["nobody"]).empty


def test_a_database_without_edges_gives_an_empty_index():
    con = duckdb.connect()
    con.execute("CREATE TABLE events (user_id VARCHAR, run_id BIGINT)")
    index = edge_index(con)
    assert index.n_edges == 0 and index.edges_of(["a"]).empty and index.degrees(["a"]) == {}


@pytest.fixture(scope="module")
def social_model(social_log):
    torch.manual_seed(0)
    vocab = social_log.vocab
    cfg = ModelConfig(d_model=16, n_heads=2, n_layers=1, max_len=8, dropout=0.0)
    model = attach_branch(InterestModel(cfg, ModelSizes(vocab.n_items, len(vocab.categories),
                                                        len(vocab.event_types)), vocab.category_weights()))  # fmt: skip
    return model.eval()


def test_user_context_over_the_index_is_the_same_and_reads_no_edges(social_log, social_model, monkeypatch, recording):
    vocab = social_log.vocab
    with connect_read(social_log.db) as con:
        index = edge_index(con)
        for user in ("s00", "s07", "s19"):
            (a, ra), (b, rb) = (
                user_context(con, social_model, vocab, user),
                user_context(con, social_model, vocab, user, edges=index),
            )
            assert list(a.seqs.user_ids) == list(b.seqs.user_ids) and ra == rb
            assert np.array_equal(a.seqs.items, b.seqs.items) and np.array_equal(a.seqs.ts, b.seqs.ts)
            assert np.array_equal(a.graph.friends(ra), b.graph.friends(rb))
            assert np.array_equal(a.graph.offsets, b.graph.offsets) and np.array_equal(
                a.graph.rows, b.graph.rows
            )
            assert np.array_equal(a.graph.weights, b.graph.weights)
            assert len(b.graph.friends(rb)) > 0
            assert torch.equal(a.timelines.states, b.timelines.states)
        # per user: neither the edges table nor friend_degrees' scan of every edge and event
        monkeypatch.setattr(
            context_module, "friend_degrees", lambda *a, **k: pytest.fail("friend_degrees called")
        )
        recorded, seen = recording(con)
        ctx, row = user_context(recorded, social_model, vocab, "s00", edges=index)
    assert seen and not any(EDGES_TABLE in sql for sql in seen)
    assert len(ctx.graph.friends(row)) > 0


def test_refresh_reads_the_edges_again_only_when_they_change(tmp_path, monkeypatch):
    """Live mode commits events every few seconds: a new database version keeps the index (counting degrees again
    when a named user's first or last events come or go) and reads the edges again only when they changed."""
    import duckdb as ddb

    from core.friends import index as index_module
    from core.friends.index import refresh_index
    from core.ingest.frames import ingest_frames
    from core.store.edges import delete_user_edges

    db = tmp_path / "live.duckdb"
    t = pd.Timestamp("2024-01-01")

    def events(users, hours):
        return pd.DataFrame({"user_id": users, "item_id": [f"i{n % 3}" for n in range(len(users))],
                             "ts": [t + pd.Timedelta(hours=hours + n) for n in range(len(users))]})  # fmt: skip

    edges = pd.DataFrame({"src_user": ["a", "a", "b", "c", "a", "f"], "dst_user": ["b", "c", "c", "d", "e", "e"]})
    ingest_frames(db, events(["a", "b", "c", "d", "a", "b"], 0), edges=edges)  # e and f have no events yet
    builds = []
    build = index_module.edge_index
    monkeypatch.setattr(index_module, "edge_index", lambda con: builds.append(1) or build(con))

    def check(index):
        users = ["a", "b", "c", "d", "e", "f", "z"]
        with connect_read(db) as con:
            assert index.degrees(users) == friend_degrees(con, users)
            for u in users:
                assert _sorted(index.edges_of([u])) == _sorted(_member_edges(con, [u])), u

    with connect_read(db) as con:
        index = build(con)
        assert refresh_index(con, index) is index  # nothing changed: the very same index
    check(index)
    assert index.degrees(["a"]) == {"a": 2}  # b and c; e has no events

    def refreshed(index):
        with connect_read(db) as con:
            index = refresh_index(con, index)
        check(index)
        return index

    ingest_frames(db, events(["a", "b"], 50))  # more events of users who had some: the same degrees
    index = refreshed(index)
    assert index.degrees(["a", "c", "f"]) == {"a": 2, "c": 3}
    ingest_frames(db, events(["e", "z"], 60))  # e's first events (appended): a's and f's degrees grow
    index = refreshed(index)
    assert index.degrees(["a", "c", "f"]) == {"a": 3, "c": 3, "f": 1}
    with ddb.connect(str(db)) as con:  # a user's last events deleted (as a cold-start clean-up can): c's degree
        con.execute("DELETE FROM events WHERE user_id = 'd'")
    index = refreshed(index)
    assert index.degrees(["a", "c", "f"]) == {"a": 3, "c": 2, "f": 1} and builds == []  # never read again
    ingest_frames(db, events(["d"], 70), edges=pd.DataFrame({"src_user": ["d"], "dst_user": ["z"]}))
    index = refreshed(index)
    assert builds == [1] and index.degrees(["d", "z"]) == {"d": 2, "z": 1}  # new edges: read again
    with ddb.connect(str(db)) as con:  # forget's removal of a user's edges
        delete_user_edges(con, "z")
    index = refreshed(index)
    assert builds == [1, 1] and index.degrees(["d", "z"]) == {"d": 1}
