"""Fixtures shared by the core tests: the 30-user social log that the social copy, model and trajectory tests all
read, built and ingested once per test session (it was built three times, once per module), and a connection that
records the SQL run through it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from core.datasets.social import SocialDataset, generate_social
from core.friends.graph import FriendGraph, load_graph
from core.ingest.frames import ingest_frames
from core.sequences import Sequences, Vocab, build_vocab, load_sequences
from core.store import connect_read


@dataclass(frozen=True)
class SocialLog:
    """A small social log with planted influence, ingested, and what the social tests read from it.

    Tests only read it (the database through `connect_read`); one that needs to change events copies the arrays.
    """

    ds: SocialDataset  # the generated log and its planted truth (30 users, 40 items, 900 events, seed 3)
    db: Path  # the log ingested with its friend edges (read only)
    vocab: Vocab  # built from the database
    seqs: Sequences  # every user's events in the vocabulary's indices
    graph: FriendGraph  # friend lists capped at K = 5


@pytest.fixture(scope="session")
def social_log(tmp_path_factory) -> SocialLog:
    ds = generate_social(users=30, items=40, events=900, categories=4, communities=2, mean_degree=4, seed=3)
    db = tmp_path_factory.mktemp("social_log") / "s.duckdb"
    ingest_frames(db, ds.events, ds.users, ds.items, edges=ds.edges)
    with connect_read(db) as con:
        vocab = build_vocab(con)
        seqs = load_sequences(con, vocab)
        graph = load_graph(con, seqs, k=5)
    return SocialLog(ds, db, vocab, seqs, graph)


class SqlRecorder:
    """A DuckDB connection (or cursor) that appends every SQL text run through it (`execute`, `sql`) or through its
    cursors to `seen`; everything else is the connection's own."""

    def __init__(self, con, seen: list[str]):
        self._con, self.seen = con, seen

    def execute(self, sql, *args, **kwargs):
        self.seen.append(sql)
        return self._con.execute(sql, *args, **kwargs)

    def sql(self, sql, *args, **kwargs):
        self.seen.append(sql)
        return self._con.sql(sql, *args, **kwargs)

    def cursor(self):
        return SqlRecorder(self._con.cursor(), self.seen)

    def __getattr__(self, name):
        return getattr(self._con, name)


@pytest.fixture
def recording():
    """`recording(con)` → (a connection that records its SQL, the list it records into)."""

    def wrap(con) -> tuple[SqlRecorder, list[str]]:
        seen: list[str] = []
        return SqlRecorder(con, seen), seen

    return wrap
