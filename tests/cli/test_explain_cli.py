"""`interestlens explain`: the JSON contract, additivity in the output, and one-sentence errors."""

from __future__ import annotations

import json

import pytest

from core.store import connect_read, user_history


def test_explain_json(cli, monkeypatch, capsys, synthetic_db, untrained_model_dir):
    base = ["explain", "--db", str(synthetic_db), "--model", str(untrained_model_dir), "--user", "u003"]
    code, out, err = cli(*base, "--json")
    assert code == 0, err
    d = json.loads(out)
    assert list(d) == ["target", "base", "fx", "values", "windows", "additivity_error", "deletion_auc"]
    assert isinstance(d["target"], str) and set(d["deletion_auc"]) == {"shap", "attention", "recency", "random"}
    assert list(d["values"][0]) == ["step", "item_id", "title", "time", "value"]
    assert list(d["windows"][0]) == ["level", "label", "start", "end", "value"]
    assert abs(sum(v["value"] for v in d["values"]) + d["base"] - d["fx"]) <= 1e-4 * max(1.0, abs(d["fx"]))
    assert d["additivity_error"] <= 1e-4 * max(1.0, abs(d["fx"]))
    with connect_read(synthetic_db) as con:
        hist = user_history(con, "u003")
    last = d["values"][-1]
    assert last["step"] == len(hist) - 1 and last["item_id"] == hist["item_id"].iloc[-1]
    assert last["title"] == hist["title"].iloc[-1] and last["time"].endswith("Z")
    months = [w for w in d["windows"] if w["level"] == "month"]
    assert sum(w["value"] for w in months) == pytest.approx(d["fx"] - d["base"], abs=1e-4)

    code, out, err = cli(*base, "--item", d["target"], "--margin", "--k", "3", "--json")
    m = json.loads(out)
    assert code == 0 and m["target"] == d["target"] and m["fx"] > 0  # top-1 over the item ranked 4: positive


def test_explain_text_and_errors(cli, monkeypatch, capsys, synthetic_db, untrained_model_dir):
    base = ["explain", "--db", str(synthetic_db), "--model", str(untrained_model_dir)]
    code, out, _ = cli(*base, "--user", "u003")
    assert code == 0 and out.startswith("user u003: explaining the logit of item ")
    for args, words in [(("--user", "nobody"), "no user 'nobody'"), (("--user", "u003", "--item", "zzz"), "does not know item 'zzz'")]:
        code, out, err = cli(*base, *args)
        assert code == 1 and out == "" and words in err
        assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
