"""`interestlens serve` runs the project's dashboard: the app path it hands to `streamlit run` exists (it pointed
one folder too high after the CLI moved from core/cli/ to cli/, and every `serve` failed with "File does not
exist")."""

from __future__ import annotations

from pathlib import Path

from cli.commands import serve


def test_serve_runs_the_projects_app_file():
    argv = serve.streamlit_argv("127.0.0.1", 8501)
    app = Path(argv[argv.index("run") + 1])
    assert app.is_file() and app == Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
    assert (serve._ROOT / ".streamlit" / "config.toml").is_file()  # the theme and upload limit it chdirs to read


def test_serve_turns_off_the_full_collection_after_every_script_run(monkeypatch):
    monkeypatch.delenv(serve.GC_ENV, raising=False)
    argv = serve.streamlit_argv("127.0.0.1", 8501)
    assert argv[argv.index("--runner.postScriptGC") + 1] == "false"
    assert argv[argv.index("--server.address") + 1] == "127.0.0.1"
    monkeypatch.setenv(serve.GC_ENV, "true")  # an explicit setting (bench/load_ws.py --server-env) decides instead
    assert "--runner.postScriptGC" not in serve.streamlit_argv("127.0.0.1", 8501)


def test_serve_caps_the_malloc_arenas_unless_told_otherwise(monkeypatch):
    monkeypatch.delenv(serve.ARENA_ENV, raising=False)
    assert serve.allocator_env() == {"MALLOC_ARENA_MAX": "2"}
    monkeypatch.setenv(serve.ARENA_ENV, "8")  # an explicit setting decides (the launch environment keeps it)
    assert serve.allocator_env() == {}
