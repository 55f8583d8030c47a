"""The app under hostile input: arbitrary URL query parameters on every page that reads them, HTML and formula text
from a log rendered as text (tables, Plotly hover text, the HTML report, CSV exports), demo mode (pseudonyms
everywhere, no attributes anywhere) and upload limits."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import streamlit as st
from dashboard_helpers import APP, USER, figure, open_page, problems
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st_h
from streamlit.testing.v1 import AppTest

from core.errors import UserInputError
from core.ingest import ColumnMapping, ingest
from core.privacy import DEMO_ENV, DEMO_KEY_ENV, Pseudonymizer
from core.store import connect_read, user_history
from dashboard.components import panels, upload
from dashboard.components.report import user_report

BAD = Path(__file__).resolve().parents[1] / "fixtures" / "bad"
HOSTILE = ["'; DROP TABLE events; --", "<script>alert(1)</script>", "=HYPERLINK(\"x\")", "\u202eevil", "%", "",
           "-1", "1e309", "NaN", "../../etc/passwd", "[x](javascript:alert(1))", "u003"]
VALUE = st_h.one_of(st_h.sampled_from(HOSTILE), st_h.text(max_size=12))
APP_SETTINGS = settings(max_examples=4, deadline=None, derandomize=True, database=None,
                        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _db_hash(db: Path) -> tuple:
    with connect_read(db) as con:
        return tuple(con.execute(f"SELECT count(*), coalesce(bit_xor(hash(x)), 0) FROM {t} x").fetchall()[0]
                     for t in ("events", "users", "items", "rejects", "meta", "ingest_runs"))


def _check_page(page: str, params: dict, db: Path) -> None:
    before = _db_hash(db)
    at = open_page(page, **params)
    assert not at.exception, (page, params, [e.value for e in at.exception])
    for message in problems(at):  # an unknown item is an error box with one sentence, never a traceback
        assert "\n" not in message and "Traceback" not in message and message.endswith(("\\.", ".")), (params, message)
    assert _db_hash(db) == before  # reading the app never changes the database


@APP_SETTINGS
@given(user=VALUE, k=VALUE, view=VALUE)
def test_user_explorer_url_parameters(dash_env, user, k, view):
    _check_page("user_explorer", {"user": user, "k": k, "view": view}, dash_env[0])


@APP_SETTINGS
@given(item=VALUE, user=st_h.sampled_from([USER, "<b>x</b>", "'; --"]))
def test_explain_url_parameters(dash_env, user, item):
    _check_page("explain", {"user": user, "item": item}, dash_env[0])


@APP_SETTINGS
@given(step=VALUE, source=VALUE, period=VALUE)
def test_attention_and_overview_url_parameters(dash_env, step, source, period):
    _check_page("attention", {"user": USER, "step": step, "attention_source": source, "attention_period": period},
                dash_env[0])
    _check_page("overview", {"overview_period": period}, dash_env[0])


def test_unknown_user_in_the_url_is_one_warning_shown_as_text(dash_env):
    at = open_page("user_explorer", user="<script>alert(1)</script>")
    assert not problems(at)
    warning = at.warning[0].value
    assert warning.startswith("There is no user") and "\\<script\\>" in warning  # markdown-escaped: shown as text


@pytest.fixture
def html_env(monkeypatch, writable_db, tmp_path):
    """The tiny database plus user "1" whose items have HTML, script and formula titles; no model."""
    ingest(writable_db, "generic", BAD / "html_titles.csv", mapping=ColumnMapping(title="title"))
    ingest(writable_db, "generic", BAD / "formula_ids.csv", mapping=ColumnMapping(title="title"))
    monkeypatch.setenv("INTERESTLENS_DB", str(writable_db))
    monkeypatch.setenv("INTERESTLENS_MODELS", str(tmp_path / "no-models"))
    monkeypatch.delenv("INTERESTLENS_MODEL", raising=False)
    return writable_db


def test_html_titles_render_as_text_in_tables_charts_and_the_report(html_env):
    at = open_page("user_explorer", user="1")
    at.session_state["events_open_0"] = True  # "Events as a table" draws only once opened (a lazy expander)
    at.run()
    assert not at.exception
    table = next(d.value for d in at.dataframe if "title" in d.value.columns)
    titles = set(table["title"])
    assert "</td></tr><script>alert(2)</script>" in titles and '<img src=x onerror="alert(1)">' in titles
    hover = " ".join(t for trace in figure(at, "user_timeline")["data"] for t in trace.get("hovertext", []))
    assert "&lt;/td&gt;&lt;/tr&gt;&lt;script&gt;alert(2)&lt;/script&gt;" in hover
    assert "<script" not in hover and "<img" not in hover and "<svg" not in hover  # Plotly gets no markup
    with connect_read(html_env) as con:
        history = user_history(con, "1")
    html = user_report("1", history, None, None, None)
    assert "&lt;/td&gt;&lt;/tr&gt;&lt;script&gt;alert(2)&lt;/script&gt;" in html
    assert "<script>alert" not in html and "<img src=x" not in html and "<svg onload" not in html
    # the only script tags are Plotly's own (the library inline, then one per figure)
    assert len(re.findall(r"<script\b", html)) == html.count("</script>")


def test_formula_text_is_quoted_in_every_csv_export(html_env):
    with connect_read(html_env) as con:
        history = user_history(con, "=cmd|' /C calc'!A0")
    exported = panels.csv(panels.history_table(history)).decode()
    assert "'=cmd|' /C calc'!A0" in exported and "\n=cmd" not in exported and ",=cmd" not in exported
    for page in sorted((Path(APP).parent / "pages").glob("*.py")):  # every page's downloads go through panels.csv
        assert ".to_csv(" not in page.read_text(), page.name
    assert not any("unsafe_allow_html=True" in p.read_text() for p in Path(APP).parent.rglob("*.py"))


def _rendered(at: AppTest) -> str:
    """Everything the page drew (text, tables as Arrow bytes, charts), as protobuf text."""
    out: list[str] = []

    def walk(node) -> None:
        if getattr(node, "proto", None) is not None:
            out.append(str(node.proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return "\n".join(out)


@pytest.fixture
def demo_env(dash_env, monkeypatch):
    monkeypatch.setenv(DEMO_ENV, "1")
    monkeypatch.setenv(DEMO_KEY_ENV, "test demo key")
    st.cache_data.clear()  # results cached without demo mode must not be reused
    yield Pseudonymizer("test demo key")
    st.cache_data.clear()


def test_demo_mode_shows_pseudonyms_everywhere_and_no_attributes(demo_env, dash_env):
    db, _ = dash_env
    with connect_read(db) as con:
        real = [r[0] for r in con.execute("SELECT user_id FROM users").fetchall()]
        values = {str(v) for (m,) in con.execute("SELECT attributes FROM users").fetchall() for v in (m or {}).values()}
        n_events = len(user_history(con, USER))
    alias = demo_env.pseudonym(USER)
    leaks = re.compile(r"(?<![0-9A-Za-z\\])(" + "|".join(map(re.escape, real)) + ")(?![0-9])")  # not JSON's \u003c

    at = open_page("user_explorer", user=alias)
    assert not problems(at)
    assert {m.label: m.value for m in at.metric}["Events"] == f"{n_events:,}"  # the pseudonym opens the real user
    for key in ("finder_open_0", "changed_open_0"):  # with a user open these two draw only once opened (lazy)
        at.session_state[key] = True
    at.run()
    assert not problems(at)
    finder = next(d.value for d in at.dataframe if "events" in d.value.columns and "user_id" in d.value.columns)
    assert "attributes" not in finder.columns and all(Pseudonymizer.looks_like(u) for u in finder["user_id"])
    drift = next(d.value for d in at.dataframe if "largest_change" in d.value.columns)
    assert all(Pseudonymizer.looks_like(u) for u in drift["user_id"])
    assert not any(c.value.startswith("Attributes:") for c in at.caption)
    text = _rendered(at)
    assert not leaks.search(text), leaks.search(text)
    assert not any(v in text for v in values if len(v) > 3)  # no attribute value anywhere
    assert at.query_params["user"] == alias

    at = open_page("user_explorer", user=USER)  # a stored id matches nobody in demo mode
    assert at.warning and at.warning[0].value.startswith("There is no user")

    at = open_page("explain", user=alias)
    assert not problems(at) and not leaks.search(_rendered(at))
    at = open_page("cohorts")  # no attributes in demo mode: cohorts are cut by activity and tenure only
    assert not problems(at) and any("Demo mode hides user attributes" in c.value for c in at.caption)
    assert [s.key for s in at.selectbox][:2] == ["cohorts_a_activity_quartile", "cohorts_a_tenure_quartile"]
    assert not leaks.search(_rendered(at))


def test_uploads_are_limited_in_type_and_size(dash_env):
    at = open_page("data_models")
    (uploader,) = at.get("file_uploader")
    assert list(uploader.proto.type) == ["." + t for t in upload.ALLOWED_TYPES]
    assert uploader.proto.max_upload_size_mb == 200
    upload.check_upload("u.data", 10, 200)
    upload.check_upload("reviews.json.gz", 200 * 1024 * 1024, 200)
    for name, size, message in [
        ("evil.exe", 10, r"^evil\.exe is not a log file this page reads; upload \.csv"),
        ("page.html", 10, r"^page\.html is not a log file"),
        ("a.csv\x00.exe", 10, r"is not a log file"),
        ("big.csv", 200 * 1024 * 1024 + 1, r"^big\.csv is larger than the upload limit of 200 MB"),
    ]:
        with pytest.raises(UserInputError, match=message):
            upload.check_upload(name, size, 200)
    from streamlit.elements.lib.file_uploader_utils import (
        enforce_filename_restriction,
        normalize_upload_file_type,
    )
    from streamlit.errors import StreamlitAPIException

    allowed = normalize_upload_file_type(list(upload.ALLOWED_TYPES))
    enforce_filename_restriction("ratings.csv", allowed)  # Streamlit's own server-side check agrees
    with pytest.raises(StreamlitAPIException):
        enforce_filename_restriction("evil.exe", allowed)


def test_a_model_name_cannot_leave_the_models_folder(dash_env, tmp_path):
    at = open_page("data_models")
    assert any(b.key == "data_train_go" for b in at.button)
    at.text_input(key="data_train_name").set_value("../../escape").run()
    assert any("A model name may use letters" in e.value for e in at.error)
    assert not any(b.key == "data_train_go" for b in at.button)  # nothing to click: no training outside the root
    assert not (Path(dash_env[1]).parent.parent / "escape").exists()


def test_a_page_view_leaves_the_database_file_as_it_was(dash_env):
    """The app reads the shared database read-only: its bytes do not change across a page view."""
    db, _ = dash_env
    before = db.read_bytes()
    open_page("overview")
    assert db.read_bytes() == before
