"""The app as a browser tab sees it, over Streamlit's own websocket protocol (bench/ws_client.py, no browser):
`interestlens serve` in a subprocess, one `Tab` that switches user, opens the Explain page, goes back, visits a
page without the user box and reloads.

Whenever the server sets the "User id" box (`set_value`: the browser then shows the server's value), it sets it to
the user the tab chose; the selection survives the Explain page and a page without the box; download links of a
reloaded tab answer 200."""

from __future__ import annotations

import asyncio
from pathlib import Path

from dashboard_helpers import OTHER_USER, USER

from bench.ws_client import Tab
from core.store import connect_read


def _events(db: Path, user: str) -> str:
    with connect_read(db) as con:
        return f"{con.execute('SELECT count(*) FROM events WHERE user_id = ?', [user]).fetchone()[0]:,}"


class _BoxWatch:
    """Records every "User id" box the server sends: (value it sets or None, set_value)."""

    def __init__(self, monkeypatch):
        self.sent: list[tuple[str, bool]] = []
        plain = Tab._element

        def element(el, run, fragment=""):
            if el.WhichOneof("type") == "text_input" and el.text_input.label == "User id":
                self.sent.append((el.text_input.value if el.text_input.set_value else None, el.text_input.set_value))
            plain(el, run, fragment)

        monkeypatch.setattr(Tab, "_element", staticmethod(element))

    def last(self) -> tuple[str, bool]:
        return self.sent[-1]


def test_the_selection_survives_explain_and_other_pages_and_downloads_survive_a_reload(served, dash_env,
                                                                                                monkeypatch):
    db, _ = dash_env
    box = _BoxWatch(monkeypatch)

    async def scenario() -> None:
        tab = Tab(served, timeout_s=300)
        await tab.open()
        run = await tab.rerun({"user": USER})  # a shared link: the app moves to the explorer
        explorer = tab.page_hash
        assert run.metrics["Events"] == _events(db, USER) and not run.problems
        box_id = run.text_inputs["User id"][0]
        run = await tab.rerun({"user": OTHER_USER}, explorer, widgets={box_id: OTHER_USER})  # typed + Enter
        assert run.metrics["Events"] == _events(db, OTHER_USER) and box.last()[0] in (OTHER_USER, None)
        item = run.items[0]
        shown = await tab.rerun({"item": item}, tab.page("Explain"))
        assert "Score" in shown.metrics and not shown.problems
        assert box.last()[0] in (OTHER_USER, None)
        tab.query.pop("item")
        run = await tab.rerun(None, explorer)  # back to the explorer
        assert run.metrics["Events"] == _events(db, OTHER_USER)
        assert box.last()[0] in (OTHER_USER, None)
        await tab.rerun(None, tab.page("Overview"))  # a page without the box: the selection is carried back
        run = await tab.rerun(None, explorer)
        assert run.metrics["Events"] == _events(db, OTHER_USER) and box.last()[0] in (OTHER_USER, None)
        links = [u for u in run.downloads if u]
        assert links and all(tab.get(u) == 200 for u in links)
        await tab.close()
        again = Tab(served, timeout_s=300)  # a reload: a new session on the same link
        await again.open()
        run = await again.rerun({"user": OTHER_USER})
        assert run.metrics["Events"] == _events(db, OTHER_USER)
        fresh = [u for u in run.downloads if u]
        await asyncio.sleep(2.0)  # the old session's clean-up has run by now
        assert fresh and all(again.get(u) == 200 for u in fresh)
        await again.close()

    asyncio.run(scenario())


def test_a_page_switch_keeps_the_user_without_rewriting_the_url_and_an_id_typed_after_explain_stays(served, dash_env):
    """Page switches as the browser sends them (only URL-bound parameters carried): the user stays and the server
    writes nothing into the URL (each write was a second history entry per switch, which broke the back button);
    an id typed into the box at once after leaving Explain is the one the explorer shows (it used to be sent to
    the Explain page's own box and lost)."""
    db, _ = dash_env

    async def scenario() -> None:
        tab = Tab(served, timeout_s=300)
        await tab.open()
        run = await tab.rerun({"user": USER})  # a shared link: the explorer
        assert run.metrics["Events"] == _events(db, USER) and not run.problems
        for name in ("Attention", "Explain"):
            run = await tab.switch(name, last=run)
            assert not run.problems and tab.query.get("user") == USER
            assert run.url_writes == [], f"switching to {name}, the server rewrote the URL: {run.url_writes}"
        box_id = run.text_inputs["User id"][0]  # the box as the Explain page drew it
        run = await tab.switch("User explorer", typed=(box_id, OTHER_USER), last=run)
        assert run.metrics["Events"] == _events(db, OTHER_USER) and not run.problems
        assert tab.query.get("user") == OTHER_USER
        await tab.close()

    asyncio.run(scenario())
