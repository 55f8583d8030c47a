"""Page navigation (dashboard/components/nav.py): a page change asked for by a click wins over a rerun that the tab
sends from the page it is leaving, and the id typed into the "User id" box goes along.

Streamlit 1.67 folds a rerun request that arrives while another is pending into it with the newer request's page
(`ScriptRequests._request_rerun_locked`), so a click on "User explorer" followed at once by an id entered on the
Explain page used to end on the Explain page. The protocol tests speak the app's websocket protocol to a real
`interestlens serve` (bench/ws_client.py) and send the two requests back-to-back, before the first run ends: the
outcome must be the explorer with the typed id however the server interleaves them (coalesced, the second
interrupting the first, or after it). On the app before this change (Streamlit's own menu) it ended on Explain.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from dashboard_helpers import OTHER_USER, USER

from core.store import connect_read, user_history
from dashboard.components import nav

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # bench/ is not an installed package (as in test_session_protocol.py)
    sys.path.insert(0, str(ROOT))
from bench.ws_client import Tab  # noqa: E402

TO_EXPLAIN = ("Explain", nav.NAV_KEY)
TO_EXPLORER = ("User explorer", nav.NAV_KEY)


def _events(db, user: str) -> str:
    with connect_read(db) as con:
        return f"{len(user_history(con, user)):,}"


async def _on_explain(served: str, db) -> tuple[Tab, object]:
    """A tab that opened a shared link to USER (the explorer) and then clicked "Explain" in the sidebar."""
    tab = Tab(served, timeout_s=300)
    await tab.open()
    run = await tab.rerun({"user": USER})
    assert run.metrics["Events"] == _events(db, USER) and not run.problems
    run = await tab.nav(*TO_EXPLAIN, last=run)
    assert tab.page_hash == tab.page("Explain") and not run.problems
    return tab, run


def test_a_click_then_an_id_typed_at_once_on_the_old_page_ends_on_the_clicked_page_with_the_id(served, dash_env):
    db, _ = dash_env

    async def scenario() -> None:
        tab, run = await _on_explain(served, db)
        explain, box = tab.page_hash, run.text_inputs["User id"][0]
        # The click on "User explorer" and, before its run is over, the id typed + Enter, which the browser sends
        # from the page it still shows (Explain), with the box's new value and ?user=.
        await tab.nav(*TO_EXPLORER, last=run, wait=False)
        await tab.send({"user": OTHER_USER}, explain, widgets={box: OTHER_USER})
        await tab.finished()
        run = await tab.rerun(None, tab.page_hash)  # a rerun from the page the tab shows: everything sent is served
        assert tab.page_hash == tab.page("User explorer"), "the typed id put the tab back on the Explain page"
        assert run.metrics["Events"] == _events(db, OTHER_USER) and not run.problems
        assert run.text_inputs["User id"][1] in (OTHER_USER, None)  # the server never set the box to another id
        assert tab.query.get("user") == OTHER_USER
        await tab.close()

    asyncio.run(scenario())


def test_a_late_rerun_of_the_old_page_is_sent_back_until_the_tab_shows_the_new_one_and_back_wins(served, dash_env):
    db, _ = dash_env

    async def scenario() -> None:
        tab, run = await _on_explain(served, db)
        explain, explorer, box = tab.page_hash, tab.page("User explorer"), run.text_inputs["User id"][0]
        run = await tab.nav(*TO_EXPLORER, last=run)
        assert tab.page_hash == explorer and not run.problems
        # The box's rerun, sent before the tab had drawn the explorer, served after the switch was over.
        run = await tab.rerun({"user": OTHER_USER}, explain, widgets={box: OTHER_USER})
        assert tab.page_hash == explorer and run.metrics["Events"] == _events(db, OTHER_USER)
        await tab.rerun(None, explorer)  # a rerun from the explorer: the tab has shown it, the click is done
        run = await tab.rerun(None, explain)  # a page named later (a link, a URL) is honoured again
        assert tab.page_hash == explain and not run.problems
        # The browser's back button right after a click, before the tab sent anything from the new page: the
        # newer explicit choice wins.
        run = await tab.nav(*TO_EXPLORER, last=run)
        assert tab.page_hash == explorer
        run = await tab.rerun(None, explain, history=True)
        assert tab.page_hash == explain and not run.problems
        await tab.close()

    asyncio.run(scenario())
