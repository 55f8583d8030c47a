"""The real thing: `interestlens serve` in a subprocess, driven by Debian's Chromium through Playwright.

Opens a deep link to a user, waits until the Plotly charts are drawn, clicks through to an explanation, the fairness
page and every other page, asserts on visible text, saves screenshots (to $INTERESTLENS_SCREENSHOTS, e.g. docs/screenshots for the README;
else a temporary folder, so `make test` leaves the working tree as it was)
and fails on any browser console error or failed request.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import pytest
from dashboard_helpers import OTHER_USER, USER, small

from core.store import connect_read, user_history

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
SHOTS = Path(os.environ.get("INTERESTLENS_SCREENSHOTS") or tempfile.mkdtemp(prefix="interestlens-shots-"))
SLOW = 300_000  # ms: a first explanation or fairness report on a busy 2-core machine


@pytest.fixture
def server(chromium, served) -> str:
    """`interestlens serve` on the tiny database (conftest's `served`), once Chromium is known to be there."""
    return served


def _charts_drawn(page, n: int) -> None:
    page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {n}", timeout=SLOW)


def _idle(page) -> None:
    """Wait until the script run is over (Streamlit shows its running widget only while a script runs)."""
    page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=SLOW)


ONE_LIST_JS = "document.querySelectorAll('[data-testid=\"stSidebar\"] [data-testid=\"stRadio\"]').length === 1"


# The run is over and drew the whole page: no element left over from the previous page (Streamlit marks those
# data-stale until the run replaces them) and one page list. `_idle` alone can pass in the moment between a click and
# the run's start, and the screenshot then showed the old page's charts under the new heading.
SETTLED_JS = ("!document.querySelector('[data-stale=\"true\"]') && "
              "!document.querySelector('[data-testid=\"stStatusWidget\"]') && " + ONE_LIST_JS)


def _shot(page, name: str) -> None:
    _idle(page)
    page.wait_for_function(SETTLED_JS, timeout=SLOW)
    path = SHOTS / name
    page.screenshot(path=str(path))
    small(path)


def _goto(page, name: str) -> None:
    """A click on page `name` in the sidebar's page list (dashboard/components/nav.py), once one list is drawn: a
    pick draws the list anew (a new widget id), and the old one can be on screen beside it while that run lasts."""
    page.wait_for_function(ONE_LIST_JS)
    page.get_by_test_id("stSidebar").get_by_test_id("stRadio").get_by_text(name, exact=True).click()


def test_browser_deep_link_explanation_fairness_and_screenshots(server, dash_env, chromium):
    from playwright.sync_api import expect, sync_playwright

    db, _ = dash_env
    with connect_read(db) as con:
        n_events = len(user_history(con, USER))
    SHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 2000})
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))

            # A shared link to the root with ?user= lands on that user's explorer.
            page.goto(f"{server}/?user={USER}")
            expect(page.get_by_role("heading", name="User explorer")).to_be_visible(timeout=SLOW)
            _charts_drawn(page, 3)  # trajectory, gate, timeline
            expect(page.get_by_test_id("stMetric").filter(has_text="Events")).to_contain_text(str(n_events))
            expect(page.get_by_text("Interest over categories — model").first).to_be_visible()
            assert re.search(rf"/user\?(.*&)?user={USER}", page.url)
            _shot(page, "user_explorer.png")

            # Click through to an explanation of the top recommendation.
            _goto(page, "Explain")
            expect(page.get_by_role("heading", name="Explain a recommendation")).to_be_visible(timeout=SLOW)
            page.get_by_test_id("stSelectbox").filter(has_text="Recommendation to explain").click()
            page.get_by_role("option").first.click()
            expect(page.get_by_test_id("stMetric").filter(has_text="Score")).to_be_visible(timeout=SLOW)
            _charts_drawn(page, 1)
            expect(page.get_by_text("Contribution of each event").first).to_be_visible()
            assert f"user={USER}" in page.url and "item=" in page.url
            _shot(page, "explain.png")
            page.get_by_role("tab", name="Attention vs SHAP").click()
            expect(page.get_by_text("Deletion curves").first).to_be_visible(timeout=SLOW)
            _shot(page, "explain_faithfulness.png")

            # The fairness page.
            _goto(page, "Fairness")
            expect(page.get_by_role("tab", name="User groups")).to_be_visible(timeout=SLOW)
            _charts_drawn(page, 1)
            _shot(page, "fairness.png")
            page.get_by_role("tab", name="Items & exposure").click()
            expect(page.get_by_test_id("stMetric").filter(has_text="Coverage")).to_be_visible(timeout=SLOW)
            expect(page.get_by_text("Exposure Lorenz curve").first).to_be_visible(timeout=SLOW)
            _shot(page, "fairness_items.png")

            # The other pages, each drawn without an error.
            for name, heading, charts, shot in [
                ("Overview", "Overview", 4, "overview.png"),
                ("Attention", "Attention", 3, "attention.png"),
                ("Cohorts", "Cohorts", 2, "cohorts.png"),
                ("Search by meaning", "Search by meaning", 0, "search.png"),
                ("Data & models", "Data & models", 0, "data_models.png"),
            ]:
                _goto(page, name)
                expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible(timeout=SLOW)
                if charts:
                    _charts_drawn(page, charts)
                _shot(page, shot)
            assert not page.get_by_test_id("stException").count()
        finally:
            browser.close()
    assert not problems, "\n".join(problems)


def test_browser_url_state_back_forward_reload_and_an_id_typed_after_explain(server, dash_env, chromium):
    """A deep link's user stays in the URL through every page switch (the first one used to drop it), the browser's
    back and forward buttons walk the pages one by one (each switch used to add a second history entry, so back
    from Explain could stay on Explain), a reload shows the same view, and an id typed at once after leaving
    Explain is kept (it used to go to the Explain page's own box and be lost)."""
    from playwright.sync_api import expect, sync_playwright

    db, _ = dash_env
    with connect_read(db) as con:
        other_events = len(user_history(con, OTHER_USER))
    heading = {"user": "User explorer", "attention": "Attention", "explain": "Explain a recommendation"}

    def at(page, path: str, user: str = USER) -> None:
        expect(page.get_by_role("heading", name=heading[path], exact=True)).to_be_visible(timeout=SLOW)
        page.wait_for_url(re.compile(rf"/{path}\?(.*&)?user={user}(&|$)"), timeout=SLOW)
        expect(page.get_by_role("textbox", name="User id", exact=True)).to_have_value(user, timeout=SLOW)
        _idle(page)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1400})
            page.set_default_timeout(SLOW)
            page.goto(f"{server}/?user={USER}")
            at(page, "user")
            _goto(page, "Attention")  # the first switch after the deep link
            at(page, "attention")
            _goto(page, "Explain")
            at(page, "explain")

            page.go_back()
            at(page, "attention")
            page.go_back()
            at(page, "user")
            page.go_forward()
            at(page, "attention")
            page.go_forward()
            at(page, "explain")
            page.reload()  # the same view
            at(page, "explain")
            _shot(page, "url_state_explain.png")

            # Back to the explorer and an id typed at once, while the switch is under way.
            _goto(page, "User explorer")
            box = page.get_by_role("textbox", name="User id", exact=True)
            box.fill(OTHER_USER)
            box.press("Enter")
            at(page, "user", OTHER_USER)
            expect(page.get_by_test_id("stMetric").filter(has_text="Events")).to_contain_text(str(other_events))
            page.wait_for_timeout(1500)  # a late run must not put the old id back
            expect(page.get_by_role("textbox", name="User id", exact=True)).to_have_value(OTHER_USER)
            assert f"user={OTHER_USER}" in page.url
        finally:
            browser.close()


@pytest.fixture
def onnx_beside_ours(dash_env, tmp_path, monkeypatch):
    """A tiny embedding-sum scorer exported to ONNX and registered in a models folder of its own: the served
    app then lists ours (its --model) first and this one second. Must come before `server` (it sets the env)."""
    import json

    import torch

    from core.external import add_model
    from core.sequences import build_vocab

    db, _ = dash_env
    with connect_read(db) as con:
        items = build_vocab(con).items
    folder, root = tmp_path / "onnx", tmp_path / "models"
    folder.mkdir()
    (folder / "items.csv").write_text("index,item_id\n" + "".join(f"{n + 1},{i}\n" for n, i in enumerate(items)))
    weight = torch.randn(len(items) + 1, 4, generator=torch.Generator().manual_seed(0))

    class EmbSum(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding.from_pretrained(weight, padding_idx=0)

        def forward(self, seq: torch.Tensor) -> torch.Tensor:
            return self.emb(seq).sum(1) @ self.emb.weight.t()  # [B, I+1]: the padding row (0) adds nothing

    torch.onnx.export(EmbSum().eval(), (torch.tensor([[1, 2, 0]]),), str(folder / "model.onnx"), input_names=["seq"],
                      output_names=["out"], dynamic_axes={"seq": {0: "B"}, "out": {0: "B"}}, dynamo=False)
    (folder / "model.json").write_text(json.dumps({"inputs": {"items": "seq"}, "output": "out", "max_len": 3,
                                                   "padding": "right", "items_file": "items.csv"}))
    with connect_read(db) as con:
        add_model(con, root, "toy-onnx", "onnx", str(folder / "model.onnx"))
    monkeypatch.setenv("INTERESTLENS_MODELS", str(root))
    return root / "toy-onnx"


def test_browser_compare_ours_with_an_onnx_model(onnx_beside_ours, server, dash_env, chromium):
    """The Compare page in Chromium: ours (A) against an ONNX model (B), the paired NDCG difference being
    core.compare's, the accuracy-per-protocol table, both trajectories of the most disagreeing user drawn, the HTML
    export offered."""
    from playwright.sync_api import expect, sync_playwright

    from core.compare import compare_models

    db, ours = dash_env
    expected = compare_models(db, ours, onnx_beside_ours)
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 2200})
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("response", lambda r: problems.append(f"{r.status}: {r.url}") if r.status >= 400 else None)
            # through the sidebar: a first load of /compare itself makes Streamlit's client probe
            # /compare/_stcore/health (404) before it finds the server's root
            page.goto(server)
            expect(page.get_by_role("heading", name="Overview")).to_be_visible(timeout=SLOW)
            _goto(page, "Compare models")
            expect(page.get_by_role("heading", name="Compare models")).to_be_visible(timeout=SLOW)
            metric = page.get_by_test_id("stMetric").filter(has_text="NDCG@10, A − B")
            expect(metric).to_contain_text(f"{expected.ndcg_diff:+.4f}", timeout=SLOW)
            expect(page.get_by_text("A = trained (interestlens), B = toy-onnx (onnx)")).to_be_visible()
            expect(page.get_by_text("Top-10 overlap")).to_be_visible()
            expect(page.get_by_text("Accuracy per protocol")).to_be_visible()  # its rows: test_compare_page.py
            _charts_drawn(page, 2)  # the most disagreeing user's trajectory under each model
            expect(page.get_by_test_id("stDownloadButton")).to_contain_text("Download the comparison (HTML)")
            _shot(page, "compare_browser.png")
            assert not page.get_by_test_id("stException").count()
        finally:
            browser.close()
    assert not problems, "\n".join(problems)


def test_browser_friends_panel_of_a_model_trained_with_friends(friends_env, serve, chromium):
    """The user explorer on a log with a social graph and a model trained with the social branch: the Friends panel
    draws its ego network and social share and lists "Influenced by" links, with no browser error (screenshot
    friends.png)."""
    from playwright.sync_api import expect, sync_playwright

    url = serve(*friends_env)
    SHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1100})
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
            page.goto(f"{url}/?user=s00")
            expect(page.get_by_role("heading", name="User explorer")).to_be_visible(timeout=SLOW)
            heading = page.get_by_role("heading", name="Friends", exact=True)
            expect(heading).to_be_visible(timeout=SLOW)
            expect(page.get_by_text("Influenced by")).to_be_visible(timeout=SLOW)
            _charts_drawn(page, 5)  # trajectory, gate, timeline, then the ego network and the social share
            expect(page.get_by_text("of the interest").first).to_be_visible()
            assert page.locator("a[href^='?user=']").count() >= 1  # each friend links to their own explorer
            heading.evaluate("h => h.scrollIntoView({block: 'start'})")  # the panel from its heading down
            _shot(page, "friends.png")
            assert not page.get_by_test_id("stException").count()
        finally:
            browser.close()
    assert not problems, "\n".join(problems)
