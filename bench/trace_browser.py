"""Trace one Chromium tab's script runs: what the tab sent (each `BackMsg.rerun_script`: page, query string, widget
values), what each run drew (its download URLs, the URL it wrote), and every `/media/` response, while protocol
sessions (`bench.load_ws.drive`) load the same `interestlens serve`.

Issue 23's download 404 at 20 sessions: a download button's file is dropped when a later run of the same session
finishes without it, so the tab must have run twice after one interaction. This tells which request started the
second run. The tab does what `bench/load.py`'s explaining session does: switch user in the "User id" box, open the
Explain page from the sidebar, pick the top recommendation, go back to the explorer.

Usage::

    python bench/trace_browser.py --sessions 0 --rounds 3          # the tab alone
    python bench/trace_browser.py --sessions 20 --rounds 6         # beside 20 protocol sessions

Writes `bench/results/trace_browser-<tag>.json` (the event list and the 404s). Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import Results  # noqa: E402
from bench.load_data import user_counts  # noqa: E402
from bench.load_page import CHROMIUM, CHROMIUM_ARGS, EXPLANATION_READY_JS, EXPLORER_READY_JS  # noqa: E402
from bench.load_server import server  # noqa: E402
from bench.load_sessions import Users  # noqa: E402
from bench.load_ws import WORK, drive, prepare  # noqa: E402

__all__ = ["main"]

SLOW = 240_000  # ms a step may take under load
ONE_LIST_JS = "document.querySelectorAll('[data-testid=\"stSidebar\"] [data-testid=\"stRadio\"]').length === 1"


def _decode_back(payload: bytes) -> dict | None:
    from streamlit.proto.BackMsg_pb2 import BackMsg

    msg = BackMsg()
    try:
        msg.ParseFromString(payload)
    except Exception:
        return None
    kind = msg.WhichOneof("type")
    if kind != "rerun_script":
        return {"sent": kind}
    cs = msg.rerun_script
    widgets = {}
    for w in cs.widget_states.widgets:
        v = w.WhichOneof("value")
        val = getattr(w, v) if v else None
        widgets[w.id.split("-")[-1][:40]] = str(val)[:60] if v != "string_trigger_value" else "trigger"
    return {"sent": "rerun", "page": cs.page_script_hash[:8], "query": cs.query_string,
            "fragment": cs.fragment_id or None, "widgets": widgets, "auto": cs.is_auto_rerun,
            "history": cs.is_history_navigation}


def _decode_forward(payload: bytes) -> dict | None:
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    msg = ForwardMsg()
    try:
        msg.ParseFromString(payload)
    except Exception:
        return None
    kind = msg.WhichOneof("type")
    if kind == "new_session":
        return {"got": "run start", "page": msg.new_session.page_script_hash[:8]}
    if kind == "script_finished":
        return {"got": "run end", "status": ForwardMsg.ScriptFinishedStatus.Name(msg.script_finished)}
    if kind == "page_info_changed":
        return {"got": "url", "query": msg.page_info_changed.query_string}
    if kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
        el = msg.delta.new_element
        if el.WhichOneof("type") == "download_button":
            return {"got": "download", "url": el.download_button.url[-40:]}
    return None


async def _tab(url: str, counts: dict[str, int], rounds: int, events: list, t0: float, stop: threading.Event) -> None:
    from playwright.async_api import async_playwright

    def note(**kw) -> None:
        events.append({"t": round(time.monotonic() - t0, 3), **kw})

    users = Users(counts, 99)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        ctx = await browser.new_context(viewport={"width": 1280, "height": 1000})
        ctx.set_default_timeout(SLOW)
        page = await ctx.new_page()

        def on_ws(ws) -> None:
            if "_stcore/stream" not in ws.url:
                return
            ws.on("framesent", lambda p: (d := _decode_back(p if isinstance(p, bytes) else p.encode())) and note(**d))
            ws.on("framereceived",
                  lambda p: (d := _decode_forward(p if isinstance(p, bytes) else p.encode())) and note(**d))

        page.on("websocket", on_ws)
        page.on("response", lambda r: note(http=r.status, url=r.url[-40:]) if "/media/" in r.url else None)
        page.on("console", lambda m: note(console=m.text[:160]) if m.type == "error" else None)
        try:
            user = users.next()
            note(step=f"open {user}")
            await page.goto(f"{url}/?user={user}", wait_until="commit")
            await page.wait_for_function(EXPLORER_READY_JS, arg=[f"{counts[user]:,}", 3], timeout=SLOW, polling=50)
            nav = page.get_by_test_id("stSidebar").get_by_test_id("stRadio")
            for _ in range(rounds):
                user = users.next(counts[user])
                n = f"{counts[user]:,}"
                note(step=f"switch {user}")
                box = page.locator('input[aria-label="User id"]')
                await box.fill(user)
                await box.press("Enter")
                await page.wait_for_function(EXPLORER_READY_JS, arg=[n, 3], timeout=SLOW, polling=50)
                note(step="explain page")
                await page.wait_for_function(ONE_LIST_JS, timeout=SLOW)
                await nav.get_by_text("Explain", exact=True).click()
                await page.wait_for_function(
                    """() => !document.querySelector('[data-testid="stStatusWidget"]') && [...document.querySelectorAll(
                    '[data-testid="stSelectbox"]')].some(e => e.innerText.includes('Recommendation to explain'))""",
                    timeout=SLOW, polling=50)
                note(step="pick")
                await page.get_by_test_id("stSelectbox").filter(has_text="Recommendation to explain").click()
                await page.get_by_role("option").first.click()
                await page.wait_for_function(EXPLANATION_READY_JS, timeout=SLOW, polling=50)
                note(step="back")
                await page.wait_for_function(ONE_LIST_JS, timeout=SLOW)
                await nav.get_by_text("User explorer", exact=True).click()
                await page.wait_for_function(EXPLORER_READY_JS, arg=[n, 3], timeout=SLOW, polling=50)
                note(step="back done")
                await asyncio.sleep(2.0)  # what comes after the page is drawn
        finally:
            stop.set()
            await ctx.close()
            await browser.close()


async def _both(url: str, pid: int, counts: dict[str, int], sessions: int, rounds: int, events: list) -> dict | None:
    stop = threading.Event()
    t0 = time.monotonic()
    load = None
    if sessions:
        load = asyncio.create_task(drive(url, counts, sessions, 3600.0, server_pid=pid, explain_share=0.1,
                                         timeout_s=240.0, stop=stop))
        await asyncio.sleep(sessions * 0.3 + 5)
    await _tab(url, counts, rounds, events, t0, stop)
    return await load if load is not None else None


def early_steps(events: list[dict]) -> tuple[int, int]:
    """How many of the tab's "explorer drawn" steps (after a switch, after going back) came while a run it had asked
    for was still asked or running, as its websocket saw it; and how many such steps there were."""
    early = total = 0
    state = "idle"
    for e in events:
        if e.get("sent") == "rerun":
            state = "asked"
        elif e.get("got") == "run start":
            state = "running"
        elif e.get("got") == "run end" and e.get("status") == "FINISHED_SUCCESSFULLY":
            state = "idle"
        elif e.get("step") in ("explain page", "back done"):
            total += 1
            early += state != "idle"
    return early, total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sessions", type=int, default=0, help="protocol sessions beside the traced tab")
    ap.add_argument("--rounds", type=int, default=3, help="switch + explain + back rounds of the traced tab")
    ap.add_argument("--work", type=Path, default=WORK)
    ap.add_argument("--tag", default="ml100k")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    db, model = prepare(args.work, 300.0)
    counts = user_counts(db)
    events: list = []
    with server(db, model, args.work / "trace-server.log") as (url, pid):
        load = asyncio.run(_both(url, pid, counts, args.sessions, args.rounds, events))
    for e in events:
        print(e)
    bad = [e for e in events if e.get("http", 200) != 200]
    results = Results("trace_browser", args.tag, resume=False)
    results.set("setup", {"sessions": args.sessions, "rounds": args.rounds, "load_average": os.getloadavg()})
    results.set("events", events)
    results.set("media_errors", bad)
    early, steps = early_steps(events)
    results.set("drawn_while_running", {"early": early, "steps": steps})
    print(f"the explorer was taken as drawn while a run was under way {early} times of {steps}")
    results.set("protocol", {k: load[k] for k in ("switch_p95_ms", "errors", "error_samples")} if load else None)
    print(f"{len(bad)} media responses other than 200; wrote {results.path}")


if __name__ == "__main__":
    main()
