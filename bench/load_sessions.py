"""The load benchmark's browser sessions: each a Chromium context on the explorer, switching users every
`interval` seconds (some also explaining), timed from the moment the page shows the new user's event count with its
charts drawn and the run over; `drive` runs them together against one server and returns latencies, errors, the
server's memory over time and the CPU of the timed window."""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import percentiles  # noqa: E402
from bench.load_page import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    EXPLANATION_READY_JS,
    EXPLORER_READY_JS,
    IDLE_JS,
    ONE_LIST_JS,
    TAKEN_JS,
    listen,
    page_problems,
    page_state,
)
from bench.load_server import cpu_split, tree_rss_mb  # noqa: E402

__all__ = ["Session", "Users", "Clock", "drive"]


@dataclass
class Session:
    """One browser session's record."""

    name: str
    explains: bool
    first_load_ms: float | None = None
    switch_ms: list[float] = field(default_factory=list)
    explain_ms: list[float] = field(default_factory=list)
    page_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    retyped: int = 0  # user ids typed again because the box lost them (not errors; reported)
    closing: bool = False

    def summary(self) -> dict:
        return {"name": self.name, "explains": self.explains, "first_load_ms": self.first_load_ms,
                "switches": len(self.switch_ms), "explanations": len(self.explain_ms), "page_changes": len(self.page_ms),
                "errors": len(self.errors), "retyped": self.retyped}


class Users:
    """Hands out users (shuffled once, shared by all sessions so they rarely ask for the same one), each with an
    event count other than the one the session shows now (so the page's change is visible)."""

    def __init__(self, counts: dict[str, int], seed: int):
        self.counts = counts
        self.order = sorted(counts)
        random.Random(seed).shuffle(self.order)
        self.i = 0

    def next(self, not_count: int | None = None) -> str:
        for _ in range(len(self.order)):
            u = self.order[self.i % len(self.order)]
            self.i += 1
            if self.counts[u] != not_count:
                return u
        raise RuntimeError("every user has the same number of events")


async def _timed(s: Session, what: str, page, action, ready: str, arg, timeout_ms: float) -> float | None:
    """Run `action`, wait for `ready`; the milliseconds, or None (an error recorded) when it failed."""
    t0 = time.perf_counter()
    try:
        await action()
        await page.wait_for_function(ready, arg=arg, timeout=timeout_ms, polling=50)
    except Exception as exc:  # a timeout or a closed page: one error, the session goes on
        s.errors.append(f"{what}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}{await page_state(page)}")
        return None
    ms = (time.perf_counter() - t0) * 1000.0
    found = await page_problems(page)
    if found:
        s.errors.extend(f"{what}: {p}" for p in found)
    return ms


class Clock:
    """The timed window: it starts once every session has its first page (or gave up on it), so a slow machine
    delays the window instead of eating into it."""

    def __init__(self, sessions: int, seconds: float, earliest: float):
        self.waiting, self.seconds, self.earliest = sessions, seconds, earliest
        self.started = asyncio.Event()
        self.start = self.end = float("inf")

    def arrived(self) -> None:
        self.waiting -= 1
        if self.waiting == 0:
            self.start = max(time.monotonic(), self.earliest)
            self.end = self.start + self.seconds
            self.started.set()


async def _session(browser, url: str, s: Session, users: Users, open_at: float, clock: Clock,
                   interval: float, offset: float, timeout_ms: float, charts: int) -> None:
    ctx = await browser.new_context(viewport={"width": 1280, "height": 1000})
    ctx.set_default_timeout(timeout_ms)
    ctx.set_default_navigation_timeout(timeout_ms)
    page = await ctx.new_page()
    listen(page, s)
    user = users.next()
    n = f"{users.counts[user]:,}"
    try:
        await asyncio.sleep(max(0.0, open_at - time.monotonic()))

        async def open_first():
            await page.goto(f"{url}/?user={user}", wait_until="commit")  # a shared link: the root with ?user=

        try:
            s.first_load_ms = await _timed(s, f"first load of {user}", page, open_first, EXPLORER_READY_JS,
                                           [n, charts], timeout_ms)
        finally:
            clock.arrived()
        await clock.started.wait()
        end_at = clock.end
        await asyncio.sleep(max(0.0, clock.start + offset - time.monotonic()))
        tick = clock.start + offset
        while time.monotonic() < end_at:
            user = users.next(users.counts[user])
            n = f"{users.counts[user]:,}"
            box = page.locator('input[aria-label="User id"]')

            async def switch(box=box, user=user, n=n):
                for _ in range(3):
                    await box.fill(user)
                    await box.press("Enter")
                    # The box can be redrawn with the old id just as the new one is typed (a rerun finishing after a
                    # page change): then the typed id is lost, and typing it again is what a person would do.
                    taken = await page.wait_for_function(TAKEN_JS, arg=[user, n], timeout=timeout_ms, polling=50)
                    if await taken.json_value() == "ok":
                        return
                    s.retyped += 1

            ms = await _timed(s, f"switch to {user}", page, switch, EXPLORER_READY_JS, [n, charts], timeout_ms)
            if ms is None:  # recover: reload the explorer on this user
                await page.goto(f"{url}/?user={user}", wait_until="commit")
                await page.wait_for_function(IDLE_JS, timeout=timeout_ms)
            else:
                s.switch_ms.append(ms)
            if s.explains and ms is not None and time.monotonic() < end_at:
                await _explain(page, s, user, n, timeout_ms, charts)
            tick += interval
            await asyncio.sleep(max(0.0, tick - time.monotonic()))
    except Exception as exc:
        s.errors.append(f"session ended: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    finally:
        s.closing = True
        await ctx.close()


async def _explain(page, s: Session, user: str, n: str, timeout_ms: float, charts: int) -> None:
    """Explain page → top recommendation's explanation → back to the explorer (each step timed)."""
    nav = page.get_by_test_id("stSidebar").get_by_test_id("stRadio")  # the app's page list (dashboard/components/nav.py)

    async def to_explain():
        await page.wait_for_function(ONE_LIST_JS, timeout=timeout_ms)  # a pick draws the list anew: one on screen
        await nav.get_by_text("Explain", exact=True).click()

    ready = """() => !document.querySelector('[data-testid="stStatusWidget"]') &&
                     [...document.querySelectorAll('[data-testid="stSelectbox"]')].some(e => e.innerText.includes('Recommendation to explain'))"""
    ms = await _timed(s, f"Explain page for {user}", page, to_explain, ready, None, timeout_ms)
    if ms is None:
        return
    s.page_ms.append(ms)

    async def pick():
        await page.get_by_test_id("stSelectbox").filter(has_text="Recommendation to explain").click()
        await page.get_by_role("option").first.click()

    ms = await _timed(s, f"explanation for {user}", page, pick, EXPLANATION_READY_JS, None, timeout_ms)
    if ms is not None:
        s.explain_ms.append(ms)

    async def back():
        await page.wait_for_function(ONE_LIST_JS, timeout=timeout_ms)  # a pick draws the list anew: one on screen
        await nav.get_by_text("User explorer", exact=True).click()

    ms = await _timed(s, f"back to the explorer for {user}", page, back, EXPLORER_READY_JS, [n, charts], timeout_ms)
    if ms is not None:
        s.page_ms.append(ms)


async def drive(url: str, counts: dict[str, int], sessions: int, seconds: float, explainers: int, *,
                interval: float = 5.0, warmup: float = 20.0, server_pid: int | None = None, seed: int = 0,
                timeout_s: float = 120.0, charts: int = 3, stagger: float = 2.0) -> dict:
    """Run `sessions` browser sessions (the first `explainers` also explaining) for `seconds` after they have all
    loaded their first page; returns latencies, errors, per-session counts and the server's memory over time."""
    from playwright.async_api import async_playwright

    users = Users(counts, seed)
    rng = random.Random(seed)
    records = [Session(f"s{i:02d}", i < explainers) for i in range(sessions)]
    rss: list[tuple[float, float]] = []
    cpu: dict = {}
    loads: list[tuple[float, tuple]] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            # Sessions open their first page one after another (`stagger` s apart, as people arrive); the timed run
            # starts when all have their page (the clock). Samples are kept on the monotonic clock, then shifted.
            t_open = time.monotonic()
            clock = Clock(sessions, seconds, t_open + stagger * sessions)
            offsets = [rng.uniform(0, interval) for _ in records]

            async def sample():
                while time.monotonic() < clock.end + 5:
                    if server_pid is not None:
                        rss.append((time.monotonic(), tree_rss_mb(server_pid)))
                    loads.append((time.monotonic(), os.getloadavg()))
                    await asyncio.sleep(1.0)

            sampler = asyncio.create_task(sample())

            async def cpu_window():
                await clock.started.wait()
                cpu["start"] = cpu_split(server_pid)
                await asyncio.sleep(max(0.0, clock.end - time.monotonic()))
                cpu["end"] = cpu_split(server_pid)

            cpu_task = asyncio.create_task(cpu_window())
            await asyncio.gather(*(_session(browser, url, s, users, t_open + i * stagger, clock, interval,
                                            off, timeout_s * 1000, charts)
                                   for i, (s, off) in enumerate(zip(records, offsets, strict=True))))
            sampler.cancel()
            if not cpu_task.done():  # every session ended early
                cpu_task.cancel()
        finally:
            await browser.close()
    start = clock.start if clock.start != float("inf") else t_open
    rss = [(t - start, v) for t, v in rss]
    loads = [(t - start, v) for t, v in loads]
    return _figures(records, rss, loads, warmup, seconds, cpu)


def _figures(records: list[Session], rss: list, loads: list, warmup: float, seconds: float, cpu: dict) -> dict:
    def at(series: list, t: float):
        after = [v for s, v in series if s >= t]
        return after[0] if after else (series[-1][1] if series else None)

    warm = at(rss, warmup)
    end = at(rss, seconds)
    growth = (end / warm - 1.0) if warm and end else None
    errors = [f"{s.name}: {e}" for s in records for e in s.errors]
    return {
        "sessions": [s.summary() for s in records],
        "switch_ms": percentiles([x for s in records for x in s.switch_ms]),
        "explain_ms": percentiles([x for s in records for x in s.explain_ms]),
        "page_ms": percentiles([x for s in records for x in s.page_ms]),
        "first_load_ms": percentiles([s.first_load_ms for s in records if s.first_load_ms is not None]),
        "errors": errors,
        "error_count": len(errors),
        "retyped": sum(s.retyped for s in records),
        "server_rss_mb": {
            "after_warmup": round(warm, 1) if warm else None, "warmup_s": warmup,
            "end": round(end, 1) if end else None,
            "peak": round(max((v for _, v in rss), default=0.0), 1),
            "growth": round(growth, 4) if growth is not None else None,
            "samples": [(round(t, 1), round(v, 1)) for t, v in rss[::5]],
        },
        "cpu_seconds_in_window": {k: round(cpu["end"][k] - cpu["start"][k], 1) for k in cpu["end"]}
        if "end" in cpu and "start" in cpu else None,
        "load_average": {"start": loads[0][1] if loads else None, "end": loads[-1][1] if loads else None,
                         "max_1min": max((la[0] for _, la in loads), default=None)},
    }
