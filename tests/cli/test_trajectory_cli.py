"""`interestlens trajectory` and `interestlens drift`: the JSON contract and one-sentence errors."""

import json
import shutil
import sys

import pytest

from cli import app
from cli.common import run_app
from core.store import connect_read, user_history


def cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["interestlens", *args])
    code = run_app(app)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_trajectory_json(monkeypatch, capsys, synthetic_db, untrained_model_dir):
    code, out, err = cli(
        monkeypatch, capsys, "trajectory", "--db", str(synthetic_db), "--model", str(untrained_model_dir),
        "--user", "u003", "--window", "2", "--json",
    )
    assert code == 0, err
    d = json.loads(out)
    assert list(d) == [
        "steps", "categories", "distribution", "long_term", "short_term", "baseline", "gate", "drift", "change_points",
        "short_weight", "reading",
        "grid",
    ]
    with connect_read(synthetic_db) as con:
        hist = user_history(con, "u003")
    assert [s["item_id"] for s in d["steps"]] == list(hist["item_id"])
    assert d["steps"][0]["step"] == 0 and d["steps"][0]["time"].endswith("Z")
    assert len(d["categories"]) == 6 and len(d["baseline"]) == len(hist) and len(d["baseline"][0]) == 6
    assert d["drift"][0] == 0.0 and all(isinstance(c, int) for c in d["change_points"])
    grid = d["grid"]
    assert grid["grain"] == grid["auto_grain"] and sum(b["events"] for b in grid["buckets"]) == len(hist)
    assert set(grid["bulk"]) >= {"mostly_bulk", "share", "sentence"}
    assert [c["step"] for c in grid["change_points"]] == d["change_points"]

    code, out, _ = cli(
        monkeypatch, capsys, "trajectory", "--db", str(synthetic_db), "--model", str(untrained_model_dir),
        "--user", "u003", "--grain", "event", "--json",
    )
    assert code == 0 and len(json.loads(out)["grid"]["buckets"]) == len(hist)
    code, out, err = cli(
        monkeypatch, capsys, "trajectory", "--db", str(synthetic_db), "--model", str(untrained_model_dir),
        "--user", "u003", "--grain", "fortnight",
    )
    assert code != 0 and out == "" and "--grain" in err and "Traceback" not in err

    code, out, _ = cli(
        monkeypatch, capsys, "trajectory", "--db", str(synthetic_db), "--model", str(untrained_model_dir),
        "--user", "u003", "--top-categories", "2", "--json",
    )
    folded = json.loads(out)
    assert code == 0 and len(folded["categories"]) == 3 and folded["categories"][-1] == "other"
    assert sum(folded["distribution"][-1]) == pytest.approx(1.0, abs=1e-5)


def test_trajectory_text_and_unknown_user(monkeypatch, capsys, synthetic_db, untrained_model_dir):
    base = ["trajectory", "--db", str(synthetic_db), "--model", str(untrained_model_dir)]
    code, out, _ = cli(monkeypatch, capsys, *base, "--user", "u003")
    assert code == 0 and out.startswith("user u003:")
    code, out, err = cli(monkeypatch, capsys, *base, "--user", "nobody")
    assert code == 1 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_drift_json_lists_top_users(monkeypatch, capsys, synthetic_db, untrained_model_dir, tmp_path):
    model_dir = tmp_path / "model"
    shutil.copytree(untrained_model_dir, model_dir)
    code, out, err = cli(
        monkeypatch, capsys, "drift", "--db", str(synthetic_db), "--model", str(model_dir), "--top", "5", "--json"
    )
    assert code == 0, err
    d = json.loads(out)
    assert list(d) == ["users"] and len(d["users"]) == 5
    sizes = [u["largest_change"] for u in d["users"]]
    assert sizes == sorted(sizes, reverse=True)
    assert set(d["users"][0]) >= {"user_id", "n_events", "total_drift", "change_points", "shift", "mostly_bulk"}
    assert all((u["shift"] != "") == bool(u["change_points"]) for u in d["users"])
    assert (model_dir / "drift.parquet").exists()
