"""Property tests (hypothesis, derandomised): arbitrary strings at every user-facing input of `core`.

- the user search box and filters (`list_users` with a `UserFilter`): the SQL text never depends on the values
  (it is the same statement as for a harmless value, so values only travel as parameters) and the rows are exactly
  those a plain Python filter picks;
- column names in a generic file and its mapping (flags and the TOML file): the run stores exactly the written
  values, or is refused in one sentence with the database unchanged;
- CLI `--user` / `--item` ids for every command that takes one: an unknown id exits 1 with one sentence, and
  `forget` changes nothing.
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cli import app
from cli.common import run_app
from core.errors import UserInputError
from core.ingest import ColumnMapping, ingest
from core.store import connect_read, connect_write
from core.store.queries import UserFilter, list_users

HOSTILE = ["'; DROP TABLE events; --", '" OR 1=1 --', "%", "_", "\\", "' OR ''='", "u00%", "$(id)", "`id`",
           "<script>alert(1)</script>", "=HYPERLINK(\"x\")", "\u202eevil", "\u0430lice", "NULL", "", " ", "\x00"]
TEXT = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=20), st.from_regex(r"u0[0-9]{0,2}", fullmatch=True))
FAST = settings(max_examples=15, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


class Recorder:
    """A connection that remembers every SQL text it is asked to run."""

    def __init__(self, con):
        self.con, self.sql = con, []

    def execute(self, sql, params=None):
        self.sql.append(sql)
        return self.con.execute(sql, params) if params is not None else self.con.execute(sql)


@pytest.fixture(scope="module")
def population(synthetic_db):
    with connect_read(synthetic_db) as con:
        rows = con.execute(
            """SELECT u.user_id, u.attributes, count(e.user_id) FROM users u LEFT JOIN events e USING (user_id)
               GROUP BY 1, 2"""
        ).fetchall()
    return {u: (dict(a or {}), int(n)) for u, a, n in rows}


def _sql_of(con, flt: UserFilter, order: str) -> tuple[list[str], list[str]]:
    rec = Recorder(con)
    ids = list_users(rec, flt, order, limit=1000)["user_id"].tolist()
    return rec.sql, ids


@settings(max_examples=80, deadline=None, derandomize=True, database=None)
@given(search=TEXT, key=st.one_of(st.sampled_from(["gender", "region", "age_band"]), TEXT),
       value=st.one_of(st.sampled_from(["F", "M", "NA", "APAC"]), TEXT),
       lo=st.one_of(st.none(), st.integers(-5, 120)), hi=st.one_of(st.none(), st.integers(-5, 120)),
       order=st.sampled_from(["events_desc", "events_asc", "user_id", "recent"]))
def test_user_search_and_filters_stay_parameterised(synthetic_db, population, search, key, value, lo, hi, order):
    flt = UserFilter(search=search or None, attributes=((key, value),), min_events=lo, max_events=hi)
    benign = UserFilter(search="x" if search else None, attributes=(("k", "v"),), min_events=lo, max_events=hi)
    with connect_read(synthetic_db) as con:
        sql, ids = _sql_of(con, flt, order)
        benign_sql, _ = _sql_of(con, benign, order)
    assert sql == benign_sql  # the statement is the same whatever the values: they only travel as parameters
    expected = {
        u for u, (attrs, n) in population.items()
        if (not search or search.lower() in u.lower()) and attrs.get(key) == value
        and (lo is None or n >= lo) and (hi is None or n <= hi)
    }  # fmt: skip
    if search is None or search.isascii():  # Python's and DuckDB's lower() agree on ASCII
        assert set(ids) == expected
    else:
        assert set(ids) <= set(population)


def _db_state(db: Path) -> tuple:
    with connect_read(db) as con:
        return tuple(con.execute(f"SELECT count(*), coalesce(bit_xor(hash(x)), 0) FROM {t} x").fetchall()[0]
                     for t in ("events", "users", "items", "rejects", "meta"))


@pytest.fixture(scope="module")
def empty_db(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("hostile") / "base.duckdb"
    with connect_write(db):
        pass
    return db


NAME = st.text(min_size=1, max_size=12).filter(lambda s: s.strip() == s)
VALUE = st.one_of(st.sampled_from(HOSTILE), st.text(min_size=1, max_size=15))


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")


def _check_ingest(db: Path, path: Path, mapping: ColumnMapping, rows: list[list[str]]) -> None:
    before = _db_state(db)
    with connect_read(db) as con:
        n_runs = con.execute("SELECT count(*) FROM ingest_runs").fetchall()[0][0]
    try:
        result = ingest(db, "generic", path, mapping=mapping)
    except UserInputError as exc:
        message = str(exc)
        assert "\n" not in message and message.endswith((".", ")."))
        assert _db_state(db) == before
        return
    with connect_read(db) as con:
        stored = con.execute("SELECT user_id, item_id FROM events WHERE run_id = ? ORDER BY seq", [result.run_id]).fetchall()
        reasons = [r[0] for r in con.execute("SELECT reason FROM rejects WHERE run_id = ?", [result.run_id]).fetchall()]
        assert con.execute("SELECT count(*) FROM ingest_runs").fetchall()[0][0] == n_runs + 1
    assert result.accepted + result.rejected + result.duplicates == len(rows)  # every row accounted for
    assert set(reasons) <= {"missing user id", "missing item id"}
    written = [(u, i) for u, i, _ in rows]
    assert all(pair in written for pair in stored)  # stored exactly as written (no trimming, folding, decoding)
    good = [(u, i) for u, i in written if u.strip() not in ("", "NULL", "null") and i.strip() not in ("", "NULL", "null")]
    assert len(stored) == len(set(good)) and set(stored) == set(good)


@FAST
@given(names=st.lists(NAME, min_size=3, max_size=3, unique=True), values=st.lists(st.tuples(VALUE, VALUE), min_size=1, max_size=4))
def test_arbitrary_column_names_and_ids_through_a_mapping(empty_db, tmp_path, names, values):
    db, path = tmp_path / "h.duckdb", tmp_path / "events.csv"
    db.write_bytes(empty_db.read_bytes())
    rows = [[u, i, str(1_700_000_000 + n)] for n, (u, i) in enumerate(values)]
    _write_csv(path, names, rows)
    _check_ingest(db, path, ColumnMapping(user=names[0], item=names[1], time=names[2], time_unit="s"), rows)
    db.unlink()


def _toml_string(s: str) -> str:
    out = []
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


@FAST
@given(names=st.lists(NAME, min_size=3, max_size=3, unique=True))
def test_arbitrary_column_names_through_the_toml_mapping(empty_db, tmp_path, names):
    db, path, toml = tmp_path / "t.duckdb", tmp_path / "events.csv", tmp_path / "mapping.toml"
    db.write_bytes(empty_db.read_bytes())
    toml.write_text(f"user = {_toml_string(names[0])}\nitem = {_toml_string(names[1])}\ntime = {_toml_string(names[2])}\n"
                    'time_unit = "s"\n', encoding="utf-8")
    mapping = ColumnMapping.from_toml(toml)
    assert (mapping.user, mapping.item, mapping.time) == tuple(names)  # the names arrive exactly
    rows = [["a", "b", "1700000000"], ["c", "d", "1700000100"]]
    _write_csv(path, names, rows)
    _check_ingest(db, path, mapping, rows)
    db.unlink()


def _cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["interestlens", *args])
    code = run_app(app)
    out = capsys.readouterr()
    return code, out.out, out.err


ID = st.one_of(st.sampled_from([h for h in HOSTILE if "\x00" not in h]),
               st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=20))


@settings(max_examples=12, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(user=ID)
def test_every_cli_command_refuses_an_unknown_user_in_one_sentence(monkeypatch, capsys, writable_db, untrained_model_dir, user):
    assume(not (len(user) == 4 and user.startswith("u") and user[1:].isdigit()))  # not one of the fixture's users
    before = _db_state(writable_db)
    common = ["--db", str(writable_db)]
    model = ["--model", str(untrained_model_dir)]
    for args in (["recommend", *common, *model, f"--user={user}"], ["trajectory", *common, *model, f"--user={user}"],
                 ["explain", *common, *model, f"--user={user}"], ["forget", *common, f"--user={user}"]):
        code, out, err = _cli(monkeypatch, capsys, *args)
        assert code == 1 and out == "", (args, out, err)
        assert err.startswith("error: There is no user ") and err.endswith(" in this database.\n"), (args, err)
        assert err.count("\n") == 1
    assert _db_state(writable_db) == before


@settings(max_examples=10, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(item=ID)
def test_explain_refuses_an_unknown_item_in_one_sentence(monkeypatch, capsys, synthetic_db, untrained_model_dir, item):
    assume(not (item.startswith("i") and item[1:].isdigit()))
    code, out, err = _cli(monkeypatch, capsys, "explain", "--db", str(synthetic_db), "--model", str(untrained_model_dir),
                          "--user", "u003", f"--item={item}")
    assert code == 1 and out == ""
    assert err.startswith("error: The model does not know item ") and err.count("\n") == 1
