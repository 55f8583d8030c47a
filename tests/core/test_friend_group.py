"""One read of a user's and their friends' events (`core.friends.group.read_group`): the same sequences as
`load_sequences` and the same dominant categories as `dominant_categories`, from one query on `events`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.friends.group import read_group
from core.ingest.frames import ingest_frames
from core.sequences import Vocab, build_vocab, load_sequences
from core.social.communities import dominant_categories
from core.store import connect_read

ARRAYS = ("user_ids", "offsets", "items", "ts", "gaps", "event_types", "context")


def _same(a, b) -> None:
    for name in ARRAYS:
        assert np.array_equal(getattr(a, name), getattr(b, name)), name


@pytest.fixture(scope="module")
def hand_db(tmp_path_factory):
    """Six users, two runs (the second appends older and newer events for u1), a context key, two event types,
    items with one, two or no categories, ties of categories by weight, and an item the vocabulary lacks."""
    db = tmp_path_factory.mktemp("group") / "g.duckdb"
    t = pd.Timestamp("2024-01-01")
    rows = []
    for u, its in {"u1": "abcab", "u2": "cccdd", "u3": "ee", "u4": "abab", "u5": "x"}.items():
        rows += [(u, f"i{c}", t + pd.Timedelta(hours=3 * k + len(u)), "view" if k % 2 else "buy", "web" if k % 3 else "app")
                 for k, c in enumerate(its)]  # fmt: skip
    rows.append(("u2", "ia", t + pd.Timedelta(hours=1), "buy", None))  # same time order as others: run and seq decide
    ev = pd.DataFrame(rows, columns=["user_id", "item_id", "ts", "event_type", "device"])
    items = pd.DataFrame({"item_id": ["ia", "ib", "ic", "id", "ie", "ix"],
                          "categories": [["A"], ["B", "A"], ["C"], ["B", "D"], [], ["X"]]})  # fmt: skip
    ingest_frames(db, ev, items=items, context=["device"])
    later = pd.DataFrame([("u1", "ic", t - pd.Timedelta(days=1), "buy", "app"), ("u1", "iz", t + pd.Timedelta(days=9),
                          "view", "tv"), ("u6", "ib", t, "buy", "web")], columns=ev.columns)  # fmt: skip
    ingest_frames(db, later, items=pd.DataFrame({"item_id": ["iz"], "categories": [["Z", "C"]]}), context=["device"])
    return db


def test_read_group_equals_load_sequences_and_dominant_categories(hand_db):
    with connect_read(hand_db) as con:
        full = build_vocab(con)
        # a vocabulary that lacks an item (iz), an event type (view) and a context value (tv): all map to 0
        older = Vocab([i for i in full.items if i != "iz"], full.categories, ["buy"],
                      {"device": ["app", "web"]}, [c for i, c in zip(full.items, full.item_categories, strict=True)
                                                   if i != "iz"])  # fmt: skip
        groups = (["u1"], ["u2", "u1", "u5"], ["u3", "u4", "nobody"], ["u1", "u2", "u3", "u4", "u5", "u6"])
        for vocab in (full, older):
            for users in groups:
                got = read_group(con, vocab, users)
                _same(got.seqs, load_sequences(con, vocab, users=users))
                assert got.dominant == dominant_categories(con, users), users
        got = read_group(con, full, ["u1", "u2", "u4", "u5", "nobody"], last=3)
        assert got.dominant == dominant_categories(con, ["u1", "u2", "u4", "u5", "nobody"], last=3)
        assert read_group(con, full, ["u1"], last=None).dominant == {"u1": None}
        empty = read_group(con, full, ["nobody"])
        assert empty.seqs.n_users == 0 and empty.dominant == {"nobody": None}
    # by hand, latest 3 events: u1's ia, ib, iz -> A 1 + 1/2, B 1/2, C 1/2, Z 1/2: A; u2's ic, id, id -> C 1, B 1,
    # D 1: B by name; u4's ib, ia, ib -> A 2, B 1: A; u5's only item has X; u3's items have no category
    assert got.dominant == {"u1": "A", "u2": "B", "u4": "A", "u5": "X", "nobody": None}
    assert got.seqs.user_ids.tolist() == ["u1", "u2", "u4", "u5"]


def test_read_group_matches_on_the_social_log(social_log):
    users = [f"s{i:02d}" for i in range(0, 30, 3)]
    with connect_read(social_log.db) as con:
        got = read_group(con, social_log.vocab, users)
        _same(got.seqs, load_sequences(con, social_log.vocab, users=users))
        assert got.dominant == dominant_categories(con, users)
        assert sum(v is not None for v in got.dominant.values()) == len(users)


def test_a_friend_context_reads_the_events_once(social_log, recording):
    """The user's context (their and their friends' sequences, and everyone's dominant category) is one query on
    `events` over the edges held in memory: before, the sequences and the panel's dominant categories were two
    scans (and, without the index, the degrees a third)."""
    import torch

    from core.friends.context import user_context
    from core.friends.index import edge_index
    from core.model import InterestModel, ModelConfig, ModelSizes
    from core.model.social import attach_branch

    vocab = social_log.vocab
    torch.manual_seed(0)
    cfg = ModelConfig(d_model=16, n_heads=2, n_layers=1, max_len=8, dropout=0.0)
    model = attach_branch(InterestModel(cfg, ModelSizes(vocab.n_items, len(vocab.categories),
                                                        len(vocab.event_types)), vocab.category_weights())).eval()  # fmt: skip
    with connect_read(social_log.db) as con:
        index = edge_index(con)
        recorded, seen = recording(con)
        ctx, row = user_context(recorded, model, vocab, "s04", edges=index)
        reads = [q for q in seen if "events" in q]
        assert len(reads) == 1, reads
        friends = [str(ctx.seqs.user_ids[r]) for r in ctx.graph.friends(row)]
        assert friends and ctx.dominant is not None
        assert {f: ctx.dominant[f] for f in friends} == dominant_categories(con, friends)


def test_read_group_on_a_parquet_backed_store(hand_db, tmp_path):
    """export-parquet, then attach: the events are a view over Parquet partitions; the one read is the same."""
    from core.store.parquet import attach_parquet
    from core.store.parquet_export import export_parquet

    ds = export_parquet(hand_db, tmp_path / "ds", buckets=3).out
    db = attach_parquet(tmp_path / "attached.duckdb", ds / "events", users=ds / "users.parquet",
                        items=ds / "items.parquet").db  # fmt: skip
    users = ["u1", "u2", "u3", "u4", "u5", "u6", "nobody"]
    with connect_read(db) as con:
        vocab = build_vocab(con)
        got = read_group(con, vocab, users)
        _same(got.seqs, load_sequences(con, vocab, users=users))
        assert got.dominant == dominant_categories(con, users)
    with connect_read(hand_db) as con:
        assert got.dominant == read_group(con, build_vocab(con), users).dominant
    assert got.seqs.n_users == 6
