import pytest

from core.store import SCHEMA_VERSION, StoreError, connect_read, connect_write


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
