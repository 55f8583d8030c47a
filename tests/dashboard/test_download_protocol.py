"""Over Streamlit's own protocol (bench/ws_client.py, no browser), against `interestlens serve`: after a user switch,
and after going back from the Explain page, the server starts no run the tab did not ask for, and every download
button the settled page shows answers 200 with the shown user's data (the recommendations CSV holds the top-K the
page lists; the events CSV is drawn only when its expander is opened).

Issue 23's download 404s (20 sessions + 3 Chromium) were looked for here first: a file is dropped when a later run of
the same session finishes without it, so a second run after a switch (a URL write, a routed link, a live and a
stored view with different bytes) would drop the files the tab shows. None is started (`settled` reads every run
until the server is quiet for 3 s): the 404s came from the browser session typing into a run still in progress
(tests/dashboard/test_load_ready.py)."""

from __future__ import annotations

import asyncio
import csv
import io
import urllib.request

from dashboard_helpers import OTHER_USER, USER

from bench.ws_client import Tab
from core.store import connect_read, user_history


def _rows(tab: Tab, url: str) -> list[dict[str, str]]:
    """The CSV a download URL serves (a 404 raises)."""
    with urllib.request.urlopen(tab._request(tab.url + url if url.startswith("/") else url), timeout=60) as r:  # noqa: S310 (loopback)
        assert r.status == 200
        return list(csv.DictReader(io.StringIO(r.read().decode("utf-8"))))


def test_downloads_after_a_switch_and_after_explain_answer_with_the_shown_users_data(served, dash_env):
    db, _ = dash_env
    with connect_read(db) as con:
        items = {u: [str(i) for i in user_history(con, u)["item_id"]] for u in (USER, OTHER_USER)}

    def check(tab: Tab, run, user: str) -> None:
        links = [u for u in run.downloads if u]
        # the recommendations; the events CSV is drawn only once "Events as a table" is opened (a lazy expander,
        # whose content tests/dashboard/test_user_explorer.py checks)
        assert len(links) == 1, run.downloads
        recs = _rows(tab, links[0])
        assert [r["item_id"] for r in recs] == run.items[:len(recs)] and len(recs) == 10

    async def scenario() -> None:
        tab = Tab(served, timeout_s=300)
        await tab.open()
        run = await tab.rerun({"user": USER})
        explorer = tab.page_hash
        box = run.text_inputs["User id"][0]
        await tab.send({"user": OTHER_USER}, explorer, widgets={box: OTHER_USER})  # typed + Enter
        run = await tab.settled()  # every run the switch leads to, until the server is quiet
        assert run.metrics["Events"] == f"{len(items[OTHER_USER]):,}" and not run.problems
        check(tab, run, OTHER_USER)
        shown = await tab.rerun({"item": run.items[0]}, tab.page("Explain"))
        assert "Score" in shown.metrics and not shown.problems
        tab.query.pop("item")
        await tab.send(None, explorer)  # back to the explorer
        run = await tab.settled()
        assert run.metrics["Events"] == f"{len(items[OTHER_USER]):,}" and not run.problems
        check(tab, run, OTHER_USER)
        await tab.close()

    asyncio.run(scenario())
