"""The hostile part of the bad-input corpus (tests/fixtures/bad/, written by tests/fixtures/make_hostile_fixtures.py):
decompression bombs, damaged gzip, ids with SQL and shell metacharacters, Unicode confusables and bidi controls,
HTML and formula text, NUL and control characters, extreme numbers and dates, odd headers and column names, a line
longer than the reader's buffer, a file that changes while it is read, the same file twice.

Every case ingests into a copy of the tiny synthetic database: a refused file leaves every table as it was (only a
failed run is recorded); an accepted one stores exactly the expected values and leaves every earlier row, and every
table, as it was.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.errors import UserInputError
from core.ingest import ColumnMapping, ingest
from core.store import connect_read

BAD = Path(__file__).resolve().parent.parent / "fixtures" / "bad"
TABLES = ("events", "users", "items", "rejects", "meta")


def state(db: Path) -> dict:
    """Row count and an order-independent hash of every table except ingest_runs, and the list of tables."""
    with connect_read(db) as con:
        out = {t: con.execute(f"SELECT count(*), coalesce(bit_xor(hash(x)), 0) FROM {t} x").fetchall()[0] for t in TABLES}
        out["tables"] = sorted(r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE NOT temporary").fetchall())
        out["databases"] = sorted(r[0] for r in con.execute("SELECT database_name FROM duckdb_databases()").fetchall())
    return out


def runs(db: Path) -> list[tuple]:
    with connect_read(db) as con:
        return con.execute("SELECT run_id, status, message FROM ingest_runs ORDER BY run_id").fetchall()


@dataclass(frozen=True)
class Refused:
    file: str
    preset: str
    error: str
    mapping: dict | None = None


REFUSED = [
    Refused("bomb_rows.csv.gz", "generic", r"^bomb_rows\.csv\.gz expands more than 200 times when decompressed, like a decompression bomb"),
    Refused("bomb_zeros.json.gz", "amazon-reviews", r"^bomb_zeros\.json\.gz expands more than 200 times"),
    Refused("bomb.parquet", "generic", r"^bomb\.parquet expands more than 200 times"),
    Refused("trailing_garbage.csv.gz", "generic", r"^trailing_garbage\.csv\.gz looks compressed but cannot be decompressed"),
    Refused("empty.csv.gz", "generic", r"^empty\.csv\.gz has an empty first line"),
    Refused("only_newlines.csv", "generic", r"^only_newlines\.csv has an empty first line"),
    Refused("utf16.csv", "generic", r"^utf16\.csv is not valid utf-8 text; if it is Latin-1, set encoding to latin-1\.$"),
    Refused("binary.csv", "generic", r"^binary\.csv is not valid utf-8 text"),
    Refused("duplicate_header.csv", "generic", r"^duplicate_header\.csv has the column\(s\) 'user_id' more than once"),
    Refused("mixed_newlines.csv", "generic", r"^mixed_newlines\.csv has a line ending or quote the reader cannot follow"),
]  # fmt: skip


@pytest.mark.parametrize("case", REFUSED, ids=lambda c: c.file)
def test_hostile_file_is_refused_in_one_sentence_and_nothing_changes(case: Refused, writable_db):
    before, before_runs = state(writable_db), runs(writable_db)
    with pytest.raises(UserInputError, match=case.error) as info:
        ingest(writable_db, case.preset, BAD / case.file, mapping=ColumnMapping(**case.mapping) if case.mapping else None)
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message and message.endswith((".", ")."))
    assert state(writable_db) == before
    after = runs(writable_db)
    assert after[:-1] == before_runs and after[-1][1:] == ("failed", message)


SQL_IDS = ["1'; DROP TABLE events; --", '" OR 1=1 --', "Robert'); DELETE FROM users;--", "x\\'", "%_%", "';ATTACH 'x.db' AS x;--"]
SHELL_IDS = ["$(touch /tmp/pwned)", "`id`", "; rm -rf ~", "| cat /etc/passwd", "&& echo hi", "../../etc/passwd"]
CONFUSABLE_IDS = ["alice", "\u0430lice", "\uff41lice", "al\u200bice", "ALICE", "e\u0301", "\u00e9"]
BIDI_IDS = ["user\u202eevil", "\u2066admin\u2069", "item\u202dx\u202c"]
HTML_TITLES = ['<img src=x onerror="alert(1)">', "<svg onload=alert(1)>", "javascript:alert(1)",
               "</td></tr><script>alert(2)</script>", "&lt;b&gt;escaped&lt;/b&gt;", "[link](javascript:alert(3))"]
FORMULA_IDS = ["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1)", "\t=1+1", "=HYPERLINK(\"http://evil\")"]


@dataclass(frozen=True)
class Stored:
    """An accepted file: exact counts, the (user, item) pairs it adds, titles, reasons of its rejects."""

    file: str
    counts: tuple[int, int, int]  # accepted, rejected, duplicates
    pairs: tuple[tuple[str, str], ...] = ()  # (user_id, item_id) of the new events, in file order (empty: not checked)
    mapping: dict | None = None
    toml: str | None = None
    titles: dict | None = None
    reasons: tuple[str, ...] = ()
    times: tuple[str, ...] = ()  # ISO UTC times of the new events, in file order


STORED = [
    Stored("multi_member.csv.gz", (2, 0, 0), (("1", "10"), ("2", "11"))),
    Stored("sql_ids.csv", (7, 0, 0), (*((u, f"i{n}") for n, u in enumerate(SQL_IDS)), ("ok", "'; DROP TABLE items; --"))),
    Stored("shell_ids.csv", (6, 0, 0), tuple((u, u) for u in SHELL_IDS)),
    Stored("confusable_ids.csv", (7, 0, 0), tuple((u, "i1") for u in CONFUSABLE_IDS)),
    Stored("bidi_controls.csv", (3, 0, 0), tuple((u, f"i{n}") for n, u in enumerate(BIDI_IDS)), {"title": "title"},
           titles={f"i{n}": f"title {u}" for n, u in enumerate(BIDI_IDS)}),
    Stored("html_titles.csv", (6, 0, 0), tuple(("1", f"h{n}") for n in range(6)), {"title": "title"},
           titles={f"h{n}": t for n, t in enumerate(HTML_TITLES)}),
    Stored("formula_ids.csv", (6, 0, 0), tuple((u, u) for u in FORMULA_IDS), {"title": "title"},
           titles={u: u for u in FORMULA_IDS}),
    Stored("nul_byte.csv", (2, 0, 0), (("1", "a\0b"), ("2", "11"))),
    Stored("control_chars.csv", (2, 0, 0), (("u\x01\x07\x1b[31m", "10"), ("2", "i\x7f"))),
    Stored("utf16.csv", (1, 0, 0), (("1", "caf\u00e9"),), {"encoding": "utf-16"}),
    Stored("huge_numbers.csv", (1, 5, 0), (("6", "15"),), {"time_unit": "s"},
           reasons=("timestamp looks like milliseconds where seconds were expected", "timestamp before 1990",
                    "timestamp is not a number")),
    Stored("iso_extreme.csv", (2, 3, 0), (("4", "13"), ("5", "14")), {"time": "when"},
           reasons=("timestamp in the future", "timestamp before 1990", "timestamp is not ISO-8601 text"),
           times=("2023-06-01T05:00:00", "2023-06-01T10:00:00")),
    Stored("deep_json.json", (2, 1, 0), (("1", "10"), ("2", "11")), reasons=("not a JSON object",)),
    Stored("hostile_keys.json", (3, 0, 0), (("u0", "i0"), ("u1", "i1"), ("u2", "i2")),
           {"user": 'us"er', "item": "it.em$", "time": "t[0]"}),
    Stored("hostile_columns.csv", (2, 0, 0), (("u1", "i1"), ("u2", "i2")), toml="hostile_mapping.toml"),
    Stored("hostile_columns.parquet", (2, 0, 0), (("u1", "i1"), ("u2", "i2")),
           {"user": 'user"; DROP TABLE events; --', "item": "item'id", "time": "t\u00edme \u2713"}),
    Stored("wide_header.csv", (1, 0, 0), (("u1", "i1"),)),
    Stored("long_id.csv", (2, 0, 0), (("u" * 100_000, "i1"), ("2", "i2"))),
]  # fmt: skip


@pytest.mark.parametrize("case", STORED, ids=lambda c: c.file)
def test_hostile_values_are_stored_verbatim_and_nothing_else_changes(case: Stored, writable_db):
    before = state(writable_db)
    mapping = ColumnMapping.from_toml(BAD / case.toml) if case.toml else ColumnMapping(**(case.mapping or {}))
    result = ingest(writable_db, "generic", BAD / case.file, mapping=mapping)
    assert (result.accepted, result.rejected, result.duplicates) == case.counts
    with connect_read(writable_db) as con:
        new = con.execute("SELECT user_id, item_id, ts FROM events WHERE run_id = ? ORDER BY seq", [result.run_id]).fetchall()
        reasons = [r[0] for r in con.execute("SELECT reason FROM rejects WHERE run_id = ?", [result.run_id]).fetchall()]
        old = con.execute("SELECT count(*), bit_xor(hash(x)) FROM events x WHERE run_id < ?", [result.run_id]).fetchall()[0]
        users = {r[0] for r in con.execute("SELECT user_id FROM users").fetchall()}
        titles = dict(con.execute("SELECT item_id, title FROM items WHERE list_contains(?, item_id)",
                                  [list(case.titles or {})]).fetchall())
        after = state(writable_db)
    assert [(u, i) for u, i, _ in new] == list(case.pairs)
    assert {u for u, _ in case.pairs} <= users  # confusables and bidi ids stay distinct users, never merged
    if case.titles:
        assert titles == case.titles
    for expected in case.reasons:
        assert any(expected in r for r in reasons), (expected, reasons)
    if case.times:
        assert [t.isoformat() for _, _, t in new] == list(case.times)
    assert old == before["events"]  # earlier events untouched
    assert after["tables"] == before["tables"] and after["databases"] == before["databases"]  # nothing dropped or attached
    for t in ("users", "items"):
        assert after[t][0] >= before[t][0]


def test_a_line_longer_than_the_readers_buffer_is_quarantined_not_lost(writable_db, tmp_path):
    """DuckDB skips a line longer than its read buffer without a record; the run finds it and quarantines it."""
    path = tmp_path / "huge_line.csv"
    with open(path, "w") as f:
        f.write("user_id,item_id,timestamp\n1,10,1700000000\n2,")
        f.write("x" * 40_000_000)
        f.write(",1700000100\n3,12,1700000200\n")
    result = ingest(writable_db, "generic", path)
    assert (result.accepted, result.rejected) == (2, 1)  # 3 rows in, 3 rows accounted for
    with connect_read(writable_db) as con:
        row, reason, raw = con.execute("SELECT row_number, reason, raw FROM rejects WHERE run_id = ?", [result.run_id]).fetchall()[0]
    assert (row, reason) == (3, "huge_line.csv line 3: unreadable line, longer than the reader's limit")
    assert raw == "2," + "x" * 1998


def test_a_file_that_changes_while_it_is_read_lands_nothing_and_the_retry_succeeds(writable_db, tmp_path):
    path = tmp_path / "growing.csv"
    path.write_text("user_id,item_id,timestamp\n1,10,1700000000\n")
    before, before_runs = state(writable_db), runs(writable_db)

    def append_midway(stage: str) -> None:
        if stage == "validating":  # the file was read once; a producer appends meanwhile
            with open(path, "a") as f:
                f.write("2,11,1700000100\n")

    with pytest.raises(UserInputError, match=r"^growing\.csv changed while it was being read, so nothing was ingested"):
        ingest(writable_db, "generic", path, progress=append_midway)
    assert state(writable_db) == before and runs(writable_db)[-1][1] == "failed"
    assert runs(writable_db)[:-1] == before_runs
    result = ingest(writable_db, "generic", path)
    assert (result.accepted, result.rejected) == (2, 0)


def test_the_same_file_twice_adds_nothing_the_second_time(writable_db):
    first = ingest(writable_db, "generic", BAD / "sql_ids.csv")
    after_first = state(writable_db)
    second = ingest(writable_db, "generic", BAD / "sql_ids.csv")
    assert (first.accepted, second.accepted, second.duplicates) == (7, 0, 7)
    assert {k: v for k, v in state(writable_db).items() if k != "meta"} == {k: v for k, v in after_first.items() if k != "meta"}


def test_timestamps_with_offsets_are_stored_in_utc(writable_db):
    result = ingest(writable_db, "generic", BAD / "iso_extreme.csv", mapping=ColumnMapping(time="when", time_unit="iso"))
    with connect_read(writable_db) as con:
        ts = [r[0] for r in con.execute("SELECT ts FROM events WHERE run_id = ? ORDER BY seq", [result.run_id]).fetchall()]
    assert ts == [dt.datetime(2023, 6, 1, 5, 0), dt.datetime(2023, 6, 1, 10, 0)]


def test_corpus_has_at_least_fifty_files_and_fifty_cases():
    from test_ingest_bad import QUARANTINED
    from test_ingest_bad import REFUSED as BASE_REFUSED

    assert len([p for p in BAD.iterdir() if p.is_file()]) >= 50
    assert len(BASE_REFUSED) + len(QUARANTINED) + len(REFUSED) + len(STORED) >= 60
