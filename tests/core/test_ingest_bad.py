"""The bad-input corpus (tests/fixtures/bad/): every ugly case of FORMATS.md meets a clear one-sentence error
with the database unchanged, or quarantined rows with their reasons and only the good rows added.

Each case ingests into a copy of the tiny synthetic database, so "unchanged" is checked against real data.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from core.errors import UserInputError
from core.ingest import ColumnMapping, ingest
from core.store import connect_read

BAD = Path(__file__).resolve().parent.parent / "fixtures" / "bad"
TABLES = ("events", "users", "items", "rejects", "meta")


def state(db: Path) -> dict:
    """Row count and an order-independent hash of every table except ingest_runs."""
    with connect_read(db) as con:
        return {t: con.execute(f"SELECT count(*), coalesce(bit_xor(hash(x)), 0) FROM {t} x").fetchall()[0] for t in TABLES}


def runs(db: Path) -> list[tuple]:
    with connect_read(db) as con:
        return con.execute("SELECT run_id, status, message FROM ingest_runs ORDER BY run_id").fetchall()


@dataclass(frozen=True)
class Bad:
    """A refused file: the error must match `error` and nothing but a failed run record may change."""

    file: str
    preset: str
    error: str
    mapping: dict | None = None


@dataclass(frozen=True)
class Quarantine:
    """A partly bad file: exact counts, each reason present, rejected rows absent from events."""

    file: str
    preset: str
    accepted: int
    rejected: int
    reasons: tuple[str, ...]
    duplicates: int = 0
    mapping: dict | None = None
    rows: tuple[int, ...] = field(default=())  # rejects.row_number expected


REFUSED = [
    Bad("empty.csv", "generic", r"empty\.csv is empty; expected at least one row"),
    Bad("header_only.csv", "generic", r"header_only\.csv has no event rows"),
    Bad("missing_column.csv", "generic", r"missing the required column\(s\) 'item_id' \(item\); its columns are 'user_id', 'timestamp'"),
    Bad("semicolon.csv", "generic", r"its columns are 'user_id;item_id;timestamp' \(wrong delimiter\?\)", {"delimiter": ","}),
    Bad("comma_u.data", "movielens-100k", r"comma_u\.data has no line in the expected layout \(4 tab-separated fields"),
    Bad("comma_u.data", "taobao", r"no line in the expected layout \(5 comma-separated fields"),
    Bad("ml1m_all_bad.dat", "movielens-1m", r"no line in the expected layout \(4 ::-separated fields"),
    Bad("latin1.csv", "generic", r"latin1\.csv is not valid UTF-8 text \(line 2\); if it is Latin-1, set encoding to latin-1"),
    Bad("truncated.json.gz", "amazon-reviews", r"truncated\.json\.gz looks compressed but cannot be decompressed"),
    Bad("truncated.csv.gz", "generic", r"truncated\.csv\.gz looks compressed but cannot be decompressed"),
    Bad("not_reviews.json", "amazon-reviews", r"does not look like Amazon reviews: expected JSON lines"),
    Bad("atomic_missing_timestamp.inter", "movielens-100k", r"missing the required column\(s\) 'timestamp' \(time\)"),
    Bad("missing_file.csv", "generic", r"The source .*missing_file\.csv does not exist; generic expects one events file"),
]

QUARANTINED = [
    Quarantine("null_ids.csv", "generic", 1, 4, ("missing user id", "missing item id"), rows=(1, 2, 3, 4)),
    Quarantine("text_timestamps.csv", "generic", 2, 1, ("timestamp is not a number",), mapping={"time_unit": "s"}),
    Quarantine("future.data", "movielens-100k", 1, 1, ("timestamp in the future",), rows=(2,)),
    Quarantine("before_1990.data", "movielens-100k", 1, 1, ("timestamp before 1990",)),
    Quarantine("milliseconds.data", "movielens-100k", 1, 1, ("timestamp looks like milliseconds where seconds were expected",)),
    Quarantine("negative_rating.data", "movielens-100k", 1, 1, ("negative rating",)),
    Quarantine("rating_out_of_range.data", "movielens-100k", 1, 2, ("rating outside 0.5-5", "rating is not a number")),
    Quarantine("duplicated_rows.csv", "generic", 3, 0, (), duplicates=2, mapping={"event": "event"}),
    Quarantine("taobao_window.csv", "taobao", 2, 2, ("timestamp outside the documented window 2017-11-25 to 2017-12-03 (UTC+8)",)),
    Quarantine("taobao_behaviour.csv", "taobao", 1, 2, ('unknown behaviour type "like"', "missing event type")),
    Quarantine("retailrocket_seconds.csv", "retailrocket", 2, 2,
               ("timestamp looks like seconds where milliseconds were expected", 'unknown event "refund"')),
    Quarantine("amazon_bad_lines.json", "amazon-reviews", 1, 5,
               ("not a JSON object", "missing user id", "timestamp is not a number", "rating above 5"), rows=(2, 3, 4, 5, 6)),
    Quarantine("ml1m_short_lines.dat", "movielens-1m", 2, 2, ("line 2: unreadable line, wrong number of fields",
                                                              "line 4: unreadable line, wrong number of fields"), rows=(2, 4)),
    Quarantine("iso_garbage.csv", "generic", 2, 1, ("timestamp is not ISO-8601 text",),
               mapping={"user": "user", "item": "item", "time": "when"}),
    Quarantine("ms_mixed.csv", "generic", 3, 1, ("timestamp looks like seconds where milliseconds were expected",)),
    Quarantine("bad_value.csv", "generic", 2, 2, ("value is not a number", "value is not a finite number"),
               mapping={"value": "weight"}),
    Quarantine("array.json", "generic", 1, 3, ("not a JSON object",), rows=(1, 2, 4)),
    Quarantine("extra_columns_ratings.csv", "movielens-latest", 2, 0, ()),
    Quarantine("semicolon.csv", "generic", 2, 0, ()),
    Quarantine("bom_crlf.csv", "generic", 2, 0, ()),
    Quarantine("quoted_fields.csv", "generic", 3, 0, (), mapping={"title": "title"}),
    Quarantine("formula_html_titles.csv", "generic", 4, 0, (), mapping={"title": "title"}),
]  # fmt: skip


def _mapping(d: dict | None) -> ColumnMapping | None:
    return ColumnMapping(**d) if d is not None else None


@pytest.mark.parametrize("case", REFUSED, ids=lambda c: f"{c.preset}:{c.file}")
def test_refused_with_one_sentence_and_database_unchanged(case: Bad, writable_db):
    before, before_runs = state(writable_db), runs(writable_db)
    with pytest.raises(UserInputError, match=case.error) as info:
        ingest(writable_db, case.preset, BAD / case.file, mapping=_mapping(case.mapping))
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message and message.endswith(".")
    assert state(writable_db) == before
    after_runs = runs(writable_db)
    if case.file != "missing_file.csv":  # a run starts only once the source exists
        assert after_runs[:-1] == before_runs and after_runs[-1][1] == "failed" and after_runs[-1][2] == message
    else:
        assert after_runs == before_runs


@pytest.mark.parametrize("case", QUARANTINED, ids=lambda c: f"{c.preset}:{c.file}")
def test_quarantined_rows_have_reasons_and_only_good_rows_land(case: Quarantine, writable_db):
    before = state(writable_db)
    result = ingest(writable_db, case.preset, BAD / case.file, mapping=_mapping(case.mapping))
    assert (result.accepted, result.rejected, result.duplicates) == (case.accepted, case.rejected, case.duplicates)
    with connect_read(writable_db) as con:
        reasons = [r[0] for r in con.execute("SELECT reason FROM rejects WHERE run_id = ?", [result.run_id]).fetchall()]
        rows = [r[0] for r in con.execute("SELECT row_number FROM rejects WHERE run_id = ? ORDER BY 1", [result.run_id]).fetchall()]
        new = con.execute("SELECT count(*) FROM events WHERE run_id = ?", [result.run_id]).fetchall()[0][0]
        old = con.execute("SELECT count(*), bit_xor(hash(x)) FROM events x WHERE run_id < ?", [result.run_id]).fetchall()[0]
    assert len(reasons) == case.rejected
    for expected in case.reasons:
        assert any(expected in r for r in reasons), (expected, reasons)
    if case.rows:
        assert tuple(rows) == case.rows
    assert new == case.accepted
    assert old == before["events"]  # earlier events untouched


def test_text_in_titles_is_stored_verbatim(writable_db):
    """Formula-like and HTML text is data: stored exactly, never interpreted (the app shows it as text)."""
    ingest(writable_db, "generic", BAD / "formula_html_titles.csv", mapping=ColumnMapping(title="title"))
    with connect_read(writable_db) as con:
        titles = dict(con.execute("SELECT item_id, title FROM items WHERE item_id IN ('10', '11', '12', '13')").fetchall())
    assert titles == {
        "10": '=HYPERLINK("http://example.org","click")',
        "11": "<script>alert(1)</script>",
        "12": "<b>bold</b> & more",
        "13": "+SUM(A1:A2)",
    }


def test_quoted_delimiters_and_newlines_survive(writable_db):
    ingest(writable_db, "generic", BAD / "quoted_fields.csv", mapping=ColumnMapping(title="title"))
    with connect_read(writable_db) as con:
        titles = dict(con.execute("SELECT item_id, title FROM items WHERE item_id IN ('10', '11')").fetchall())
    assert titles == {"10": "Guide, Vol. 1", "11": 'Two\nlines, "quoted"'}


def test_latin1_read_as_latin1_decodes_correctly(writable_db):
    ingest(writable_db, "generic", BAD / "latin1.csv", mapping=ColumnMapping(encoding="latin-1", title="title"))
    with connect_read(writable_db) as con:
        titles = dict(con.execute("SELECT item_id, title FROM items WHERE item_id IN ('10', '11')").fetchall())
    assert titles == {"10": "Café Noir", "11": "Naïve"}


def test_bom_and_crlf_leave_no_stray_characters(writable_db):
    ingest(writable_db, "generic", BAD / "bom_crlf.csv")
    with connect_read(writable_db) as con:
        rows = con.execute("SELECT user_id, item_id, epoch(ts)::BIGINT FROM events WHERE user_id IN ('1', '2') ORDER BY 1").fetchall()
    assert rows == [("1", "10", 1700000000), ("2", "11", 1700000100)]


def test_a_line_over_the_reader_limit_is_quarantined(writable_db, tmp_path):
    """FORMATS' "200 MB line", at the reader's 2 MB limit so the test stays small: that line alone is rejected."""
    path = tmp_path / "long.csv"
    path.write_text("user_id,item_id,timestamp\n1,10,1700000000\n2," + "x" * 3_000_000 + ",1700000100\n3,12,1700000200\n")
    result = ingest(writable_db, "generic", path)
    assert (result.accepted, result.rejected) == (2, 1)
    with connect_read(writable_db) as con:
        reason, raw = con.execute("SELECT reason, raw FROM rejects WHERE run_id = ?", [result.run_id]).fetchall()[0]
    assert "line 3: unreadable line, longer than the reader's limit" in reason
    assert len(raw) <= 2000


def test_gzip_is_read_whatever_its_name(writable_db, tmp_path):
    path = tmp_path / "events.csv"  # gzip content without the .gz extension
    path.write_bytes(gzip.compress(b"user_id,item_id,timestamp\n1,10,1700000000\n2,11,1700000100\n"))
    assert ingest(writable_db, "generic", path).accepted == 2


def test_truncated_metadata_fails_the_whole_run(writable_db):
    """Atomicity: the reviews are fine, the metadata breaks part-way, so not one review lands."""
    before, before_runs = state(writable_db), runs(writable_db)
    with pytest.raises(UserInputError, match="meta_truncated.json.gz looks compressed but cannot be decompressed"):
        ingest(writable_db, "amazon-reviews", BAD / "reviews_ok.json", meta=BAD / "meta_truncated.json.gz")
    assert state(writable_db) == before
    assert runs(writable_db)[:-1] == before_runs and runs(writable_db)[-1][1] == "failed"


def test_unknown_mapping_keys_and_wrong_options_are_one_sentence(tmp_path):
    with pytest.raises(UserInputError, match=r"unknown keys when; expected some of"):
        ColumnMapping.from_toml(BAD / "bad_mapping.toml")
    with pytest.raises(UserInputError, match="Column mapping options apply only when preset is generic, not taobao"):
        ingest(tmp_path / "x.duckdb", "taobao", BAD / "taobao_window.csv", mapping=ColumnMapping())
    with pytest.raises(UserInputError, match="Unknown preset 'movielens-2k'; expected one of amazon-reviews"):
        ingest(tmp_path / "x.duckdb", "movielens-2k", BAD / "taobao_window.csv")
    with pytest.raises(UserInputError, match="is a folder; expected a file"):
        ingest(tmp_path / "x.duckdb", "generic", BAD)


def test_corpus_has_at_least_thirty_files():
    assert len([p for p in BAD.iterdir() if p.is_file()]) >= 30
