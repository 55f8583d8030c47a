"""`interestlens serve` / `demo`: the server command line, address checks, and the demo's prepare steps."""

from __future__ import annotations

import shutil
import socket

import pytest

from cli.commands import serve
from core.errors import UserInputError
from core.store import connect_read
from core.trajectory import read_drift


def test_streamlit_command_binds_where_asked_with_safety_flags():
    argv = serve.streamlit_argv("127.0.0.1", 8765)
    assert argv[1:4] == ["-m", "streamlit", "run"] and argv[4].endswith("dashboard/app.py")
    flags = dict(zip(argv[5::2], argv[6::2], strict=True))
    assert flags["--server.address"] == "127.0.0.1" and flags["--server.port"] == "8765"
    assert flags["--server.enableXsrfProtection"] == "true"
    assert flags["--browser.gatherUsageStats"] == "false"
    assert flags["--server.headless"] == "true"


def test_port_in_use_is_one_clear_sentence(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert not serve.port_free("127.0.0.1", port)
        with pytest.raises(UserInputError, match=f"Port {port} on 127.0.0.1 is already in use"):
            serve.launch(tmp_path / "x.duckdb", None, "127.0.0.1", port)
    with pytest.raises(UserInputError, match="not a valid TCP port"):
        serve.launch(tmp_path / "x.duckdb", None, "127.0.0.1", 70000)


def test_missing_model_folder_is_refused(tmp_path):
    with pytest.raises(UserInputError, match="There is no trained model at"):
        serve.launch(tmp_path / "x.duckdb", tmp_path / "nope", "127.0.0.1", 8501)


def test_demo_steps_keep_what_exists_and_build_drift(writable_db, untrained_model_dir, tmp_path, capsys):
    root = tmp_path / "models"
    shutil.copytree(untrained_model_dir, root / "m")
    before = writable_db.stat().st_mtime_ns
    serve.ensure_database(writable_db)  # exists: left alone
    assert writable_db.stat().st_mtime_ns == before
    assert serve.ensure_model(writable_db, root, minutes=0.1) == root / "m"  # a checkpoint exists: no training
    serve.ensure_drift(writable_db, root / "m")
    drift = read_drift(root / "m")
    with connect_read(writable_db) as con:
        users = con.execute("SELECT count(DISTINCT user_id) FROM events").fetchone()[0]
    assert len(drift) == users
    err = capsys.readouterr().err
    assert "exists; using it" in err and "drift summaries ready" in err


@pytest.mark.parametrize("minutes", [0.0, -1.0, float("nan"), float("inf")])
def test_demo_refuses_a_training_budget_that_is_not_a_positive_number(tmp_path, minutes):
    with pytest.raises(UserInputError, match=r"^Train minutes must be a number above 0"):
        serve.demo(db=tmp_path / "x.duckdb", host="127.0.0.1", port=0, train_minutes=minutes, prepare_only=True)
    assert not (tmp_path / "x.duckdb").exists()
