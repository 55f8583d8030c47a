"""Load: many browser sessions at once against one `interestlens serve` server.

Each session is a Chromium browser context (one Chromium, driven by Playwright) on the user explorer; every
`--interval` seconds it switches to another user by typing the id into the "User id" box, and waits until the page
shows that user's event count with its charts drawn and the script run over. `--explainers` of the sessions also
open the Explain page after each switch, pick the top recommendation, wait for the explanation, and go back.

Measured:
- per-interaction latency (p50/p95): user switch, explanation, page change; first for one session alone (the
  baseline, before the load), then under load;
- errors: uncaught page errors, console errors, failed requests, HTTP responses >= 400, Streamlit exception and
  error elements on the page after an interaction, and interactions that did not finish within `--timeout`;
- server memory: RSS of the server's process tree, sampled every second; after the warm-up (`--warmup` seconds
  into the load) against the end of the run;
- the load average of the machine (other work shares it).

Usage::

    python bench/load.py                                  # ML-100k, 20 sessions for 120 s, 5 of them explaining
    python bench/load.py --sessions 3 --seconds 20 --explainers 1 --size synthetic
    python bench/load.py --model data/cache/models/ml100k-default   # reuse a trained model (copied, fingerprint checked)

Everything it builds lives under data/cache/load/ (never data/ml100k.duckdb, which other benchmarks read): the
database (built from the MovieLens-100k files, or a synthetic log), a trained model (copied from `--model`, else
trained with a time budget) and its drift summaries. Writes `bench/results/load-<size>.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import Results, percentiles, wait_for_health  # noqa: E402

log = logging.getLogger("bench.load")

WORK = ROOT / "data" / "cache" / "load"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
SYNTHETIC = dict(users=2_000, items=1_000, events=100_000, categories=12, seed=0)
PROBES = ("/_stcore/health", "/_stcore/host-config")
IDLE_JS = "!document.querySelector('[data-testid=\"stStatusWidget\"]')"
# The metric labelled exactly "Events" (the explorer's). `innerText.includes('Events')` also matched the Explain
# page's "Events explained", whose value is the user's event count whenever the whole history is explained: the
# explorer was taken as drawn while the Explain page was still on screen, and the session's next id was typed into
# a run in progress (issue 23's download 404s: that run's download files were dropped when the switch run ended).
EVENTS_METRIC_JS = """[...document.querySelectorAll('[data-testid="stMetric"]')].find(e => {
    const l = e.querySelector('[data-testid="stMetricLabel"]'); return !!l && l.innerText.trim() === 'Events'; })"""
# The run is over and drew the whole page: Streamlit shows its status widget only some time into a run, and marks the
# elements left from the previous run data-stale until the run replaces them (as tests/dashboard/test_browser.py's
# SETTLED_JS): a metric already redrawn beside the previous user's charts is not the page drawn.
SETTLED_JS = ("!document.querySelector('[data-testid=\"stStatusWidget\"]') && "
              "!document.querySelector('[data-stale=\"true\"]')")
# The explorer shows user `n` (its Events metric reads n), the run is over and its charts are drawn.
EXPLORER_READY_JS = """([n, charts]) => {
  if (!(@SETTLED@)) return false;
  const m = @EVENTS@;
  const v = m && m.querySelector('[data-testid="stMetricValue"]');
  return !!v && v.innerText.trim() === n && document.querySelectorAll('.js-plotly-plot .main-svg').length >= charts;
}""".replace("@SETTLED@", SETTLED_JS).replace("@EVENTS@", EVENTS_METRIC_JS)
EXPLANATION_READY_JS = """() => {
  if (!(@SETTLED@)) return false;
  const m = [...document.querySelectorAll('[data-testid="stMetric"]')].find(e => e.innerText.includes('Score'));
  return !!m && document.querySelectorAll('.js-plotly-plot .main-svg').length >= 1;
}""".replace("@SETTLED@", SETTLED_JS)

__all__ = ["prepare", "user_counts", "server", "tree_rss_mb", "drive", "main"]


# ---------------------------------------------------------------------------------------------------- set-up


def _fingerprint(db: Path) -> dict:
    from core.sequences import data_fingerprint
    from core.store import connect_read

    with connect_read(db) as con:
        return data_fingerprint(con)


def prepare(size: str, work: Path, model_from: Path | None, train_seconds: float) -> tuple[Path, Path]:
    """The benchmark's database and trained model (with drift summaries) under `work`, built when absent."""
    work.mkdir(parents=True, exist_ok=True)
    db = work / f"{size}.duckdb"
    if not db.exists():
        tmp = db.with_suffix(".building.duckdb")
        tmp.unlink(missing_ok=True)
        log.warning("building %s", db)
        if size == "ml100k":
            from core.datasets import build_movielens_100k

            build_movielens_100k(tmp)
        else:
            from core.datasets.build import build_synthetic

            build_synthetic(tmp, **SYNTHETIC)
        tmp.replace(db)
    model = work / "models" / size
    if not (model / "model.safetensors").exists():
        shutil.rmtree(model, ignore_errors=True)
        if model_from is not None:
            stored = json.loads((model_from / "fingerprint.json").read_text())
            if stored != _fingerprint(db):
                raise SystemExit(f"{model_from} was trained on other data than {db}; pass a matching --model or none.")
            shutil.copytree(model_from, model, ignore=shutil.ignore_patterns("drift.parquet", "train_state*"))
        else:
            log.warning("training %s for at most %.0f s", model, train_seconds)
            cli = Path(sys.executable).with_name("interestlens")
            subprocess.run([str(cli), "train", "--db", str(db), "--out", str(model), "--time-budget", str(train_seconds),
                            "--device", "cpu"], check=True)
    if not (model / "drift.parquet").exists():
        from core.checkpoint import load_checkpoint
        from core.trajectory import build_drift

        log.warning("building drift summaries for %s", model)
        build_drift(db, load_checkpoint(model))
    return db, model


def user_counts(db: Path) -> dict[str, int]:
    """Every user with events and their event count (what the explorer's Events metric shows)."""
    from core.store import connect_read

    with connect_read(db) as con:
        return {str(u): int(n) for u, n in con.execute("SELECT user_id, count(*) FROM events GROUP BY 1 ORDER BY 1").fetchall()}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def server(db: Path, model: Path, log_path: Path, extra_env: dict | None = None,
           processes: int = 1) -> Iterator[tuple[str, int]]:
    """`interestlens serve` (with `--processes` when above 1: the proxy's pid is yielded, the Streamlit processes
    are its children) on a free port in its own process group; yields (base URL, server pid)."""
    port = _free_port()
    cli = Path(sys.executable).with_name("interestlens")
    env = {**os.environ, "INTERESTLENS_MODELS": str(model.parent), **(extra_env or {})}
    many = ["--processes", str(processes)] if processes > 1 else []
    with open(log_path, "w") as out:
        proc = subprocess.Popen([str(cli), "serve", "--db", str(db), "--model", str(model), "--port", str(port), *many],
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        if not wait_for_health(url, proc, 180):
            raise RuntimeError("the server did not start:\n" + log_path.read_text()[-3000:])
        yield url, proc.pid
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def _cpu_seconds(procs) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except Exception:  # gone meanwhile
            pass
    return total


def cpu_split(server_pid: int | None) -> dict:
    """CPU seconds used so far by the server's process tree and by this process's other descendants (Chromium and
    Playwright's driver): where the machine's time goes."""
    import psutil

    me = psutil.Process()
    others = me.children(recursive=True)
    server_tree = []
    if server_pid is not None:
        try:
            root = psutil.Process(server_pid)
            server_tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            pass
    ids = {p.pid for p in server_tree}
    return {"server": _cpu_seconds(server_tree), "browser": _cpu_seconds([p for p in others if p.pid not in ids]),
            "bench": _cpu_seconds([me])}


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants, MiB (0 when it has gone)."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 2**20


# ---------------------------------------------------------------------------------------------------- sessions


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


def _probe(url: str) -> bool:
    """Streamlit's client looks for the server under each prefix of the page's path (`/user/_stcore/health`, then
    `/_stcore/health`): a 404 there is how it finds the base path, not an error."""
    return url.split("?")[0].endswith(PROBES)


def _listen(page, s: Session) -> None:
    def problem(text: str) -> None:
        if not s.closing:
            s.errors.append(text[:300])

    def console(m) -> None:
        if m.type == "error" and not ("status of 404" in m.text and _probe(m.location.get("url", ""))):
            problem(f"console error: {m.text} ({m.location.get('url', '')})")

    page.on("pageerror", lambda e: problem(f"page error: {e}"))
    page.on("console", console)
    # ERR_ABORTED is the browser cancelling its own request (a navigation replaced the page), not a failed load.
    page.on("requestfailed", lambda r: problem(f"request failed: {r.url} ({r.failure})")
            if "ERR_ABORTED" not in str(r.failure) else None)
    page.on("response", lambda r: problem(f"HTTP {r.status}: {r.url}")
            if r.status >= 400 and not (r.status == 404 and _probe(r.url)) else None)


async def _page_problems(page) -> list[str]:
    """Streamlit exception and error elements on the page now."""
    out = []
    for test_id in ("stException", "stAlertContentError"):
        loc = page.get_by_test_id(test_id)
        for i in range(await loc.count()):
            out.append(f"{test_id}: {(await loc.nth(i).inner_text())[:300]}")
    return out


# After Enter: "ok" once the run for the typed id has started (or finished), "lost" if the box lost the typed id.
TAKEN_JS = """([u, n]) => {
  const box = document.querySelector('input[aria-label="User id"]');
  if (box && box.value !== u) return "lost";
  if (document.querySelector('[data-testid="stStatusWidget"]')) return "ok";
  const m = @EVENTS@;
  const v = m && m.querySelector('[data-testid="stMetricValue"]');
  return v && v.innerText.trim() === n ? "ok" : null;
}""".replace("@EVENTS@", EVENTS_METRIC_JS)
STATE_JS = """() => {
  const box = document.querySelector('input[aria-label="User id"]');
  const m = @EVENTS@;
  return {box: box ? box.value : null, events: m ? m.innerText.split('\\n').pop() : null,
          running: !!document.querySelector('[data-testid="stStatusWidget"]'),
          charts: document.querySelectorAll('.js-plotly-plot').length, url: location.pathname + location.search};
}""".replace("@EVENTS@", EVENTS_METRIC_JS)


async def _state(page) -> str:
    """What the page showed when an interaction failed (for the error record)."""
    try:
        return f" (page: {await page.evaluate(STATE_JS)})"
    except Exception:
        return ""


async def _timed(s: Session, what: str, page, action, ready: str, arg, timeout_ms: float) -> float | None:
    """Run `action`, wait for `ready`; the milliseconds, or None (an error recorded) when it failed."""
    t0 = time.perf_counter()
    try:
        await action()
        await page.wait_for_function(ready, arg=arg, timeout=timeout_ms, polling=50)
    except Exception as exc:  # a timeout or a closed page: one error, the session goes on
        s.errors.append(f"{what}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}{await _state(page)}")
        return None
    ms = (time.perf_counter() - t0) * 1000.0
    found = await _page_problems(page)
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
    _listen(page, s)
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


ONE_LIST_JS = "document.querySelectorAll('[data-testid=\"stSidebar\"] [data-testid=\"stRadio\"]').length === 1"


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


# ---------------------------------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", choices=["ml100k", "synthetic"], default="ml100k")
    ap.add_argument("--sessions", type=int, default=20, help="browser sessions at once")
    ap.add_argument("--seconds", type=float, default=120.0, help="how long the sessions switch users")
    ap.add_argument("--explainers", type=int, default=5, help="sessions that also open explanations")
    ap.add_argument("--interval", type=float, default=5.0, help="seconds between a session's user switches")
    ap.add_argument("--warmup", type=float, default=20.0, help="seconds into the load when memory is first read")
    ap.add_argument("--baseline-seconds", type=float, default=60.0, help="one explaining session alone (0: skip)")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds before an interaction counts as failed")
    ap.add_argument("--model", type=Path, default=None, help="a trained model of this database to copy")
    ap.add_argument("--train-seconds", type=float, default=600.0, help="training budget when no model exists")
    ap.add_argument("--work", type=Path, default=WORK)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing: the load benchmark drives Debian's Chromium (apt-get install chromium).")

    db, model = prepare(args.size, args.work, args.model, args.train_seconds)
    counts = user_counts(db)
    tag = args.size if args.sessions == 20 else f"{args.size}-{args.sessions}sessions"
    results = Results("load", tag, resume=False)
    results.set("setup", {"db": str(db), "model": str(model), "users": len(counts), "events": sum(counts.values()),
                          "sessions": args.sessions, "seconds": args.seconds, "explainers": args.explainers,
                          "interval_s": args.interval, "load_average_before": os.getloadavg(),
                          "cpu_count": os.cpu_count()})
    with server(db, model, args.work / "server.log") as (url, pid):
        if args.baseline_seconds > 0:
            base = asyncio.run(drive(url, counts, 1, args.baseline_seconds, 1, interval=args.interval, server_pid=pid,
                                     seed=args.seed + 1000, timeout_s=args.timeout, warmup=0.0))
            results.stage("baseline", base)
            _print("one session alone", base)
        load = asyncio.run(drive(url, counts, args.sessions, args.seconds, args.explainers, interval=args.interval,
                                 warmup=args.warmup, server_pid=pid, seed=args.seed, timeout_s=args.timeout))
        results.stage("load", load)
        _print(f"{args.sessions} sessions", load)
    base_fig = results.get("baseline") or {}
    p95 = load["switch_ms"]["p95"]
    growth = load["server_rss_mb"]["growth"]
    results.set("summary", {
        "sessions": args.sessions, "seconds": args.seconds, "explainers": args.explainers,
        "errors": load["error_count"], "retyped": load["retyped"],
        "switch_p50_ms_alone": (base_fig.get("switch_ms") or {}).get("p50"),
        "switch_p95_ms_alone": (base_fig.get("switch_ms") or {}).get("p95"),
        "switch_p50_ms_load": load["switch_ms"]["p50"], "switch_p95_ms_load": p95,
        "explain_p50_ms_alone": (base_fig.get("explain_ms") or {}).get("p50"),
        "explain_p95_ms_alone": (base_fig.get("explain_ms") or {}).get("p95"),
        "explain_p50_ms_load": load["explain_ms"]["p50"], "explain_p95_ms_load": load["explain_ms"]["p95"],
        "server_rss_mb_after_warmup": load["server_rss_mb"]["after_warmup"],
        "server_rss_mb_end": load["server_rss_mb"]["end"], "server_rss_growth": growth,
        "load_average_after": os.getloadavg(),
        "cpu_seconds_in_load_window": load.get("cpu_seconds_in_window"),
        "target_switch_p95_le_1s": p95 is not None and p95 <= 1000.0,
        "target_rss_growth_le_20pct": growth is not None and growth <= 0.20,
        "target_zero_errors": load["error_count"] == 0,
    })
    print(json.dumps(results.data["summary"], indent=2))
    print(f"wrote {results.path}")


def _print(label: str, f: dict) -> None:
    def p(d: dict) -> str:
        return "-" if not d["n"] else f"p50 {d['p50']:.0f} ms, p95 {d['p95']:.0f} ms (n={d['n']})"

    print(f"{label}: switch {p(f['switch_ms'])}; explanation {p(f['explain_ms'])}; page {p(f['page_ms'])}; "
          f"errors {f['error_count']} (ids retyped {f['retyped']}); server RSS {f['server_rss_mb']['after_warmup']} -> {f['server_rss_mb']['end']} MiB; "
          f"CPU seconds in the timed window {f.get('cpu_seconds_in_window')}; load average {f['load_average']}")
    for e in f["errors"][:20]:
        print("  error:", e)


if __name__ == "__main__":
    main()
