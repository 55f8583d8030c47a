"""generic: a users file (attributes, for fairness by group) and an items file (titles, categories, attributes)
beside the events, in the same transaction; their bad rows are rejected with the file and row named."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from cli import app
from core.errors import UserInputError
from core.ingest import ColumnMapping, ingest
from core.store import connect_read
from core.store.queries import user_attribute_keys

EVENTS = "visitor,sku,when\nu1,i1,1700000000\nu1,i2,1700000100\nu2,i1,1700000200\nu2,i3,1700000300\n"


@pytest.fixture
def files(tmp_path):
    (tmp_path / "ev.csv").write_text(EVENTS)
    (tmp_path / "users.tsv").write_text("visitor\tgender\tage\nu1\tF\t25-34\nu2\tM\t\n\tX\t1\n")
    pd.DataFrame({"sku": ["i1", "i2", "i9"], "name": ["Shirt, blue", "Mug", "Unused"],
                  "category": ["Apparel|Tops", "Home", None], "brand": ["Acme", None, "Z"]}).to_parquet(tmp_path / "items.parquet")
    return tmp_path


def test_users_and_items_files_with_the_events(files):
    db = files / "s.duckdb"
    r = CliRunner().invoke(app, ["ingest", "--db", str(db), "-p", "generic", str(files / "ev.csv"), "--user-col", "visitor",
                                 "--item-col", "sku", "--time-col", "when",
                                 "--users-file", str(files / "users.tsv"), "--items-file", str(files / "items.parquet"),
                                 "--json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert (out["accepted"], out["rejected"], out["reject_reasons"]) == (4, 1, {"missing user id": 1})
    with connect_read(db) as con:
        assert con.execute("SELECT * FROM users ORDER BY 1").fetchall() == [
            ("u1", {"gender": "F", "age": "25-34"}), ("u2", {"gender": "M"})]  # fmt: skip
        assert con.execute("SELECT * FROM items ORDER BY 1").fetchall() == [
            ("i1", "Shirt, blue", ["Apparel", "Tops"], {"brand": "Acme"}), ("i2", "Mug", ["Home"], {}),
            ("i3", None, [], {}), ("i9", "Unused", [], {"brand": "Z"})]  # fmt: skip
        assert con.execute("SELECT row_number, reason, raw FROM rejects").fetchall() == [
            (3, "users.tsv row 3: missing user id", "\tX\t1")]  # fmt: skip
        assert set(user_attribute_keys(con)) >= {"gender", "age"}


def test_side_files_from_a_toml_mapping_and_their_errors(files):
    (files / "m.toml").write_text('user = "visitor"\nitem = "sku"\ntime = "when"\nusers_file = "%s"\n'
                                  % (files / "users.tsv"))
    db = files / "t.duckdb"
    ingest(db, "generic", files / "ev.csv", mapping=ColumnMapping.from_toml(files / "m.toml"))
    with connect_read(db) as con:
        assert con.execute("SELECT attributes FROM users WHERE user_id = 'u1'").fetchone()[0] == {"gender": "F",
                                                                                                 "age": "25-34"}
    (files / "bad_users.csv").write_text("customer,gender\nu1,F\n")
    m = ColumnMapping(user="visitor", item="sku", time="when", users_file=str(files / "bad_users.csv"))
    with pytest.raises(UserInputError, match=r"The users file bad_users.csv has no 'visitor' column \(its columns: "
                                             r"customer, gender\)"):
        ingest(db, "generic", files / "ev.csv", mapping=m)
    with pytest.raises(UserInputError, match="items file"):
        ingest(db, "generic", files / "ev.csv", mapping=ColumnMapping(user="visitor", item="sku", time="when",
                                                                      items_file=str(files / "nothing.csv")))
    with connect_read(db) as con:  # a failed run changed nothing but its own record
        assert con.execute("SELECT count(*) FROM events").fetchone()[0] == 4
        assert con.execute("SELECT count(*) FROM users").fetchone()[0] == 2
