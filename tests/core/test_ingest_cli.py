"""`interestlens ingest`, `build` and `datasets`: one JSON object under --json, one sentence on errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.cli import app, main
from core.store import connect_read

FIX = Path(__file__).resolve().parent.parent / "fixtures"
runner = CliRunner()


def cli(*args: str) -> dict:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout  # exactly one JSON object, nothing else on stdout
    return json.loads(lines[0])


def test_ingest_json_keys_and_mapping_flags_over_toml(tmp_path):
    db = tmp_path / "cli.duckdb"
    out = cli("ingest", "--db", str(db), "--preset", "generic", str(FIX / "generic" / "events.csv"),
              "--mapping", str(FIX / "generic" / "mapping.toml"), "--context", "cats", "--json")  # fmt: skip
    assert {k: out[k] for k in ("accepted", "rejected", "duplicates", "run_id")} == {
        "accepted": 4, "rejected": 0, "duplicates": 0, "run_id": 1}  # fmt: skip
    assert any("ISO-8601" in a for a in out["assumptions"])
    with connect_read(db) as con:  # --context replaced the TOML's ["device"]
        assert con.execute("SELECT DISTINCT context FROM events ORDER BY 1").fetchall() == [
            ({"cats": "Books"},), ({"cats": "Books|Travel"},), ({"cats": "Garden"},)]  # fmt: skip


def test_build_synthetic_then_summary(tmp_path):
    db = tmp_path / "b.duckdb"
    out = cli("build", "--db", str(db), "--dataset", "synthetic", "--users", "30", "--items", "40", "--events", "600",
              "--seed", "3", "--json")  # fmt: skip
    assert (out["accepted"], out["rejected"], out["duplicates"], out["run_id"]) == (600, 0, 0, 1)
    summary = cli("summary", "--db", str(db), "--json")
    assert (summary["users"], summary["items"], summary["events"]) == (30, 40, 600)
    assert Path(str(db) + ".truth", "truth.parquet").exists()


def test_datasets_lists_both_with_availability():
    out = cli("datasets", "--json")
    names = [d["name"] for d in out["datasets"]]
    assert names == ["synthetic", "movielens-100k"]
    assert all(set(d) == {"name", "description", "available"} for d in out["datasets"])
    assert out["datasets"][0]["available"] is True


def test_errors_are_one_line_on_stderr_with_a_nonzero_exit(tmp_path, monkeypatch, capsys):
    """The console entry point (`main`): no traceback, nothing on stdout."""
    argv = ["interestlens", "ingest", "--db", str(tmp_path / "e.duckdb"), "--preset", "movielens-1m",
            str(FIX / "bad" / "ml1m_all_bad.dat"), "--json"]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exit_info:
        main()
    out = capsys.readouterr()
    assert exit_info.value.code == 1
    assert out.out == ""
    assert out.err.startswith("error: ml1m_all_bad.dat has no line in the expected layout")
    assert len(out.err.strip().splitlines()) == 1 and "Traceback" not in out.err


def test_size_flags_apply_to_synthetic_only(tmp_path):
    result = runner.invoke(app, ["build", "--db", str(tmp_path / "x.duckdb"), "--dataset", "movielens-100k",
                                 "--users", "5", "--json"])  # fmt: skip
    assert result.exit_code != 0
    assert "apply to --dataset synthetic only" in str(result.exception)
    assert not (tmp_path / "x.duckdb").exists()


def test_readme_style_column_flags(tmp_path):
    out = cli("ingest", "--db", str(tmp_path / "r.duckdb"), "--preset", "generic", str(FIX / "generic" / "events.csv"),
              "--user-col", "visitor", "--item-col", "sku", "--time-col", "when", "--event-col", "action", "--json")  # fmt: skip
    assert (out["accepted"], out["rejected"]) == (4, 0)
    with connect_read(tmp_path / "r.duckdb") as con:
        assert con.execute("SELECT DISTINCT event_type FROM events ORDER BY 1").fetchall() == [
            ("click",), ("purchase",), ("view",)]  # fmt: skip
