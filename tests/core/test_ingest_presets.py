"""Each preset on hand-written files in the exact real layouts (tests/fixtures/): what lands, checked by hand."""

from __future__ import annotations

import datetime as dt
import gzip
import shutil
from pathlib import Path

import pytest

from core.ingest import ColumnMapping, ingest, preset_names
from core.store import connect_read

FIX = Path(__file__).resolve().parent.parent / "fixtures"


def rows(db: Path, sql: str, params: list | None = None) -> list[tuple]:
    with connect_read(db) as con:
        return con.execute(sql, params or []).fetchall()


def events(db: Path) -> list[tuple]:
    """(user, item, unix seconds, type, value) in the canonical order per user."""
    return rows(db, "SELECT user_id, item_id, epoch(ts), event_type, value FROM events ORDER BY user_id, ts, run_id, seq")


def test_movielens_100k_original_files(tmp_path):
    db = tmp_path / "ml.duckdb"
    r = ingest(db, "movielens-100k", FIX / "ml-100k")
    assert (r.accepted, r.rejected, r.duplicates, r.assumptions) == (10, 0, 0, [])
    ev = events(db)
    # user 17 rated 305 then 1 in the same second: file order (seq) breaks the tie
    assert ev[:3] == [("17", "305", 879542091, "rating", 4.0), ("17", "1", 879542091, "rating", 5.0),
                      ("17", "2", 879542200, "rating", 3.0)]  # fmt: skip
    items = {i: (t, c, a) for i, t, c, a in rows(db, "SELECT item_id, title, categories, attributes FROM items")}
    assert items["305"][0] == "Café Example (1996)"  # Latin-1 byte 0xE9 decoded
    assert items["305"][1] == ["Comedy", "Drama", "Romance"]  # several genres, in the file's genre order
    assert items["1"][1] == ["Animation", "Children's", "Comedy"]
    assert items["267"] == ("unknown", ["unknown"], {})  # empty release date and URL are left out
    assert items["242"][2] == {"release_date": "24-Jan-1997", "imdb_url": "http://us.imdb.com/M/title-exact?Kolya%20(1996)"}
    users = dict(rows(db, "SELECT user_id, attributes FROM users"))
    assert users["17"] == {"age": "29", "gender": "F", "occupation": "writer", "zip": "55417"}
    assert users["74"]["zip"] == "T8H1N"  # zip codes are not always numeric


def test_movielens_100k_recbole_atomic_files_match_the_original_layout(tmp_path):
    db = tmp_path / "atomic.duckdb"
    r = ingest(db, "movielens-100k", FIX / "ml-100k-atomic" / "ml-100k.inter")
    assert (r.accepted, r.rejected, r.duplicates) == (5, 0, 0)
    assert events(db)[:2] == [("17", "305", 879542091, "rating", 4.0), ("17", "1", 879542091, "rating", 5.0)]
    items = {i: (t, c, a) for i, t, c, a in rows(db, "SELECT item_id, title, categories, attributes FROM items")}
    assert items["1"] == ("Toy Story", ["Animation", "Children's", "Comedy"], {"release_year": "1995"})
    assert items["305"][0] == "Café Example"  # RecBole's files are UTF-8
    users = dict(rows(db, "SELECT user_id, attributes FROM users"))
    assert users["17"] == {"age": "29", "gender": "F", "occupation": "writer", "zip": "55417"}


def test_movielens_100k_without_optional_files_says_so(tmp_path):
    src = tmp_path / "only"
    src.mkdir()
    shutil.copy(FIX / "ml-100k" / "u.data", src / "u.data")
    r = ingest(tmp_path / "x.duckdb", "movielens-100k", src)
    assert r.accepted == 10
    assert r.assumptions == ["No u.user beside u.data: users have no attributes.",
                             "No u.item beside u.data: items have no titles or genres."]  # fmt: skip
    assert rows(tmp_path / "x.duckdb", "SELECT count(*) FROM items WHERE title IS NULL")[0][0] == 4


def test_movielens_1m(tmp_path):
    db = tmp_path / "ml1m.duckdb"
    r = ingest(db, "movielens-1m", FIX / "ml-1m")
    assert (r.accepted, r.rejected, r.duplicates) == (6, 0, 0)
    assert events(db)[:3] == [("1", "1193", 978300760, "rating", 5.0), ("1", "914", 978301968, "rating", 3.0),
                              ("1", "661", 978302109, "rating", 3.0)]  # fmt: skip
    items = {i: (t, c) for i, t, c in rows(db, "SELECT item_id, title, categories FROM items")}
    assert items["661"] == ("James and the Giant Peach (1996)", ["Animation", "Children's", "Musical"])
    assert items["3000"] == ("Amélie (2001)", ["Comedy", "Romance"])  # Latin-1, a movie nobody rated is kept
    users = dict(rows(db, "SELECT user_id, attributes FROM users"))
    assert users["1"] == {"gender": "F", "age": "1", "age_band": "Under 18", "occupation": "K-12 student",
                          "occupation_code": "10", "zip": "48067"}  # fmt: skip
    assert users["2"]["age_band"] == "56+" and users["2"]["occupation"] == "self-employed"


def test_movielens_latest_with_tags(tmp_path):
    db = tmp_path / "latest.duckdb"
    r = ingest(db, "movielens-latest-small", FIX / "ml-latest-small")
    assert (r.accepted, r.rejected, r.duplicates) == (9, 0, 0)
    got = rows(db, "SELECT user_id, item_id, event_type, value, context FROM events WHERE user_id = '2' ORDER BY ts, run_id, seq")
    assert got == [
        ("2", "1", "rating", 3.5, {}),
        ("2", "6", "rating", 0.5, {}),  # half stars
        ("2", "6", "tag", None, {"tag": "heist, classic"}),  # same second, two tags: both kept, in file order
        ("2", "6", "tag", None, {"tag": 'says "hello"'}),
    ]
    items = {i: (t, c) for i, t, c in rows(db, "SELECT item_id, title, categories FROM items")}
    assert items["3"] == ("American President, The (1995)", ["Comedy", "Drama", "Romance"])
    assert items["6"][0] == 'Heat, with a "quoted" word\nand a line break (1995)'
    assert items["9"] == ("Unwatched (2000)", [])  # (no genres listed)
    keys = rows(db, "SELECT value FROM meta WHERE key = 'context_keys'")[0][0]
    assert keys == '["tag"]'


def test_amazon_reviews_plain_and_gzip_with_metadata(tmp_path):
    for name in ("Toys_5.json", "meta_Toys.json"):
        (tmp_path / (name + ".gz")).write_bytes(gzip.compress((FIX / "amazon" / name).read_bytes()))
    for src in (FIX / "amazon" / "Toys_5.json", tmp_path / "Toys_5.json.gz"):
        db = tmp_path / f"{src.name}.duckdb"
        r = ingest(db, "amazon-reviews", src)
        assert (r.accepted, r.rejected, r.duplicates) == (3, 0, 1)  # the repeated review is dropped and counted
        assert r.assumptions == [f"Item metadata read from meta_Toys.json{src.suffix if src.suffix == '.gz' else ''}, "
                                 "found beside the reviews."]  # fmt: skip
        assert events(db) == [("A1EXAMPLE", "B00EXAMPLE", 1252800000, "rating", 5.0),
                              ("A1EXAMPLE", "B00OTHER01", 1252886400, "rating", 3.0),
                              ("A2EXAMPLE", "B00EXAMPLE", 1300000000, "rating", 4.0)]  # fmt: skip
        items = {i: (t, c, a) for i, t, c, a in rows(db, "SELECT item_id, title, categories, attributes FROM items")}
        assert items["B00EXAMPLE"] == ("<script>alert('x')</script> Kite & Co", ["Outdoor Play"],
                                       {"brand": "Harbor", "main_cat": "Toys & Games",
                                        "category_path": "Toys & Games > Outdoor Play > Kites"})  # fmt: skip
        assert items["B00OTHER01"][1] == ["Toys & Games"]


def test_amazon_ratings_only_csv(tmp_path):
    db = tmp_path / "ratings.duckdb"
    r = ingest(db, "amazon-reviews", FIX / "amazon" / "ratings_Toys.csv")
    assert (r.accepted, r.rejected) == (2, 0)
    assert events(db)[1] == ("A2EXAMPLE", "B00OTHER01", 1300000000, "rating", 2.0)


def test_taobao(tmp_path):
    db = tmp_path / "taobao.duckdb"
    r = ingest(db, "taobao", FIX / "taobao")
    assert (r.accepted, r.rejected) == (6, 1)
    assert any("documented window 2017-11-25 to 2017-12-03" in a for a in r.assumptions)
    assert [e[3] for e in events(db) if e[0] == "1"] == ["view", "view", "cart", "purchase"]
    assert rows(db, "SELECT categories FROM items WHERE item_id = '2268318'")[0][0] == ["2520377"]
    assert rows(db, "SELECT row_number, reason FROM rejects") == [
        (7, "timestamp outside the documented window 2017-11-25 to 2017-12-03 (UTC+8)")
    ]


def test_retailrocket(tmp_path):
    db = tmp_path / "rr.duckdb"
    r = ingest(db, "retailrocket", FIX / "retailrocket")
    assert (r.accepted, r.rejected, r.duplicates) == (4, 0, 1)  # the repeated transaction row
    got = rows(db, "SELECT user_id, item_id, ts, event_type FROM events WHERE user_id = '257597' ORDER BY ts")
    assert got == [("257597", "355908", dt.datetime(2015, 6, 2, 5, 2, 12, 117000), "view"),
                   ("257597", "355908", dt.datetime(2015, 6, 2, 5, 17, 56, 276000), "purchase")]  # fmt: skip
    items = {i: (c, a) for i, c, a in rows(db, "SELECT item_id, categories, attributes FROM items")}
    assert items["355908"] == (["1174"], {"parent_category": "500"})  # the latest categoryid wins
    assert items["248676"] == (["491"], {"parent_category": "679"})  # from the second properties file
    assert items["318965"] == ([], {})


def test_generic_csv_with_toml_mapping(tmp_path):
    db = tmp_path / "g.duckdb"
    r = ingest(db, "generic", FIX / "generic" / "events.csv", mapping=ColumnMapping.from_toml(FIX / "generic" / "mapping.toml"))
    assert (r.accepted, r.rejected) == (4, 0)
    assert "read as ISO-8601" in r.assumptions[0]
    got = rows(db, "SELECT user_id, item_id, ts, event_type, value, context FROM events ORDER BY user_id, ts, seq")
    assert got == [
        ("v1", "s2", dt.datetime(2024, 3, 1, 8, 5), "click", 2.0, {"device": "mobile"}),  # +02:00 converted to UTC
        ("v1", "s1", dt.datetime(2024, 3, 1, 10, 0), "view", 1.0, {"device": "mobile"}),  # "View" lower-cased
        ("v2", "s1", dt.datetime(2024, 3, 2, 8, 0), "view", 1.0, {"device": "desktop"}),  # no offset: UTC
        ("v2", "s3", dt.datetime(2024, 3, 2, 8, 0), "purchase", 5.0, {"device": "desktop"}),
    ]
    items = {i: (t, c) for i, t, c in rows(db, "SELECT item_id, title, categories FROM items")}
    assert items["s1"] == ("Guide, Vol. 1", ["Books", "Travel"])


@pytest.mark.parametrize(
    "name, mapping, unit, values",
    [
        ("events.tsv", None, "seconds", [(1, "10", 1700000000, None), (1, "11", 1700000060, None), (2, "10", 1700000100, None)]),
        ("events.jsonl", {"value": "rating"}, "milliseconds",
         [(1, "10", 1700000000, 4.0), (2, "11", 1700000100, None), (3, "10", 1700000200, 2.5)]),
    ],
)  # fmt: skip
def test_generic_tsv_and_json_lines_detect_the_time_unit(tmp_path, name, mapping, unit, values):
    db = tmp_path / "g.duckdb"
    r = ingest(db, "generic", FIX / "generic" / name, mapping=ColumnMapping(**mapping) if mapping else None)
    assert r.accepted == len(values) and f"read as unix {unit}" in r.assumptions[0]
    got = rows(db, "SELECT user_id::INT, item_id, epoch(ts)::BIGINT, value FROM events ORDER BY 1, 3")
    assert got == values


def test_generic_parquet_with_a_timestamp_column(tmp_path):
    import duckdb

    src = tmp_path / "events.parquet"
    con = duckdb.connect()
    con.execute(
        """COPY (SELECT * FROM (VALUES ('u1', 'i1', TIMESTAMP '2024-01-01 10:00:00', 'phone'),
                                       ('u1', 'i2', TIMESTAMP '2024-01-01 09:00:00', NULL),
                                       ('u2', 'i1', NULL, 'web')) t(user_id, item_id, timestamp, device))
           TO ? (FORMAT parquet)""",
        [str(src)],
    )
    con.close()
    db = tmp_path / "p.duckdb"
    r = ingest(db, "generic", src, mapping=ColumnMapping(context=("device",)))
    assert (r.accepted, r.rejected) == (2, 1)
    assert rows(db, "SELECT user_id, item_id, context FROM events ORDER BY ts") == [
        ("u1", "i2", {}),
        ("u1", "i1", {"device": "phone"}),
    ]
    assert rows(db, "SELECT row_number, reason, raw FROM rejects") == [(3, "missing timestamp", "u2,i1,,web")]


def test_every_preset_name_is_listed():
    assert preset_names() == [
        "amazon-reviews", "ciao", "generic", "lastfm-hetrec", "movielens-100k", "movielens-1m", "movielens-20m",
        "movielens-25m", "movielens-latest", "movielens-latest-small", "retailrocket", "seqrec", "taobao",
    ]  # fmt: skip


def test_seqrec_one_line_per_user_dates_items_a_day_apart_in_line_order(tmp_path):
    db = tmp_path / "seq.duckdb"
    # Tiny.txt: "1 1 2 3 4 5", "2 4 5  6 7 2" (two spaces), "3" (no items), "10 3 1"
    r = ingest(db, "seqrec", FIX / "seqrec" / "Tiny.txt")
    assert (r.accepted, r.rejected, r.duplicates) == (12, 1, 0)
    ev = events(db)
    day0 = 946684800  # 2000-01-01
    assert [e for e in ev if e[0] == "2"] == [
        ("2", "4", day0, "interaction", None), ("2", "5", day0 + 86400, "interaction", None),
        ("2", "6", day0 + 2 * 86400, "interaction", None), ("2", "7", day0 + 3 * 86400, "interaction", None),
        ("2", "2", day0 + 4 * 86400, "interaction", None),
    ]  # fmt: skip
    assert [e[1] for e in ev if e[0] == "1"] == ["1", "2", "3", "4", "5"]
    assert [e[1] for e in ev if e[0] == "10"] == ["3", "1"]
    # row numbers count item rows (the 11th row of the stage), the raw text is the whole line
    assert rows(db, "SELECT row_number, reason, raw FROM rejects") == [(11, "line has a user id but no items", "3")]
    again = ingest(db, "seqrec", FIX / "seqrec" / "Tiny.txt")
    assert again.accepted == 0  # re-ingesting the same file adds nothing
