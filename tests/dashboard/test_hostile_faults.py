"""Faults seen from the app: a damaged checkpoint (the sidebar says the model is unusable, the pages that need no
model keep working, the others say why in one sentence), a model trained on users deleted since, and a database held
by a writing process (the app retries, says so in one sentence, and recovers once the writer is gone)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest
from dashboard_helpers import APP, TIMEOUT, USER, open_page, problems
from streamlit.testing.v1 import AppTest

from core.store import connect_read, user_history


@pytest.fixture
def broken_model(monkeypatch, synthetic_db, dash_model, tmp_path):
    model = tmp_path / "models" / "broken"
    shutil.copytree(dash_model, model)
    weights = model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # truncated, as by a full disk or an interrupted copy
    monkeypatch.setenv("INTERESTLENS_DB", str(synthetic_db))
    monkeypatch.setenv("INTERESTLENS_MODEL", str(model))
    monkeypatch.setenv("INTERESTLENS_MODELS", str(model.parent))
    return model


def test_a_damaged_model_is_named_unusable_and_the_other_pages_keep_working(broken_model, synthetic_db):
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()  # the sidebar is in AppTest's tree on a first run
    assert not at.exception
    (error,) = [e.value.replace("\\", "") for e in at.sidebar.error]  # markdown escapes off
    assert re.match(r"This model is unusable, so pages show what they can without it: The weights of the model at .*"
                    r"broken are damaged or truncated \(", error) and "\n" not in error
    assert not at.main.error and at.title[0].value == "Overview"  # the overview needs no model
    assert len(at.get("plotly_chart")) >= 3

    at = open_page("user_explorer", user=USER)  # the timeline still draws; the model panels say why they cannot
    assert not at.exception
    with connect_read(synthetic_db) as con:
        n_events = len(user_history(con, USER))
    assert {m.label: m.value for m in at.metric}["Events"] == f"{n_events:,}"
    assert any(c.proto.id.endswith("-user_timeline") for c in at.get("plotly_chart"))
    assert problems(at) and all("are damaged or truncated" in p and "\n" not in p for p in problems(at))
    for page in ("cohorts", "data_models"):
        at = open_page(page)
        assert not at.exception and not at.main.error, page  # only the sidebar says the model is unusable


def test_a_model_trained_on_forgotten_users_says_so(monkeypatch, synthetic_db, dash_model, tmp_path):
    model = tmp_path / "models" / "m"
    shutil.copytree(dash_model, model)
    card = json.loads((model / "metrics.json").read_text())
    card["forgotten"] = {"users": 2, "last": "2026-01-01T00:00:00+00:00", "note": "retrain"}
    (model / "metrics.json").write_text(json.dumps(card))
    monkeypatch.setenv("INTERESTLENS_DB", str(synthetic_db))
    monkeypatch.setenv("INTERESTLENS_MODEL", str(model))
    monkeypatch.setenv("INTERESTLENS_MODELS", str(model.parent))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    assert not at.exception
    assert [w.value for w in at.sidebar.warning] == [
        "This model was trained on events of 2 user(s) deleted since (`interestlens forget`); retrain it to remove "
        "what it learned from them."
    ]


HOLD = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])  # read-write: DuckDB lets no other process open the file meanwhile
print("holding", flush=True)
time.sleep(120)
"""


def test_a_database_held_by_a_writer_is_one_sentence_then_the_app_recovers(monkeypatch, writable_db, dash_model):
    from dashboard.reader import READER

    monkeypatch.setenv("INTERESTLENS_DB", str(writable_db))
    monkeypatch.setenv("INTERESTLENS_MODEL", str(dash_model))
    monkeypatch.setenv("INTERESTLENS_MODELS", str(dash_model.parent))
    READER.close()
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(writable_db)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        at = open_page("overview")  # every open is retried for 10 s before the app gives up
        assert not at.exception
        (error,) = problems(at)
        assert re.fullmatch(
            rf"The database {re.escape(str(writable_db))} is held by another process \(PID {holder.pid}\); it was "
            r"retried for 10 s, try again shortly\.", error.replace("\\", "")), error
    finally:
        holder.kill()
        holder.wait(timeout=30)
    at.run()  # the writer is gone: the same session recovers on its next run
    assert not at.exception and not problems(at)
    assert at.title[0].value == "Overview" and len(at.get("plotly_chart")) >= 3
