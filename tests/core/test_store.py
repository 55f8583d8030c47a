import datetime as dt
import multiprocessing as mp
import time

import duckdb
import pytest

from core.errors import NotFoundError, UserInputError
from core.store import SCHEMA_VERSION, StoreError, connect_read, connect_write
from core.store.queries import (
    UserFilter,
    activity_distribution,
    category_share_over_time,
    dataset_summary,
    events_over_time,
    find_items,
    item_lookup,
    list_users,
    top_items,
    user_history,
)

T0 = dt.datetime(2024, 1, 1, 12, 0, 0)


@pytest.fixture()
def hand_db(tmp_path):
    """3 users, 3 items; u1 has two events at the same time (ordered by run, then seq)."""
    db = tmp_path / "hand.duckdb"
    with connect_write(db) as con:
        con.execute("INSERT INTO users VALUES ('u1', MAP {'gender': 'F'}), ('u2', MAP {'gender': 'M'}), ('u3', MAP {'gender': 'F'})")
        con.execute(
            "INSERT INTO items VALUES ('a', 'Alpha', ['x'], NULL), ('b', 'Beta', ['x', 'y'], NULL), ('c', 'Gamma <b>', ['y'], NULL)"
        )
        rows = [
            ("u1", "b", T0, "view", None, 1, 2),
            ("u1", "a", T0, "view", None, 1, 1),
            ("u1", "c", T0 + dt.timedelta(days=40), "cart", 2.0, 1, 3),
            ("u2", "a", T0 + dt.timedelta(days=1), "view", None, 1, 4),
            ("u2", "a", T0 + dt.timedelta(days=35), "purchase", None, 2, 0),
        ]
        con.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, NULL, ?, ?)", rows)
    return db


def test_schema_is_created_and_versioned(tmp_path):
    db = tmp_path / "x.duckdb"
    with connect_write(db) as con:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert {"users", "items", "events", "ingest_runs", "rejects", "meta"} <= tables
    with connect_read(db) as con:
        assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == str(SCHEMA_VERSION)


def test_missing_database_is_a_clear_error(tmp_path):
    with pytest.raises(StoreError, match="No database"):
        with connect_read(tmp_path / "absent.duckdb"):
            pass


def test_newer_schema_is_refused_with_a_clear_message(tmp_path):
    db = tmp_path / "new.duckdb"
    with connect_write(db) as con:
        con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(SCHEMA_VERSION + 1)])
    with pytest.raises(StoreError, match="newer InterestLens"):
        with connect_read(db):
            pass
    with pytest.raises(StoreError, match="newer InterestLens"):
        with connect_write(db):
            pass


def test_foreign_duckdb_file_is_not_an_interestlens_database(tmp_path):
    db = tmp_path / "foreign.duckdb"
    duckdb.connect(str(db)).execute("CREATE TABLE t (x INT)").close()
    with pytest.raises(StoreError, match="not an InterestLens database"):
        with connect_read(db):
            pass


def _catalog(db) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(
            """SELECT table_name, estimated_size FROM duckdb_tables() UNION ALL
               SELECT view_name, NULL FROM duckdb_views() WHERE NOT internal ORDER BY 1"""
        ).fetchall()
    finally:
        con.close()


@pytest.mark.parametrize(
    "ddl, shown",
    [
        ("CREATE TABLE events (x INT); INSERT INTO events VALUES (1)", "events"),
        ("CREATE TABLE meta (k INT)", "meta"),  # a `meta` of someone else's shape
        ("CREATE TABLE meta (key VARCHAR, value VARCHAR); CREATE TABLE t (x INT)", "meta, t"),  # no schema version
        ("CREATE VIEW v AS SELECT 1 AS x", "v"),
    ],
)
def test_writer_refuses_a_foreign_duckdb_file_before_writing(tmp_path, ddl, shown):
    db = tmp_path / "foreign.duckdb"
    con = duckdb.connect(str(db))
    con.execute(ddl)
    con.close()
    before = _catalog(db)
    with pytest.raises(StoreError, match=rf"is not an InterestLens database \(it holds other tables: {shown}\)"):
        with connect_write(db):
            pass
    assert _catalog(db) == before  # no InterestLens table was created inside it


def test_writer_accepts_an_empty_duckdb_file(tmp_path):
    db = tmp_path / "empty.duckdb"
    duckdb.connect(str(db)).close()
    with connect_write(db) as con:
        assert con.execute("SELECT count(*) FROM events").fetchall() == [(0,)]
    with connect_read(db) as con:
        assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall() == [(str(SCHEMA_VERSION),)]


def test_summary_by_hand(hand_db):
    with connect_read(hand_db) as con:
        s = dataset_summary(con)
    assert (s["users"], s["items"], s["events"]) == (3, 3, 5)
    assert s["first_event"] == T0 and s["last_event"] == T0 + dt.timedelta(days=40)
    assert s["event_types"] == {"view": 3, "cart": 1, "purchase": 1}
    # a: x (3 events), b: x and y (1 event), c: y (1 event)
    assert s["categories"] == {"x": 4, "y": 2}


def test_user_history_order_is_time_then_run_then_seq(hand_db):
    with connect_read(hand_db) as con:
        h = user_history(con, "u1")
        assert list(h["item_id"]) == ["a", "b", "c"]
        assert list(h["step"]) == [0, 1, 2]
        assert h.loc[2, "title"] == "Gamma <b>" and h.loc[1, "categories"] == ["x", "y"]
        assert list(user_history(con, "u1", limit=2)["item_id"]) == ["b", "c"]
        assert user_history(con, "u3").empty  # known user without events
        with pytest.raises(NotFoundError, match="no user"):
            user_history(con, "nobody' OR '1'='1")


def test_list_users_filters_orders_and_pages(hand_db):
    with connect_read(hand_db) as con:
        df = list_users(con)
        assert list(df["user_id"]) == ["u1", "u2", "u3"] and list(df["events"]) == [3, 2, 0]
        assert list(list_users(con, UserFilter(attributes=(("gender", "F"),)))["user_id"]) == ["u1", "u3"]
        assert list(list_users(con, UserFilter(search="U2"))["user_id"]) == ["u2"]
        assert list(list_users(con, UserFilter(min_events=1, max_events=2))["user_id"]) == ["u2"]
        assert list(list_users(con, order="events_asc", limit=1, offset=1)["user_id"]) == ["u2"]
        assert list_users(con, UserFilter(search="%' OR 1=1 --")).empty
        with pytest.raises(UserInputError):
            list_users(con, order="user_id; DROP TABLE events")


def test_time_series_by_hand(hand_db):
    with connect_read(hand_db) as con:
        ev = events_over_time(con, "month")
        share = category_share_over_time(con, "month")
        with pytest.raises(UserInputError):
            events_over_time(con, "fortnight")
    jan = ev[ev["period"] == dt.datetime(2024, 1, 1)]
    assert dict(zip(jan["event_type"], jan["events"], strict=True)) == {"view": 3}
    # January: a (x), b (x .5, y .5), a (x) -> x 2.5, y .5 ; February: c (y), a (x) -> .5 / .5
    j = share[share["period"] == dt.datetime(2024, 1, 1)].set_index("category")["share"]
    assert j["x"] == pytest.approx(2.5 / 3) and j["y"] == pytest.approx(0.5 / 3)
    f = share[share["period"] == dt.datetime(2024, 2, 1)].set_index("category")["share"]
    assert f["x"] == pytest.approx(0.5) and f["y"] == pytest.approx(0.5)


def test_item_lookup_and_top_items(hand_db):
    with connect_read(hand_db) as con:
        items = item_lookup(con, ["c", "zzz", "a"])
        top = top_items(con, 2)
        act = activity_distribution(con)
    assert list(items["item_id"]) == ["c", "a"] and list(items["events"]) == [1, 3]
    assert list(top["item_id"]) == ["a", "b"] and list(top["users"]) == [2, 1]
    assert list(act["events"]) == [3, 2]


def test_find_items_by_title_any_case_prefix_first_and_literal(hand_db):
    with connect_read(hand_db) as con:
        assert list(find_items(con, "A", 10)["item_id"]) == ["a", "b", "c"]  # Alpha starts with it; Beta, Gamma hold it
        assert list(find_items(con, "gamma <B", 10)["title"]) == ["Gamma <b>"]
        assert list(find_items(con, "b", 10)["item_id"]) == ["b", "c"]  # Beta's title starts with b; c's holds <b>
        assert find_items(con, "%", 10).empty and find_items(con, "  ", 10).empty  # no wildcards, no empty search
        assert list(find_items(con, "a", 1)["item_id"]) == ["a"]


def _hold_write_lock(db, seconds, ready):
    con = duckdb.connect(str(db))
    ready.set()
    time.sleep(seconds)
    con.close()


def test_reader_waits_for_a_writer_then_reads(hand_db):
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    p = ctx.Process(target=_hold_write_lock, args=(hand_db, 1.0, ready))
    p.start()
    assert ready.wait(30)
    with connect_read(hand_db, timeout_s=20) as con:
        assert con.execute("SELECT count(*) FROM events").fetchone()[0] == 5
    p.join()


def test_reader_gives_up_with_a_clear_message(hand_db):
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    p = ctx.Process(target=_hold_write_lock, args=(hand_db, 3.0, ready))
    p.start()
    assert ready.wait(30)
    with pytest.raises(StoreError, match="held by another process"):
        with connect_read(hand_db, timeout_s=0.3):
            pass
    p.join()


def test_an_older_schema_names_the_migrate_step_and_the_cli_words_it(tmp_path, monkeypatch, capsys):
    """core describes the old schema and names the step (`next_step="migrate"`); the CLI says which command runs it."""
    from test_store_open import cli

    db = tmp_path / "old.duckdb"
    with connect_write(db) as con:
        con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(SCHEMA_VERSION - 1)])
    with pytest.raises(StoreError) as old:
        with connect_read(db):
            pass
    assert str(old.value) == f"{db} has schema {SCHEMA_VERSION - 1}; it needs upgrading to {SCHEMA_VERSION}."
    assert (old.value.next_step, old.value.step_db) == ("migrate", str(db))
    code, out, err = cli(monkeypatch, capsys, "summary", "--db", str(db))
    assert (code, out) == (1, "") and err == (f"error: {db} has schema {SCHEMA_VERSION - 1}; it needs upgrading to "
                                       f"{SCHEMA_VERSION}. Run `interestlens migrate --db {db}` (or any ingest) to "
                                       "upgrade it.\n")
