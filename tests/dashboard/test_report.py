"""The HTML report of one user: self-contained, log text shown as text (never markup), the app's colours, under
2 MB for a 2,700-event user, and drawn offline by Chromium from its packed plotly.js."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import plotly

from core.trajectory import Trajectory, decayed_histogram, detect_changes
from dashboard.components.report import user_report
from dashboard.components.report_assets import APP_COLOURS, unpack

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


def _block(out: str, block_id: str) -> bytes:
    m = re.search(rf"<script type='application/octet-stream' id='{block_id}' data-packed='(\d+)' data-size='(\d+)'>([^<]*)</script>", out)
    assert m, f"no {block_id} block"
    data = unpack(m.group(3), int(m.group(1)))
    assert len(data) == int(m.group(2))  # the size the page's decoder stops at
    return data


def _figures(out: str) -> list[dict]:
    return json.loads(_block(out, "il-figures"))


def _long_user(n: int = 2700, c: int = 18) -> tuple[pd.DataFrame, Trajectory, pd.DataFrame, SimpleNamespace]:
    """A 2,700-event user over two years: every title different (as for a heavy MovieLens rater), 18 categories,
    three event types; a trajectory from the decayed history (no model), ten recommendations, 50 explained events."""
    rng = np.random.default_rng(0)
    cats = [f"Category {k}" for k in range(c)]
    ts = np.datetime64("2023-01-01T08:00:00", "s") + np.sort(rng.integers(0, 2 * 365 * 86400, n)).astype("timedelta64[s]")
    words = ["Night", "Return", "Love", "City", "War", "Last", "Secret", "House", "Dream", "Storm", "River", "King"]
    titles = [f"{rng.choice(words)} of the {rng.choice(words)} {k} ({1950 + k % 70})" for k in range(n)]
    main = np.where(rng.random(n) < 0.7, (np.arange(n) // 300) % c, rng.integers(0, c, n))
    second = rng.integers(0, c, n)
    history = pd.DataFrame({
        "step": np.arange(n), "ts": pd.to_datetime(ts), "item_id": [f"item{k}" for k in range(n)], "title": titles,
        "categories": [[cats[a]] if a == b else [cats[a], cats[b]] for a, b in zip(main, second, strict=True)],
        "event_type": rng.choice(["view", "click", "purchase"], n), "value": None, "context": [{}] * n,
    })
    events = np.eye(c)[main]
    base = decayed_histogram(events, 10.0)
    steps = pd.DataFrame({"index": np.arange(n), "time": ts, "item": history["item_id"], "title": titles})
    traj = Trajectory(user_id="u1", steps=steps, categories=cats, distribution=base, long_term=None, short_term=None,
                      baseline=base, gate=rng.random(n), drift=rng.random(n),
                      change_points=detect_changes(events, ts).steps, events=events)
    recs = pd.DataFrame({"rank": range(1, 11), "item_id": [f"r{k}" for k in range(10)],
                         "title": [f"Rec {k}" for k in range(10)], "score": np.linspace(2, 1, 10),
                         "categories": [["Category 1"]] * 10})
    labels = [SimpleNamespace(text=lambda i=i: f"#{i} {titles[i]}") for i in range(50)]
    expl = SimpleNamespace(target="r0", labels=labels, values=rng.normal(size=50), base=0.1, fx=1.2)
    return history, traj, recs, expl


def test_report_escapes_log_text_everywhere():
    recs = pd.DataFrame({"rank": [1], "item_id": ["i9"], "title": [EVIL], "score": [1.5], "categories": [["<b>Cat</b>"]]})
    expl = SimpleNamespace(target="i9", labels=[SimpleNamespace(text=lambda: EVIL)] * 2, values=np.array([0.5, -0.2]),
                           base=0.0, fx=0.3)
    out = user_report("<u>17</u>", _history(), None, recs, expl, model_name="m<1>")
    assert "<script>alert" not in out and "<img src=x" not in out and "<b>Cat</b>" not in out
    assert "<td>&lt;script&gt;alert(\"x\")&lt;/script&gt;" in out  # table cells: HTML-escaped
    assert "user &lt;u&gt;17&lt;/u&gt;" in out and "model m&lt;1&gt;" in out
    assert "Plain &amp; simple" in out
    assert "<h2>Why &lt;script&gt;alert" in out
    # the charts' labels, packed: Plotly gets the escaped text, which it shows as those characters
    figures = json.dumps(_figures(out))
    assert "<script" not in figures and "<b>Cat" not in figures and "<i>tv" not in figures
    assert "&lt;script&gt;alert" in figures and "&lt;b&gt;Cat&lt;/b&gt;" in figures
    plain = user_report("17", _history().assign(title="t", categories=[["c"], ["d"]]), None, recs.assign(title="t"), None)
    assert len(re.findall(r"<script", out)) == len(re.findall(r"<script", plain)) == 3  # plotly, figures, loader


def test_report_is_self_contained_and_carries_the_installed_plotly_js():
    out = user_report("17", _history(), None, None, None)
    assert out.startswith("<!doctype html>") and out.rstrip().endswith("</html>")
    assert not re.search(r"<script[^>]*\ssrc=", out) and not re.search(r"<link[^>]*\shref=", out)  # nothing fetched
    assert "http://" not in out.replace("http://www.w3.org", "") and "https://" not in out
    assert _block(out, "il-plotly") == (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_bytes()
    assert "Plotly.newPlot" in out


def test_a_2700_event_report_is_under_2_mb_in_the_apps_colours():
    history, traj, recs, expl = _long_user()
    out = user_report("u1", history, traj, recs, expl, model_name="m")
    size = len(out.encode("utf-8"))
    assert size < 2_000_000, f"{size:,} bytes"  # was 6.9 MB with plotly.js inlined as is
    figures = _figures(out)
    assert [f["id"] for f in figures] == ["chart-0", "chart-1", "chart-2", "chart-3"]  # timeline, trajectory, gate, why
    text = json.dumps(figures).lower()
    assert not [p for p in APP_COLOURS if f'"{p}"' in text]  # no Streamlit placeholder (near-black) colour left
    timeline = figures[0]
    assert [t["name"] for t in timeline["data"]] == ["click", "purchase", "view"]  # one trace per event type ...
    assert timeline["layout"]["template"]["layout"]["colorway"][:3] == ["#0068c9", "#83c9ff", "#ff2b2b"]  # app's colours
    assert sum(len(t["x"]) for t in timeline["data"]) == history["categories"].map(len).sum()  # every event drawn
    for fig in figures:  # labels get the room they need instead of the app's tight 10 px margins
        axes = [v for k, v in fig["layout"].items() if k.startswith(("xaxis", "yaxis"))]
        assert axes and all(a.get("automargin") is True for a in axes)
    trajectory = figures[1]
    assert len(trajectory["data"][0]["x"]) < len(history) / 10  # aggregated on its time grid (weeks), not per event
    waterfall = figures[3]["data"][0]
    assert waterfall["increasing"]["marker"]["color"] == "#dc2626" and waterfall["decreasing"]["marker"]["color"] == "#2563eb"


def test_chromium_draws_the_report_offline_from_its_packed_plotly(tmp_path, chromium):
    """The page's own LZMA decoder unpacks plotly.js and the figures, with every request refused: the four charts are
    drawn, in the app's colours, with no script error."""
    from playwright.sync_api import sync_playwright

    history, traj, recs, expl = _long_user()
    path = tmp_path / "report.html"
    path.write_text(user_report("u1", history, traj, recs, expl, model_name="m"), encoding="utf-8")
    requests: list[str] = []
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"], headless=True)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file:") else (requests.append(r.request.url), r.abort()))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(path.as_uri())
            page.wait_for_selector("body[data-charts=drawn]", timeout=120_000)
            drawn = page.evaluate("""() => Array.from(document.querySelectorAll('.il-chart')).map(d =>
                [d.querySelectorAll('.main-svg').length, d._fullData.map(t => (t.marker || {}).color)])""")
        finally:
            browser.close()
    assert not requests and not errors, (requests, errors)
    assert len(drawn) == 4 and all(n > 0 for n, _ in drawn)
    assert drawn[0][1] == ["#0068c9", "#83c9ff", "#ff2b2b"]  # the timeline's event types, as in the app


def test_the_packed_plotly_js_is_built_once_in_streamlits_cache(monkeypatch):
    """plotly.js is packed once (~3 s) and then served from the data layer's `st.cache_resource`: no cache of its
    own beside Streamlit's (clearing the app's resource cache packs it again)."""
    import streamlit as st

    from dashboard import cache
    from dashboard.components import report_assets

    packed = []
    real = report_assets.plotly_block
    monkeypatch.setattr(report_assets, "plotly_block", lambda: packed.append(1) or real())
    cache.plotly_js.clear()
    first = user_report("17", _history(), None, None, None)
    second = user_report("18", _history(), None, None, None)
    assert len(packed) == 1 and _block(first, "il-plotly") == _block(second, "il-plotly")
    st.cache_resource.clear()  # the one mechanism the app's caches answer to
    user_report("19", _history(), None, None, None)
    assert len(packed) == 2
    assert not hasattr(report_assets.plotly_block, "cache_info")  # no functools cache left on the builder
