"""core.privacy: demo-mode pseudonyms (stable, keyed, resolvable through the database) and `forget` (nothing of the
user remains: not in a table, not in a derived file, not as bytes in the database file)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from cli import app
from cli.common import run_app
from core.checkpoint import load_checkpoint
from core.errors import NotFoundError
from core.evaluate import evaluate_model
from core.ingest import ingest
from core.privacy import FORGOTTEN_KEY, Pseudonymizer, forget_user, rejects_carrying
from core.recommend import RECOMMENDATIONS_FILE, recommend_all, write_recommendations
from core.store import connect_read
from core.trajectory import VIEWS_FILE, build_drift
from core.trajectory.sidecar import UserViews

GONE = "u007"  # a synthetic user with events and attributes


def cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["interestlens", *args])
    code = run_app(app)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_pseudonyms_are_stable_keyed_and_resolved_by_the_database(synthetic_db):
    p, other = Pseudonymizer("demo key"), Pseudonymizer("another key")
    assert p.pseudonym("u003") == p.pseudonym("u003") == Pseudonymizer("demo key").pseudonym("u003")
    assert p.pseudonym("u003") != other.pseudonym("u003") and p.pseudonym("u003") != p.pseudonym("u004")
    assert Pseudonymizer.looks_like(p.pseudonym("u003")) and not Pseudonymizer.looks_like("u003")
    with connect_read(synthetic_db) as con:
        ids = [r[0] for r in con.execute("SELECT user_id FROM users ORDER BY 1").fetchall()]
        assert all(p.resolve(con, p.pseudonym(u)) == u for u in ids)  # DuckDB's sha256 agrees with Python's
        assert len(set(p.pseudonyms(ids))) == len(ids)
        assert p.resolve(con, other.pseudonym("u003")) is None  # another key's pseudonym means nobody
        assert p.resolve(con, "u003") is None and p.resolve(con, "p-' OR 1=1 --") is None


def test_rejects_carrying_matches_whole_fields_only():
    raws = [(1, "u007,i1,4102444800"), (2, "u0070,i1,1"), (3, '{"reviewerID": "u007", "asin": "x"}'),
            (4, "17::u007::5::1"), (5, "xu007,1,2"), (6, None), (7, "a\tu007")]
    assert rejects_carrying(raws, "u007") == [1, 3, 4, 7]


def _tables(db: Path) -> dict:
    with connect_read(db) as con:
        return {
            "events": con.execute("SELECT count(*), bit_xor(hash(x)) FROM events x WHERE user_id <> ?", [GONE]).fetchall(),
            "users": con.execute("SELECT count(*), bit_xor(hash(x)) FROM users x WHERE user_id <> ?", [GONE]).fetchall(),
            **{t: con.execute(f"SELECT count(*), bit_xor(hash(x)) FROM {t} x").fetchall()
               for t in ("items", "ingest_runs", "meta")},
        }


@pytest.fixture
def forget_env(writable_db, untrained_model_dir, tmp_path):
    """The tiny database with a reject row carrying the user, a model with every derived table, and an older
    model trained before the user's first event."""
    bad = tmp_path / "inbox" / "late.csv"  # a source file: forget never touches sources
    bad.parent.mkdir()
    bad.write_text("user_id,item_id,timestamp\nu007,i003,4102444800\nu017,i003,4102444800\nu1007,i003,4102444800\n")
    assert ingest(writable_db, "generic", bad).rejected == 3
    models = tmp_path / "models"
    new, old = models / "new", models / "old"
    shutil.copytree(untrained_model_dir, new)
    shutil.copytree(untrained_model_dir, old)
    fp = json.loads((old / "fingerprint.json").read_text())
    (old / "fingerprint.json").write_text(json.dumps({**fp, "max_ts": "2024-06-01T00:00:00"}))
    loaded = load_checkpoint(new)
    build_drift(writable_db, loaded)
    with connect_read(writable_db) as con:
        write_recommendations(recommend_all(loaded, con, 5), new / RECOMMENDATIONS_FILE)
    evaluate_model(writable_db, new, device="cpu")
    return writable_db, new, old


def test_forget_leaves_nothing_of_the_user_and_changes_nothing_else(forget_env, monkeypatch, capsys):
    db, new, old = forget_env
    truth = Path(str(db) + ".truth")
    derived = {p: pq.read_table(p).num_rows for p in [*new.glob("*.parquet"), truth / "truth.parquet"]}
    assert GONE in UserViews(new / VIEWS_FILE)  # the drift job wrote the views file too
    assert {p.name for p in derived} == {"drift.parquet", "recommendations.parquet", "eval_users.parquet", "truth.parquet"}
    before = _tables(db)
    with connect_read(db) as con:
        n_events = con.execute("SELECT count(*) FROM events WHERE user_id = ?", [GONE]).fetchall()[0][0]
    assert n_events > 0 and GONE.encode() in db.read_bytes()  # the byte check below can see the id

    code, out, err = cli(monkeypatch, capsys, "forget", "--db", str(db), "--user", GONE, "--models", str(new.parent),
                         "--json")
    assert code == 0, err
    result = json.loads(out)
    assert (result["events"], result["users"], result["rejects"], result["compacted"]) == (n_events, 1, 1, True)
    assert result["models_marked"] == [str(new.resolve())]
    assert {Path(p).name: n for p, n in result["files"].items()} == {
        "drift.parquet": 1, "recommendations.parquet": 5, "eval_users.parquet": 1, "truth.parquet": 1,
        VIEWS_FILE: 1,  # the explorer's views file held the user: deleted, to be rebuilt from what remains
    }
    assert not (new / VIEWS_FILE).exists()

    # Nothing of the user remains: tables, rejects, derived files, and the bytes of every file.
    with connect_read(db) as con:
        assert con.execute("SELECT count(*) FROM events WHERE user_id = ?", [GONE]).fetchall()[0][0] == 0
        assert con.execute("SELECT count(*) FROM users WHERE user_id = ?", [GONE]).fetchall()[0][0] == 0
        raws = [r[0] for r in con.execute("SELECT raw FROM rejects ORDER BY raw").fetchall()]
    assert raws == ["u017,i003,4102444800", "u1007,i003,4102444800"]
    for path, n in derived.items():
        table = pq.read_table(path)
        assert table.num_rows == n - result["files"][str(path)] and GONE not in table.column("user_id").to_pylist()
    for f in [*db.parent.glob(db.name + "*"), *new.rglob("*"), *truth.rglob("*")]:
        if f.is_file():
            assert GONE.encode() not in f.read_bytes(), f
    assert _tables(db) == before  # every other row exactly as it was

    # The models: the one trained on the user is marked, the older one is not.
    card = json.loads((new / "metrics.json").read_text())
    assert card[FORGOTTEN_KEY]["users"] == 1 and "retrain" in card[FORGOTTEN_KEY]["note"]
    assert FORGOTTEN_KEY not in json.loads((old / "metrics.json").read_text())
    assert load_checkpoint(new).card[FORGOTTEN_KEY]["users"] == 1  # still loads

    # The compacted file is a working database, and the user is now unknown.
    assert ingest(db, "generic", Path(__file__).parents[1] / "fixtures" / "bad" / "bom_crlf.csv").accepted == 2
    with pytest.raises(NotFoundError, match=r"^There is no user 'u007' in this database\.$"):
        forget_user(db, GONE, [new])
    code, out, err = cli(monkeypatch, capsys, "forget", "--db", str(db), "--user", GONE)
    assert code == 1 and out == "" and err == "error: There is no user 'u007' in this database.\n"


def test_forget_without_compaction_still_deletes(writable_db):
    result = forget_user(writable_db, "u010", compact=False)
    assert result.events > 0 and result.users == 1 and not result.compacted
    with connect_read(writable_db) as con:
        assert con.execute("SELECT count(*) FROM events WHERE user_id = 'u010'").fetchall()[0][0] == 0
