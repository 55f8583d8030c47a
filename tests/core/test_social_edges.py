"""Social edges in the store: the generic --social-file, the lastfm-hetrec and ciao presets on hand-made files in
the exact public layouts (tests/fixtures/social/), summary and forget."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from core.ingest import ColumnMapping, ingest
from core.privacy import forget_user
from core.store import connect_read
from core.store.edges import edge_summary

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "social"
GEN = FIX / "generic"


def rows(db: Path, sql: str) -> list[tuple]:
    with connect_read(db) as con:
        return con.execute(sql).fetchall()


def edges(db: Path) -> list[tuple]:
    return rows(db, "SELECT src_user, dst_user, kind, weight, directed FROM social_edges ORDER BY 1, 2")


def test_generic_undirected_rejects_duplicates_mirrors_and_no_event_users(tmp_path):
    db = tmp_path / "g.duckdb"
    m = ColumnMapping(user="uid", item="sku", time="ts", social_file=str(GEN / "soc.csv"))
    r = ingest(db, "generic", GEN / "ev.csv", mapping=m)
    # 1,2 kept; 2,1 is its mirror; the second 1,2 a duplicate; 1,1 self-loop; ",3" no source; " 5,1" malformed
    assert edges(db) == [("1", "2", "friend", 1.0, False), ("1", "4", "friend", 1.0, False),
                         ("2", "3", "friend", 1.0, False)]  # fmt: skip
    e = r.edges
    assert (e.accepted, e.rejected, e.duplicates, e.mirrored, e.no_events) == (3, 3, 1, 1, 1)  # user 4 has no events
    why = dict(rows(db, "SELECT row_number, reason FROM rejects WHERE reason LIKE 'soc.csv%'"))
    assert why == {4: "soc.csv row 4: self-loop", 5: "soc.csv row 5: missing source user id",
                   8: "soc.csv row 8: malformed source user id"}  # fmt: skip
    assert r.as_dict()["edges"]["accepted"] == 3 and r.accepted == 4
    # the same file again adds nothing: every valid row is now a duplicate or a mirror of a stored edge
    again = ingest(db, "generic", GEN / "ev.csv", mapping=m).edges
    assert (again.accepted, again.duplicates + again.mirrored) == (0, 5)
    assert len(edges(db)) == 3


def test_generic_directed_parquet_with_times_and_bad_weights(tmp_path):
    soc = tmp_path / "s.parquet"
    pd.DataFrame({"a": ["1", "2", "1", "3", "3"], "b": ["2", "1", "3", "1", "2"], "w": ["2.5", "1", "-1", "nan", "x"],
                  "since": ["1600000000", "", "1600000000", "1600000000", "1600000000"]}).to_parquet(soc)  # fmt: skip
    m = ColumnMapping(user="uid", item="sku", time="ts", social_file=str(soc), src_col="a", dst_col="b",
                      edge_time_col="since", edge_weight_col="w", directed=True, edge_kind="follow")  # fmt: skip
    r = ingest(tmp_path / "d.duckdb", "generic", GEN / "ev.csv", mapping=m)
    assert edges(tmp_path / "d.duckdb") == [("1", "2", "follow", 2.5, True), ("2", "1", "follow", 1.0, True)]
    assert (r.edges.accepted, r.edges.rejected, r.edges.mirrored) == (2, 3, 0)
    reasons = sorted(x[0].split(": ", 1)[1] for x in rows(tmp_path / "d.duckdb", "SELECT reason FROM rejects"))
    assert reasons == ["edge weight is not a finite number", "edge weight is not a number", "edge weight is not positive"]
    since = rows(tmp_path / "d.duckdb", "SELECT epoch(since) FROM social_edges ORDER BY src_user")
    assert since == [(1600000000.0,), (None,)]  # an empty edge time is unknown, not a reject


def test_mapping_toml_and_cli_flags(tmp_path, cli):
    toml = tmp_path / "m.toml"
    toml.write_text(f'user = "uid"\nitem = "sku"\ntime = "ts"\nsocial_file = "{GEN / "soc.csv"}"\n')
    db = tmp_path / "t.duckdb"
    code, out, _ = cli("ingest", "--db", str(db), "--preset", "generic", str(GEN / "ev.csv"), "--mapping", str(toml),
                       "--directed", "--json")  # fmt: skip
    assert code == 0 and json.loads(out)["edges"]["directed"] is True
    assert len(edges(db)) == 4  # directed: 1->2 and 2->1 are two edges (and 4->1)
    code, out, _ = cli("summary", "--db", str(db), "--json")
    s = json.loads(out)["edges"]
    assert (s["edges"], s["directed"], s["users_without_events"]) == (4, 4, 1)


def test_lastfm_hetrec_timestamps_file(tmp_path):
    db = tmp_path / "l.duckdb"
    r = ingest(db, "lastfm-hetrec", FIX / "lastfm")
    assert (r.accepted, r.rejected) == (6, 2)  # the 1956 row and the self-loop 5-5
    assert edges(db) == [("2", "3", "friend", 1.0, False), ("2", "4", "friend", 1.0, False),
                         ("3", "9", "friend", 1.0, False)]  # fmt: skip
    assert (r.edges.mirrored, r.edges.no_events) == (3, 2)  # 4 (only a 1956 row) and 9 have no events
    items = {i: (t, c) for i, t, c in rows(db, "SELECT item_id, title, categories FROM items")}
    assert items["63"] == ('Björk "Live"', ["chillout"])  # UTF-8, a quote kept, CRLF stripped; tie -> smaller id
    assert items["99"] == ('=HYPERLINK("http://x")', ["trip-hop"])  # formula-like text stored as text
    ev = rows(db, "SELECT user_id, item_id, epoch(ts), context['tag'] FROM events ORDER BY user_id, ts, seq")
    assert ev[0] == ("2", "52", 1238536800.0, "chillout")  # milliseconds -> seconds; the tag's text


def test_lastfm_hetrec_day_month_year_file(tmp_path):
    db = tmp_path / "l2.duckdb"
    r = ingest(db, "lastfm-hetrec", FIX / "lastfm_dated")
    assert (r.accepted, r.rejected) == (3, 2)  # 31 February and the self-loop
    assert rows(db, "SELECT min(ts)::VARCHAR FROM events") == [("2009-04-01 00:00:00",)]


def test_ciao_directed_trust(tmp_path):
    db = tmp_path / "c.duckdb"
    r = ingest(db, "ciao", FIX / "ciao")
    assert (r.accepted, r.duplicates) == (3, 1)  # a repeated rating row counted once
    assert edges(db) == [("1", "2", "trust", 1.0, True), ("1", "3", "trust", 1.0, True),
                         ("2", "1", "trust", 1.0, True), ("5", "1", "trust", 1.0, True)]  # fmt: skip
    assert (r.edges.rejected, r.edges.duplicates, r.edges.no_events) == (2, 1, 2)  # 3 and 5 have no ratings
    cats = dict(rows(db, "SELECT item_id, categories FROM items"))
    assert cats == {"100": ["5"], "101": ["2"]}


def test_forget_removes_edges_and_summary_counts(tmp_path):
    db = tmp_path / "f.duckdb"
    ingest(db, "lastfm-hetrec", FIX / "lastfm")
    res = forget_user(db, "2", compact=False)
    assert res.edges == 2
    assert edges(db) == [("3", "9", "friend", 1.0, False)]
    with connect_read(db) as con:
        s = edge_summary(con)
    assert (s["edges"], s["users"], s["users_without_events"], s["mean_degree"]) == (1, 2, 1, 1.0)
    assert forget_user(db, "9", compact=False).edges == 1  # a user known only through an edge can be forgotten
