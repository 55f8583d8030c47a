"""`interestlens ingest`, `build` and `datasets`: one JSON object under --json, one sentence on errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app, main
from cli.common import run_app
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
    assert names == ["synthetic", "movielens-100k", "synthetic-social", "synthetic-lastfm"]
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


def test_size_flags_apply_to_synthetic_only(tmp_path, capsys):
    code = run_app(app, ["build", "--db", str(tmp_path / "x.duckdb"), "--dataset", "movielens-100k", "--users", "5",
                         "--json"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and err == "error: --users, --items, --events and --seed apply only when --dataset is synthetic.\n"
    assert not (tmp_path / "x.duckdb").exists()


def test_readme_style_column_flags(tmp_path):
    out = cli("ingest", "--db", str(tmp_path / "r.duckdb"), "--preset", "generic", str(FIX / "generic" / "events.csv"),
              "--user-col", "visitor", "--item-col", "sku", "--time-col", "when", "--event-col", "action", "--json")  # fmt: skip
    assert (out["accepted"], out["rejected"]) == (4, 0)
    with connect_read(tmp_path / "r.duckdb") as con:
        assert con.execute("SELECT DISTINCT event_type FROM events ORDER BY 1").fetchall() == [
            ("click",), ("purchase",), ("view",)]  # fmt: skip


def test_a_run_that_rejects_every_row_says_why_and_exits_1(tmp_path, monkeypatch, capsys):
    """Nothing accepted, nothing a duplicate: the mapping or the unit is wrong; the counts are still printed and
    the run (with its rejects) is recorded, and the top reason is the error's sentence."""
    src = tmp_path / "ms.csv"
    src.write_text("user_id,item_id,timestamp\n" + "".join(f"u{i},i{i},{1_700_000_000_000 + i}\n" for i in range(6)))
    db = tmp_path / "all-bad.duckdb"
    argv = ["interestlens", "ingest", "--db", str(db), "--preset", "generic", str(src), "--time-unit", "s", "--json"]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exit_info:
        main()
    out = capsys.readouterr()
    assert exit_info.value.code == 1
    result = json.loads(out.out)
    assert (result["accepted"], result["rejected"], result["duplicates"]) == (0, 6, 0)
    (why, n), = result["reject_reasons"].items()
    assert n == 6 and "milliseconds" in why
    assert out.err == f"error: No row was accepted: all 6 were rejected, most for '{why}' (6); check the column " \
                      "mapping and --time-unit.\n"
    # the same file again is not an error: its rows are rejected again, but a re-run of good rows is duplicates
    good = tmp_path / "good.csv"
    good.write_text("user_id,item_id,timestamp\nu1,i1,1700000000\n")
    assert cli("ingest", "--db", str(db), "--preset", "generic", str(good), "--json")["accepted"] == 1
    assert cli("ingest", "--db", str(db), "--preset", "generic", str(good), "--json")["duplicates"] == 1


def test_rejects_lists_each_reason_and_the_rows(tmp_path):
    src = tmp_path / "mixed.csv"
    src.write_text("user_id,item_id,timestamp\nu1,i1,1700000000\n,i2,1700000001\nu3,,1700000002\n,i4,1700000003\n"
                   "u5,i5,not-a-time\n")
    db = tmp_path / "mixed.duckdb"
    out = cli("ingest", "--db", str(db), "--preset", "generic", str(src), "--json")
    assert (out["accepted"], out["rejected"]) == (1, 4)
    assert out["reject_reasons"]["missing user id"] == 2 and out["reject_reasons"]["missing item id"] == 1
    assert sum(out["reject_reasons"].values()) == 4
    listed = cli("rejects", "--db", str(db), "--json")
    assert listed["run_id"] == out["run_id"] and listed["rejected"] == 4
    assert listed["reasons"] == out["reject_reasons"]
    assert [r["row"] for r in listed["rows"]] == [2, 3, 4, 5]
    assert listed["rows"][0]["reason"] == "missing user id" and listed["rows"][0]["raw"].startswith(",i2")
    text = runner.invoke(app, ["rejects", "--db", str(db), "--run", str(out["run_id"]), "--limit", "1"])
    assert text.exit_code == 0 and "run 1: 4 rows rejected" in text.stdout and "  2: missing user id" in text.stdout
    none = runner.invoke(app, ["rejects", "--db", str(db), "--run", "99"])
    assert none.exit_code != 0 and "There is no ingest run 99" in str(none.exception)
    human = runner.invoke(app, ["ingest", "--db", str(db), "--preset", "generic", str(src)])
    assert human.exit_code == 0  # every valid row a duplicate now: not an error
    assert "  rejected 2: missing user id" in human.stdout and "interestlens rejects --run 2" in human.stdout


def test_a_rejected_rows_raw_text_reads_back_as_the_row_it_was(tmp_path):
    import csv
    import io

    line = ',i2,1700000001,"Shirt, ""XL"" blue"'
    src = tmp_path / "q.csv"
    src.write_text("user_id,item_id,timestamp,title\nu1,i1,1700000000,ok\n" + line + "\n")
    db = tmp_path / "q.duckdb"
    cli("ingest", "--db", str(db), "--preset", "generic", str(src), "--title-col", "title", "--json")
    raw = cli("rejects", "--db", str(db), "--json")["rows"][0]["raw"]
    assert raw == line
    assert next(csv.reader(io.StringIO(raw))) == ["", "i2", "1700000001", 'Shirt, "XL" blue']


def test_summary_text_gives_utc_times_and_the_rejected_rows(tmp_path):
    src = tmp_path / "s.csv"
    src.write_text("user_id,item_id,timestamp\nu1,i1,1700000000\n,i2,1700000001\n")
    db = tmp_path / "s.duckdb"
    cli("ingest", "--db", str(db), "--preset", "generic", str(src), "--json")
    text = runner.invoke(app, ["summary", "--db", str(db)]).stdout
    assert "(2023-11-14T22:13:20Z .. 2023-11-14T22:13:20Z)" in text
    assert "ingest runs 1, rows rejected 1  (`interestlens rejects`)" in text


def test_an_event_column_and_a_constant_event_type_together_are_refused(tmp_path):
    result = runner.invoke(app, ["ingest", "--db", str(tmp_path / "e.duckdb"), "--preset", "generic",
                                 str(FIX / "generic" / "events.csv"), "--user-col", "visitor", "--item-col", "sku",
                                 "--time-col", "when", "--event-col", "action", "--event-type", "purchase"])  # fmt: skip
    assert result.exit_code != 0
    assert "Give either an event type column ('action') or one event type for every row ('purchase'" in str(
        result.exception
    )
    assert not (tmp_path / "e.duckdb").exists()
