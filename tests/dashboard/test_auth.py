"""Access: with an `[auth]` section in the secrets, a session that has not signed in sees only the sign-in page (no
navigation, no data, whatever the URL asks for); a signed-in one sees the app and a sign-out button; without the
section the app opens as before. The server binds to 127.0.0.1 unless told otherwise, and no secret is committed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dashboard_helpers import APP, TIMEOUT, USER, free_port
from streamlit.testing.v1 import AppTest

from cli import app
from cli.common import run_app
from core.privacy import DEMO_ENV, DEMO_KEY_ENV

AUTH = {
    "redirect_uri": "http://localhost:8501/oauth2callback",
    "cookie_secret": "a-test-cookie-secret-that-is-long-enough",
    "client_id": "interestlens-test",
    "client_secret": "not-a-real-secret",
    "server_metadata_url": "https://accounts.example.org/.well-known/openid-configuration",
}
ROOT = Path(__file__).resolve().parents[2]


def _app(identity: dict, auth: dict | None = AUTH, **query: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    if auth is not None:
        at.secrets["auth"] = auth
    at.user = identity
    at.query_params.update(query)
    return at.run()


def test_a_session_that_has_not_signed_in_sees_only_the_sign_in_page(dash_env):
    at = _app({"is_logged_in": False}, user=USER)  # a deep link to a user's explorer
    assert not at.exception
    assert [t.value for t in at.title] == ["InterestLens"]
    assert [b.label for b in at.button] == ["Sign in"]
    assert not at.sidebar.text and not at.sidebar.caption and not at.sidebar.selectbox  # no database, no model card
    for kind in ("metric", "dataframe", "plotly_chart", "selectbox", "text_input", "page_link"):
        assert not at.get(kind), kind
    assert "u003" not in str([m.value for m in at.markdown])


def test_several_providers_get_one_button_each(dash_env):
    auth = {"redirect_uri": AUTH["redirect_uri"], "cookie_secret": AUTH["cookie_secret"],
            "google": {k: AUTH[k] for k in ("client_id", "client_secret", "server_metadata_url")},
            "microsoft": {k: AUTH[k] for k in ("client_id", "client_secret", "server_metadata_url")}}
    at = _app({"is_logged_in": False}, auth)
    assert sorted(b.label for b in at.button) == ["Sign in with google", "Sign in with microsoft"]


def test_a_signed_in_session_sees_the_app_and_can_sign_out(dash_env):
    at = _app({"is_logged_in": True, "email": "analyst@example.org"}, user=USER)
    assert not at.exception
    assert at.title[0].value == "User explorer"
    # shown as text: escaped, and a zero-width space keeps the address from becoming a mailto link
    assert any(c.value == "Signed in as analyst\u200b@example\\.org" for c in at.sidebar.caption)
    assert any(b.label == "Sign out" for b in at.sidebar.button)


def test_without_an_auth_section_there_is_no_sign_in(dash_env):
    at = _app({}, auth=None)
    assert not at.exception and at.title[0].value == "Overview"
    assert not any(b.label.startswith("Sign") for b in at.button)


def _serve(monkeypatch, capsys, *args: str) -> tuple[list[str], dict]:
    """Run `interestlens serve …` up to the point where it would replace itself with Streamlit."""
    seen: dict = {}

    def fake_exec(path, argv, env):
        seen.update(argv=argv, env=env)
        raise SystemExit(0)

    monkeypatch.setattr(os, "execve", fake_exec)
    monkeypatch.setattr(os, "chdir", lambda _p: None)
    monkeypatch.setattr(sys, "argv", ["interestlens", "serve", *args])
    try:
        run_app(app)
    except SystemExit:
        pass
    capsys.readouterr()
    return seen["argv"], seen["env"]


def test_serve_binds_this_machine_only_by_default_and_demo_mode_is_opt_in(monkeypatch, capsys, synthetic_db):
    monkeypatch.delenv(DEMO_ENV, raising=False)
    monkeypatch.delenv(DEMO_KEY_ENV, raising=False)
    port = str(free_port())
    argv, env = _serve(monkeypatch, capsys, "--db", str(synthetic_db), "--port", port)
    flags = dict(zip(argv[5::2], argv[6::2], strict=True))
    assert flags["--server.address"] == "127.0.0.1" and flags["--browser.serverAddress"] == "127.0.0.1"
    assert flags["--server.enableXsrfProtection"] == "true" and flags["--server.port"] == port
    assert DEMO_ENV not in env

    argv, env = _serve(monkeypatch, capsys, "--db", str(synthetic_db), "--port", port, "--host", "0.0.0.0", "--demo-mode")
    assert dict(zip(argv[5::2], argv[6::2], strict=True))["--server.address"] == "0.0.0.0"  # exposing is explicit
    assert env[DEMO_ENV] == "1" and len(env[DEMO_KEY_ENV]) == 64  # a fresh random key for this server
    monkeypatch.setenv(DEMO_KEY_ENV, "kept across restarts")
    _, env = _serve(monkeypatch, capsys, "--db", str(synthetic_db), "--port", port, "--demo-mode")
    assert env[DEMO_KEY_ENV] == "kept across restarts"


def _scanner():
    """bench/reliability.py's secret scan (the same code the reliability report runs)."""
    from bench.reliability import scan_secrets

    return scan_secrets


def test_no_secret_is_committed():
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert ".streamlit/secrets.toml" in ignored
    config = (ROOT / ".streamlit" / "config.toml").read_text()
    assert 'address = "127.0.0.1"' in config and "client_secret" not in config and "cookie_secret" not in config
    report = _scanner()(ROOT)
    assert report["files_scanned"] > 100 and report["findings"] == []


def test_the_secret_scan_finds_keys_tokens_and_configured_secrets(tmp_path):
    """The scan itself: planted secrets in a throwaway repository are each found; placeholders are not."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    planted = {  # built from pieces so this file does not itself hold a secret-shaped string
        "key.pem": "-----BEGIN " + "RSA PRIVATE KEY-----\nMIIE\n",
        "deploy.sh": "export AWS_ACCESS_KEY_ID=" + "AKIA" + "Q3EXAMPLEKEY7ZZZ" + "\n",
        "notes.md": "token: " + "ghp_" + "a1B2" * 9 + "\n",
        ".streamlit/secrets.toml": '[auth]\nclient_secret = "' + "Zq8v" * 6 + '"\n',
        "docs.toml": '[auth]\nclient_secret = "<your client secret>"\ncookie_secret = "change-me-please"\n',
    }
    for name, text in planted.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["git", "add", "-f", "."], cwd=tmp_path, check=True)
    found = {(f["path"], f["kind"]) for f in _scanner()(tmp_path)["findings"]}
    assert found == {("key.pem", "private key"), ("deploy.sh", "AWS access key"), ("notes.md", "GitHub token"),
                     (".streamlit/secrets.toml", "client_secret in a config file")}
