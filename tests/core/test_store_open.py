"""A --db that is not a DuckDB database file (a log passed by mistake) and a damaged database file are each one
sentence from the CLI, never DuckDB's own errors, and the file passed is never changed."""

from __future__ import annotations

import re
import shutil
import sys

import duckdb
import pytest

from cli import app
from cli.common import run_app
from core.errors import UserInputError
from core.store import StoreError, connect_read, connect_write

DAMAGED = r"^error: The database .* is damaged \(Corrupt database file: .*\); restore it from a backup or rebuild it"


def cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["interestlens", *args])
    code = run_app(app)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_duckdb_file_has_the_magic_the_check_relies_on(tmp_path):
    con = duckdb.connect(str(tmp_path / "x.duckdb"))
    con.execute("CREATE TABLE t AS SELECT 1 AS a")
    con.close()
    assert (tmp_path / "x.duckdb").read_bytes()[8:12] == b"DUCK"


LOGS = {
    "clicks.csv": (b"user_id,item_id,timestamp\nu1,i1,1735689600\n", "a CSV file"),
    "clicks.jsonl": (b'{"user_id": "u1", "item_id": "i1", "timestamp": 1735689600}\n', "a JSON Lines file"),
    "clicks.parquet": (None, "a Parquet file"),
}


def _write_log(tmp_path, name: str):
    path = tmp_path / "data" / name
    path.parent.mkdir()
    content, _ = LOGS[name]
    if content is None:
        duckdb.connect().execute("COPY (SELECT 'u1' AS user_id, 'i1' AS item_id, 1735689600 AS ts) TO ? (FORMAT parquet)",
                                 [str(path)])
    else:
        path.write_bytes(content)
    return path, path.read_bytes()


@pytest.mark.parametrize("name", list(LOGS))
def test_a_log_passed_as_db_is_one_sentence_and_left_unchanged(monkeypatch, capsys, tmp_path, name):
    path, before = _write_log(tmp_path, name)
    code, out, err = cli(monkeypatch, capsys, "summary", "--db", str(path))
    assert (code, out) == (1, "")
    assert err == (f"error: {path} is not a DuckDB database file (it looks like {LOGS[name][1]}); --db is the "
                   "database, not a log. Load a log into a database with `interestlens ingest`.\n")
    assert "unexpected" not in err and err.count("\n") == 1
    assert path.read_bytes() == before and sorted(p.name for p in path.parent.iterdir()) == [name]


def test_the_write_path_refuses_it_too(monkeypatch, capsys, tmp_path):
    path, before = _write_log(tmp_path, "clicks.csv")
    source = tmp_path / "more.csv"
    source.write_bytes(before)
    code, out, err = cli(monkeypatch, capsys, "ingest", "--db", str(path), "--preset", "generic", str(source))
    assert code == 1 and err.startswith(f"error: {path} is not a DuckDB database file (it looks like a CSV file)")
    assert "other tables" not in err and err.count("\n") == 1
    with pytest.raises(UserInputError, match="is not a DuckDB database file"):
        with connect_write(path):
            pass
    assert path.read_bytes() == before and sorted(p.name for p in path.parent.iterdir()) == ["clicks.csv"]


def test_an_empty_file_and_a_new_path_keep_their_behaviour(tmp_path):
    empty = tmp_path / "empty.duckdb"
    empty.touch()
    with pytest.raises(StoreError, match="could not be opened"):  # DuckDB itself refuses a 0-byte file
        with connect_read(empty):
            pass
    with connect_write(tmp_path / "new.duckdb") as con:  # a path that does not exist yet becomes a database
        assert con.execute("SELECT count(*) FROM events").fetchone()[0] == 0


def _corrupt(db, column: str) -> None:
    """Overwrite 16 bytes in the middle of the block holding the first segment of events.<column>."""
    con = duckdb.connect(str(db), read_only=True)
    block_size = con.execute("SELECT block_size FROM pragma_database_size()").fetchone()[0]
    block, offset = con.execute(
        "SELECT block_id, block_offset FROM pragma_storage_info('events') WHERE column_name = ? AND block_id >= 0 "
        "ORDER BY row_group_id, block_id LIMIT 1", [column]).fetchone()
    con.close()
    with open(db, "r+b") as f:  # 3 headers of 4 KiB, then blocks of `block_size` (8-byte checksum, then data)
        f.seek(3 * 4096 + block * block_size + 8 + offset + 16)
        f.write(b"\xa5" * 16)


def test_a_damaged_database_is_one_sentence(monkeypatch, capsys, synthetic_db, tmp_path):
    db = tmp_path / "damaged.duckdb"
    shutil.copy2(synthetic_db, db)
    _corrupt(db, "ts")  # `summary` reads min(ts), max(ts): the damage is found in the query, after the open
    code, out, err = cli(monkeypatch, capsys, "summary", "--db", str(db))
    assert (code, out) == (1, "") and err.count("\n") == 1 and "unexpected" not in err
    assert re.match(DAMAGED, err), err
    assert err.rstrip().endswith("rebuild it. To rebuild it: `interestlens ingest` or `interestlens build`.")


def test_a_damaged_catalog_is_one_sentence_on_open(monkeypatch, capsys, synthetic_db, tmp_path):
    db = tmp_path / "damaged.duckdb"
    shutil.copy2(synthetic_db, db)
    with open(db, "r+b") as f:  # the first block after the headers
        f.seek(3 * 4096 + 1000)
        f.write(b"\xa5" * 16)
    code, out, err = cli(monkeypatch, capsys, "summary", "--db", str(db))
    assert (code, out) == (1, "") and "unexpected" not in err
    assert re.match(DAMAGED, err), err
    with pytest.raises(StoreError, match="is damaged"):
        with connect_write(db):
            pass
