"""Data & models: upload a generic file, map its columns, ingest it, see the rejected row; list the models."""

from __future__ import annotations

from dashboard_helpers import open_page, problems

from core.store import connect_read
from dashboard.components import upload

CSV = (
    b"uid,sku,when,kind,name\n"
    b"w1,i001,1735689600,click,<b>Bold</b> & co\n"
    b"w1,i002,1735689700,click,=HYPERLINK(\"http://x\")\n"
    b"w2,i001,1735689800,buy,plain\n"
    b"w2,i003,not-a-time,click,plain\n"
)


def test_upload_map_ingest_and_reject_report(monkeypatch, request, writable_db, dash_model):
    monkeypatch.setenv("INTERESTLENS_DB", str(writable_db))
    monkeypatch.setenv("INTERESTLENS_MODEL", str(dash_model))
    monkeypatch.setenv("INTERESTLENS_MODELS", str(dash_model.parent))
    with connect_read(writable_db) as con:
        before = con.execute("SELECT count(*) FROM events").fetchone()[0]
    at = open_page("data_models")
    assert not problems(at)
    at.file_uploader(key="data_upload").upload("clicks.csv", CSV, "text/csv")
    at.run()
    request.addfinalizer(lambda: upload.discard(at.session_state["data_upload_dir"]))
    assert not problems(at)
    assert "uid,sku,when,kind,name" in at.code[0].value  # the preview is the file's text, shown as text
    assert "<b>Bold</b> & co" in at.code[0].value
    assert at.selectbox(key="data_map_user").value == "uid"
    assert at.selectbox(key="data_map_item").value == "sku"
    at.selectbox(key="data_map_time").set_value("when")
    at.selectbox(key="data_map_event").set_value("kind")
    at.selectbox(key="data_map_title").set_value("name")
    at.run()
    at.button(key="data_ingest_go").click().run()
    assert not problems(at)
    with connect_read(writable_db) as con:
        after = con.execute("SELECT count(*) FROM events").fetchone()[0]
        run_id, accepted, rejected = con.execute(
            "SELECT run_id, accepted, rejected FROM ingest_runs ORDER BY run_id DESC LIMIT 1"
        ).fetchone()
        title = con.execute("SELECT title FROM items WHERE item_id = 'i002'").fetchone()[0]
    assert (accepted, rejected) == (3, 1)
    assert after - before == 3
    assert title in {"=HYPERLINK(\"http://x\")", None} or title.startswith("=")
    rejects = next(d.value for d in at.dataframe if {"row_number", "reason", "raw"} <= set(d.value.columns))
    assert len(rejects) == 1 and "not-a-time" in rejects["raw"].iloc[0]
    assert at.session_state["data_last_run"] == run_id


def test_models_tab_lists_checkpoints_and_the_train_command(dash_env):
    _, model = dash_env
    at = open_page("data_models")
    assert not problems(at)
    models = next(d.value for d in at.dataframe if "model" in d.value.columns and "folder" in d.value.columns)
    assert models["folder"].tolist() == [str(model)]
    assert bool(models["drift summaries"].iloc[0])
    assert any(c.value.startswith("interestlens train --db ") for c in at.code)


def test_build_drift_summaries_button_writes_them_with_progress(monkeypatch, synthetic_db, dash_model, tmp_path):
    import shutil

    import pandas as pd

    model = tmp_path / "models" / "copy"
    shutil.copytree(dash_model, model)
    (model / "drift.parquet").unlink()
    monkeypatch.setenv("INTERESTLENS_DB", str(synthetic_db))
    monkeypatch.setenv("INTERESTLENS_MODEL", str(model))
    monkeypatch.setenv("INTERESTLENS_MODELS", str(model.parent))
    at = open_page("data_models")
    assert not problems(at)
    assert any("not built yet" in c.value for c in at.caption)
    at.button(key="data_drift_go").click().run()
    assert not problems(at)
    built = pd.read_parquet(model / "drift.parquet")
    expected = pd.read_parquet(dash_model / "drift.parquet")
    assert sorted(built["user_id"]) == sorted(expected["user_id"])
    assert any(f"Drift summaries of {len(expected):,} users built" in s.value for s in at.success)
    at.run()  # the next run finds them built
    assert at.button(key="data_drift_go").label == "Rebuild drift summaries"


def test_the_ingest_run_shown_and_the_tab_live_in_the_url(monkeypatch, writable_db, dash_model, tmp_path):
    """?data_tab=Ingest runs&data_runs_pick=N opens run N's rejected rows (the default is the latest run)."""
    from test_live import append_batch

    monkeypatch.setenv("INTERESTLENS_DB", str(writable_db))
    monkeypatch.setenv("INTERESTLENS_MODEL", str(dash_model))
    append_batch(writable_db, tmp_path)  # two more runs
    with connect_read(writable_db) as con:
        runs = [r[0] for r in con.execute("SELECT run_id FROM ingest_runs ORDER BY run_id").fetchall()]
    assert len(runs) >= 2
    at = open_page("data_models", data_tab="Ingest runs")
    assert not problems(at) and at.selectbox(key="data_runs_pick").value == runs[-1]
    linked = open_page("data_models", data_tab="Ingest runs", data_runs_pick=str(runs[0]))
    assert not problems(linked) and linked.selectbox(key="data_runs_pick").value == runs[0]
