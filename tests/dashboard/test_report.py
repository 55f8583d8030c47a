"""The HTML report of one user: self-contained, and log text shown as text (never markup)."""

from __future__ import annotations

import datetime as dt
import re

import pandas as pd

from dashboard.components.report import user_report

EVIL = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def _history() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "step": [0, 1],
            "ts": [dt.datetime(2025, 1, 1, 12), dt.datetime(2025, 1, 2, 12)],
            "item_id": ["i1", "i2"],
            "title": [EVIL, "Plain & simple"],
            "categories": [["<b>Cat</b>"], ["Drama"]],
            "event_type": ["click", "view"],
            "value": [None, 1.0],
            "context": [{}, {"device": "<i>tv</i>"}],
        }
    )


def test_report_escapes_log_text_everywhere():
    recs = pd.DataFrame({"rank": [1], "item_id": ["i9"], "title": [EVIL], "score": [1.5], "categories": [["<b>Cat</b>"]]})
    out = user_report("<u>17</u>", _history(), None, recs, None, model_name="m<1>")
    assert "<script>alert" not in out and "<img src=x" not in out and "<b>Cat</b>" not in out
    assert "<td>&lt;script&gt;alert(\"x\")&lt;/script&gt;" in out  # table cells: HTML-escaped
    assert "user &lt;u&gt;17&lt;/u&gt;" in out and "model m&lt;1&gt;" in out
    assert "Plain &amp; simple" in out
    plain = user_report("17", _history().assign(title="t", categories=[["c"], ["d"]]), None, recs.assign(title="t"), None)
    assert len(re.findall(r"<script", out)) == len(re.findall(r"<script", plain))  # Plotly's own tags, nothing more


def test_report_is_self_contained():
    out = user_report("17", _history(), None, None, None)
    assert out.startswith("<!doctype html>") and out.rstrip().endswith("</html>")
    assert not re.search(r"<script[^>]*\ssrc=", out) and not re.search(r"<link[^>]*\shref=", out)  # nothing fetched
    assert "Plotly.newPlot" in out
