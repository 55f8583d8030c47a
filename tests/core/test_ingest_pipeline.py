"""The shared pipeline: idempotent re-ingest, exact-duplicate rules, tie order, clustering by user, atomicity,
upserts, and the reject row numbers of multi-file sources."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from core.errors import UserInputError
from core.ingest import ColumnMapping, ingest, ingest_frames
from core.store import StoreError, connect_read, connect_write

FIX = Path(__file__).resolve().parent.parent / "fixtures"
T0 = dt.datetime(2024, 5, 1, 12, 0, 0)


def q(db: Path, sql: str, params: list | None = None) -> list[tuple]:
    with connect_read(db) as con:
        return con.execute(sql, params or []).fetchall()


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_ingesting_the_same_source_twice_adds_nothing(tmp_path):
    db = tmp_path / "twice.duckdb"
    first = ingest(db, "taobao", FIX / "taobao")
    before = q(db, "SELECT user_id, item_id, ts, event_type, run_id, seq FROM events ORDER BY ALL")
    second = ingest(db, "taobao", FIX / "taobao")
    assert (first.accepted, first.rejected, first.duplicates) == (6, 1, 0)
    assert (second.accepted, second.rejected, second.duplicates) == (0, 1, 6)  # the bad row is quarantined again
    assert q(db, "SELECT user_id, item_id, ts, event_type, run_id, seq FROM events ORDER BY ALL") == before
    assert q(db, "SELECT run_id, status, accepted, duplicates FROM ingest_runs ORDER BY 1") == [(1, "ok", 6, 0), (2, "ok", 0, 6)]
    assert q(db, "SELECT count(*) FROM users")[0][0] == 2 and q(db, "SELECT count(*) FROM items")[0][0] == 5


def test_exact_duplicates_keep_the_first_row_and_near_duplicates_stay(tmp_path):
    csv = write_csv(
        tmp_path / "d.csv",
        "user_id,item_id,timestamp,event,value,device\n"
        "u1,a,1700000000,view,,mobile\n"  # seq 0
        "u1,a,1700000000,view,,mobile\n"  # exact duplicate of seq 0
        "u1,a,1700000000,click,,mobile\n"  # same user/item/time, other event type: kept
        "u1,a,1700000000,view,2,mobile\n"  # other value: kept
        "u1,a,1700000000,view,,desktop\n"  # other context: kept
        "u1,a,1700000000,view,,\n"  # no context: kept
        "u1,a,1700000000,view,,\n",  # duplicate of the row above (NULLs compare equal)
    )
    db = tmp_path / "d.duckdb"
    m = ColumnMapping(event="event", value="value", context=("device",))
    r = ingest(db, "generic", csv, mapping=m)
    assert (r.accepted, r.duplicates) == (5, 2)
    got = q(db, "SELECT seq, event_type, value, context FROM events ORDER BY seq")
    assert got == [(0, "view", None, {"device": "mobile"}), (2, "click", None, {"device": "mobile"}),
                   (3, "view", 2.0, {"device": "mobile"}), (4, "view", None, {"device": "desktop"}),
                   (5, "view", None, {})]  # fmt: skip
    # a later run with one new row and one already stored: only the new one lands
    more = write_csv(tmp_path / "more.csv", "user_id,item_id,timestamp,event,value,device\n"
                     "u1,a,1700000000,view,,desktop\nu1,b,1700000000,view,,desktop\n")  # fmt: skip
    r2 = ingest(db, "generic", more, mapping=m)
    assert (r2.accepted, r2.duplicates) == (1, 1)
    assert q(db, "SELECT item_id, run_id, seq FROM events WHERE run_id = 2") == [("b", 2, 1)]


def test_ties_keep_file_order_and_runs_order_after_that(tmp_path):
    db = tmp_path / "ties.duckdb"
    a = write_csv(tmp_path / "a.csv", "user_id,item_id,timestamp\nu,z,1700000000\nu,y,1700000000\nu,x,1700000000\n")
    b = write_csv(tmp_path / "b.csv", "user_id,item_id,timestamp\nu,w,1700000000\nu,v,1699999999\n")
    ingest(db, "generic", a)
    ingest(db, "generic", b)
    from core.store import user_history

    with connect_read(db) as con:
        assert user_history(con, "u")["item_id"].tolist() == ["v", "z", "y", "x", "w"]


def _sorted_by_user_within_runs(db: Path) -> bool:
    """True when each run's events are stored (rowid order) sorted by user id."""
    bad = q(db, """SELECT count(*) FROM (SELECT run_id, user_id, lag(user_id) OVER (PARTITION BY run_id ORDER BY rowid) AS prev
                   FROM events) WHERE user_id < prev""")  # fmt: skip
    return bad[0][0] == 0


def test_events_are_clustered_by_user(synthetic_db, tmp_path):
    """The synthetic log is generated in time order; stored, each user's events are contiguous."""
    assert q(synthetic_db, "SELECT count(DISTINCT user_id) FROM events")[0][0] == 120
    assert _sorted_by_user_within_runs(synthetic_db)
    # many context combinations take the join path rather than the per-combination CASE: same guarantees
    lines = "".join(f"u{(k * 7919) % 50},i{k % 13},{1700000000 + k},c{k % 80}\n" for k in range(400))
    db = tmp_path / "ctx.duckdb"
    r = ingest(db, "generic", write_csv(tmp_path / "c.csv", "user_id,item_id,timestamp,place\n" + lines),
               mapping=ColumnMapping(context=("place",)))  # fmt: skip
    assert r.accepted == 400 and _sorted_by_user_within_runs(db)
    assert q(db, "SELECT context FROM events WHERE seq = 123")[0][0] == {"place": "c43"}
    assert q(db, "SELECT count(DISTINCT context['place']) FROM events")[0][0] == 80
    again = ingest(db, "generic", tmp_path / "c.csv", mapping=ColumnMapping(context=("place",)))
    assert (again.accepted, again.duplicates) == (0, 400)  # stored maps compare equal to rebuilt ones


def test_an_error_part_way_leaves_the_database_exactly_as_before(writable_db):
    def snapshot():
        return [q(writable_db, f"SELECT count(*), coalesce(bit_xor(hash(t)), 0) FROM {t} t")[0]
                for t in ("events", "users", "items", "rejects", "meta")]  # fmt: skip

    before = snapshot()
    events = pd.DataFrame({"user_id": ["n1", "n2"], "item_id": ["a", "b"], "ts": [T0, T0]})
    with pytest.raises(UserInputError, match="The items table has no item_id column"):
        ingest_frames(writable_db, events, items=pd.DataFrame({"title": ["x"]}))  # fails after events are staged
    assert snapshot() == before
    status = q(writable_db, "SELECT status, message FROM ingest_runs ORDER BY run_id DESC LIMIT 1")[0]
    assert status == ("failed", "The items table has no item_id column.")


def test_users_and_items_are_upserted_not_duplicated(tmp_path):
    src = tmp_path / "ml"
    shutil.copytree(FIX / "ml-100k", src)
    db = tmp_path / "up.duckdb"
    ingest(db, "movielens-100k", src)
    (src / "u.user").write_text("17|30|F|artist|55417\n")  # one user moved on; others unchanged
    r = ingest(db, "movielens-100k", src)
    assert r.accepted == 0 and r.duplicates == 10
    users = dict(q(db, "SELECT user_id, attributes FROM users"))
    assert len(users) == 4
    assert users["17"] == {"age": "30", "gender": "F", "occupation": "artist", "zip": "55417"}
    assert users["196"]["age"] == "49"


def test_rejects_of_a_second_event_file_name_that_file(tmp_path):
    src = tmp_path / "latest"
    shutil.copytree(FIX / "ml-latest-small", src)
    (src / "tags.csv").write_text("userId,movieId,tag,timestamp\n2,6,fine,1445714994\n,6,orphan,1445714995\n")
    r = ingest(tmp_path / "t.duckdb", "movielens-latest", src)
    assert (r.accepted, r.rejected) == (7, 1)
    assert q(tmp_path / "t.duckdb", "SELECT row_number, reason FROM rejects") == [(2, "tags.csv row 2: missing user id")]


def test_ingest_into_an_open_connection(tmp_path):
    db = tmp_path / "open.duckdb"
    with connect_write(db) as con:
        r = ingest(con, "movielens-1m", FIX / "ml-1m")
        assert r.accepted == 6
        assert con.execute("SELECT count(*) FROM events").fetchall()[0][0] == 6


def test_frames_reject_bad_rows_like_files(tmp_path):
    events = pd.DataFrame(
        {
            "user_id": ["a", "b", "c"],
            "item_id": ["x", "y", "z"],
            "ts": [T0, dt.datetime(1985, 1, 1), T0],
            "event_type": ["rating", "rating", "rating"],
            "value": [4.0, 3.0, -1.0],
        }
    )
    r = ingest_frames(tmp_path / "f.duckdb", events)
    assert (r.accepted, r.rejected) == (1, 2)
    assert q(tmp_path / "f.duckdb", "SELECT row_number, reason, raw FROM rejects ORDER BY 1") == [
        (2, "timestamp before 1990", "b,y,1985-01-01 00:00:00,rating,3.0"),
        (3, "negative rating", "c,z,2024-05-01 12:00:00,rating,-1.0"),
    ]


def test_a_foreign_duckdb_file_is_refused_not_modified(tmp_path):
    db = tmp_path / "foreign.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE events (x INT)")
    con.close()
    with pytest.raises(StoreError, match=r"is not an InterestLens database \(it holds other tables: events\); use a new database file"):
        ingest(db, "generic", FIX / "generic" / "events.tsv")
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM events").fetchall() == [(0,)]
    assert con.execute("SELECT table_name FROM duckdb_tables()").fetchall() == [("events",)]  # nothing created
    con.close()


def test_load_sequences_orders_ties_like_the_store(tmp_path):
    """The whole-log read (streamed unsorted, then sorted in numpy) gives each user's events in the store's
    canonical order: time to the microsecond, then run, then row; the one-user read agrees."""
    from core.sequences import Vocab, load_sequences

    db = tmp_path / "ties.duckdb"
    a = write_csv(tmp_path / "a.csv", "user_id,item_id,timestamp\nu,z,1700000000\nu,y,1700000000\nt,x,1700000000.7\n"
                                      "u,x,1700000000\nt,y,1700000000.2\n")
    b = write_csv(tmp_path / "b.csv", "user_id,item_id,timestamp\nu,w,1700000000\nu,v,1699999999\nt,z,1700000000.1\n")
    ingest(db, "generic", a)
    ingest(db, "generic", b)
    vocab = Vocab(items=["v", "w", "x", "y", "z"], categories=[], event_types=["view", "click", "rating", "purchase"])
    with connect_read(db) as con:
        seqs = load_sequences(con, vocab)
        one = load_sequences(con, vocab, users=["t"])
    named = {str(u): [vocab.item_id(i) for i in seqs.items[seqs.offsets[r] : seqs.offsets[r + 1]]]
             for r, u in enumerate(seqs.user_ids)}
    assert named == {"t": ["z", "y", "x"], "u": ["v", "z", "y", "x", "w"]}
    assert [vocab.item_id(i) for i in one.items] == ["z", "y", "x"]
