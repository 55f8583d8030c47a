"""Capacity: many analysts at once against one `interestlens serve`, measured with protocol-level clients.

Each simulated session is a `bench.ws_client.Tab` (the app's websocket protocol, no browser): it opens the
explorer on a shared link (`?user=ID`), then every `--interval` seconds (jittered) switches to another user the way
the browser does (the "User id" box's new value with `?user=ID`), checks that the page shows that user's event count
and kept the typed id, and with probability `--explain-share` opens the Explain page on the top recommendation
(`?user=ID&item=ITEM`), waits for the explanation and goes back. Every `--download-every`-th interaction it also
fetches the page's download-button files (as a click does). Sessions are bounded (`--max-sessions`) and so is time.

Measured per session count (the `--series`, each `--seconds` long, one server throughout):
- p50/p95 latency of a user switch and of an explanation; errors (exceptions or error alerts on the page, a wrong
  or lost user, a download that is not 200, a run that does not finish within `--timeout`, a dropped stream);
- server CPU milliseconds per switch (psutil on the server's process tree, over the timed window, divided by the
  switches; explanations and page changes are included in that CPU, and also reported per interaction);
- server RSS at the start and end of the window; the machine's load average;
- the smallest session count whose switch p95 passes 1 s.
With `--browsers N --browsers-at S`, N real Chromium sessions (bench/load.py's) run beside the S protocol sessions.

Usage::

    python bench/load_ws.py                                   # ML-100k, 1,5,20,50,100 sessions, 120 s each
    python bench/load_ws.py --series 1,20 --seconds 60 --browsers 0
    python bench/load_ws.py --url http://127.0.0.1:8501 --series 5   # a server you started (loopback only)
    python bench/load_ws.py --processes 2 --series 20,100 --browsers 0 --tag p2   # `serve --processes 2` (proxy)

With `--processes N` the server is N Streamlit processes behind `interestlens serve`'s sticky proxy; every session
goes through the proxy (its cookie pins the session; XSRF cookie, stream and downloads as for one process). CPU and
RSS are then summed over all of them: the tree figures include the proxy and the explanation workers, the
`server_main_*` figures are the Streamlit processes alone, and `proxy_cpu_ms_per_switch` the proxy alone.

The database and model live under data/cache/loadws/ (`interestlens build` + `interestlens train`, made when
absent). Writes `bench/results/load_ws-ml100k.json` ({"runs": [{"sessions", "switch_p50_ms", …}, …]}).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import Results, percentiles  # noqa: E402
from bench.load_data import LOADWS_WORK, user_counts  # noqa: E402
from bench.load_server import cpu_split, server, tree_rss_mb  # noqa: E402
from bench.load_sessions import Users  # noqa: E402
from bench.serve_procs import proxy_cpu, streamlit_cpu_rss  # noqa: E402
from bench.ws_client import ProtocolError, Tab, require_loopback  # noqa: E402

log = logging.getLogger("bench.load_ws")

WORK = LOADWS_WORK
MAX_SESSIONS = 500  # a bound on what one command may open
MAX_SECONDS = 3600.0
EXPLAIN_PAGE = "Explain"  # the Explain page's name in the navigation
BUSY = "explanations right now"  # dashboard/explain_pool.py's ExplainBusy sentence
BACKEND_COOKIE = "interestlens_backend"  # cli/proxy.py's sticky cookie (bench/ does not import the CLI)

__all__ = ["prepare", "drive", "main"]


def prepare(work: Path, train_seconds: float) -> tuple[Path, Path]:
    """ML-100k and a trained default model under `work` (built with the CLI when absent), with drift summaries and
    the explorer's views file (`core.trajectory.sidecar`)."""
    db, model = work / "ml100k.duckdb", work / "models" / "default"
    cli = Path(sys.executable).with_name("interestlens")
    work.mkdir(parents=True, exist_ok=True)
    if not db.exists():
        subprocess.run([str(cli), "build", "--db", str(db), "--dataset", "movielens-100k"], check=True)
    if not (model / "model.safetensors").exists():
        subprocess.run([str(cli), "train", "--db", str(db), "--out", str(model), "--time-budget", str(train_seconds),
                        "--device", "cpu"], check=True)
    if not (model / "drift.parquet").exists():
        from core.checkpoint import load_checkpoint
        from core.trajectory import build_drift

        build_drift(db, load_checkpoint(model))  # writes the views file too
    from core.checkpoint import load_checkpoint
    from core.trajectory import TrajectoryAnalyzer, build_views, views_state

    loaded = load_checkpoint(model)
    if views_state(model, TrajectoryAnalyzer(loaded), 50) is None:  # as after training: not built during the run
        build_views(db, loaded)
    return db, model


@dataclass
class Record:
    """One protocol session's figures."""

    name: str
    switch_ms: list[float] = field(default_factory=list)
    explain_ms: list[float] = field(default_factory=list)
    page_ms: list[float] = field(default_factory=list)
    first_ms: float | None = None
    downloads: int = 0
    errors: list[str] = field(default_factory=list)
    in_window: list[str] = field(default_factory=list)  # kinds of interactions finished inside the timed window
    busy: int = 0  # explanations refused with the busy sentence (the app's answer to overload, not an error)
    backend: str | None = None  # the proxy's sticky cookie (which server process holds the session); None: no proxy


class Window:
    """The timed window: opens once every session has its first page, `seconds` long."""

    def __init__(self, sessions: int, seconds: float, stop: threading.Event | None = None):
        self.waiting, self.seconds = sessions, seconds
        self.started = asyncio.Event()
        self.start = self.end = float("inf")
        self.stop = stop  # set by another thread: the sessions end early (bench/defects_load.py)

    def over(self) -> bool:
        return time.monotonic() >= self.end or (self.stop is not None and self.stop.is_set())

    def arrived(self) -> None:
        self.waiting -= 1
        if self.waiting == 0:
            self.start = time.monotonic()
            self.end = self.start + self.seconds
            self.started.set()

    def inside(self) -> bool:
        return self.start <= time.monotonic() <= self.end


def _check(run, user: str, counts: dict[str, int], box: str | None) -> list[str]:
    """What is wrong with the explorer run for `user`: the page's problems, a lost id, a wrong event count."""
    out = list(run.problems)
    overwritten = run.text_inputs.get("User id", (None, None))[1]
    if box is not None and overwritten is not None and overwritten != user:
        out.append(f"typed id lost: the server set the box to {overwritten!r} after {user!r} was typed")
    want = f"{counts[user]:,}"
    if run.metrics.get("Events") != want:
        out.append(f"user {user}: Events shows {run.metrics.get('Events')!r}, expected {want}")
    return out


async def _downloads(tab: Tab, run, rec: Record) -> None:
    for url in run.downloads:
        if not url:  # a deferred download (fetched through a backend operation): nothing to GET
            continue
        status = await asyncio.to_thread(tab.get, url)
        rec.downloads += 1
        if status != 200:
            rec.errors.append(f"download {url}: HTTP {status}")


async def _session(url: str, rec: Record, users: Users, counts: dict[str, int], window: Window, rng: random.Random,
                   interval: float, explain_share: float, download_every: int, timeout_s: float, open_at: float) -> None:
    tab = Tab(url, timeout_s)
    await asyncio.sleep(max(0.0, open_at - time.monotonic()))
    user = users.next()
    arrived = False
    try:
        try:
            await tab.open()
            rec.backend = tab.cookies.get(BACKEND_COOKIE)
            run = await tab.rerun({"user": user})  # a shared link: the app moves to the explorer itself
            rec.first_ms = run.ms
            rec.errors.extend(f"first load: {p}" for p in _check(run, user, counts, None))
        finally:
            window.arrived()
            arrived = True
        explorer = tab.page_hash
        await window.started.wait()
        tick = window.start + rng.uniform(0, interval)
        done = 0
        while True:
            await asyncio.sleep(max(0.0, tick - time.monotonic()))
            if window.over():
                break
            user = users.next(counts[user])
            box = run.text_inputs.get("User id", (None, None))[0]
            run = await tab.rerun({"user": user}, explorer, widgets={box: user} if box else None)
            problems = _check(run, user, counts, box)
            rec.errors.extend(f"switch to {user}: {p}" for p in problems)
            if not problems:
                rec.switch_ms.append(run.ms)
                if window.inside():
                    rec.in_window.append("switch")
            done += 1
            if download_every and done % download_every == 0:
                await _downloads(tab, run, rec)
            if run.items and rng.random() < explain_share and time.monotonic() < window.end:
                item = run.items[0]
                shown = await tab.rerun({"user": user, "item": item}, tab.page(EXPLAIN_PAGE))
                if shown.problems and all(BUSY in p for p in shown.problems):  # refused in one sentence, with a retry
                    rec.busy += 1
                elif "Score" not in shown.metrics or shown.problems:
                    rec.errors.append(f"explanation of {item} for {user}: {shown.problems or 'no score shown'}")
                else:
                    rec.explain_ms.append(shown.ms)
                    if window.inside():
                        rec.in_window.append("explain")
                tab.query.pop("item", None)
                run = await tab.rerun({"user": user}, explorer)  # back to the explorer
                rec.errors.extend(f"back to {user}: {p}" for p in _check(run, user, counts, box))
                rec.page_ms.append(run.ms)
                if window.inside():
                    rec.in_window.append("page")
            tick += interval * rng.uniform(0.8, 1.2)
    except (ProtocolError, OSError) as exc:
        rec.errors.append(f"session ended: {type(exc).__name__}: {exc}")
        if not arrived:
            window.arrived()
    finally:
        await tab.close()


async def drive(url: str, counts: dict[str, int], sessions: int, seconds: float, *, server_pid: int | None,
                interval: float = 5.0, explain_share: float = 0.2, download_every: int = 5, timeout_s: float = 60.0,
                stagger: float = 0.2, seed: int = 0, browsers: int = 0, stop: threading.Event | None = None) -> dict:
    """Run `sessions` protocol sessions (and `browsers` Chromium sessions beside them) for `seconds` of timed
    window, or until `stop` is set; the figures of bench/results/load_ws-*.json's runs."""
    users = Users(counts, seed)
    rng = random.Random(seed)
    records = [Record(f"p{i:03d}") for i in range(sessions)]
    window = Window(sessions, seconds, stop)
    rss: list[tuple[float, float]] = []
    loads: list[tuple[float, float]] = []
    cpu: dict = {}

    async def sample():
        while time.monotonic() < window.end + 2:
            if server_pid is not None:
                rss.append((time.monotonic(), tree_rss_mb(server_pid)))
            loads.append((time.monotonic(), os.getloadavg()[0]))
            await asyncio.sleep(1.0)

    async def cpu_window():
        await window.started.wait()
        cpu["start"], cpu["rss_start"] = cpu_split(server_pid)["server"], tree_rss_mb(server_pid) if server_pid else None
        cpu["main_start"], cpu["main_rss_start"] = streamlit_cpu_rss(server_pid)
        cpu["proxy_start"] = proxy_cpu(server_pid)
        await asyncio.sleep(max(0.0, window.end - time.monotonic()))
        cpu["end"], cpu["rss_end"] = cpu_split(server_pid)["server"], tree_rss_mb(server_pid) if server_pid else None
        cpu["main_end"], cpu["main_rss_end"] = streamlit_cpu_rss(server_pid)
        cpu["proxy_end"] = proxy_cpu(server_pid)

    rss_before = tree_rss_mb(server_pid) if server_pid else None
    sampler, cpu_task = asyncio.create_task(sample()), asyncio.create_task(cpu_window())
    t0 = time.monotonic()
    jobs = [_session(url, r, users, counts, window, random.Random(rng.random()), interval, explain_share,
                     download_every, timeout_s, t0 + i * stagger) for i, r in enumerate(records)]
    browser_job = None
    if browsers:
        from bench.load_sessions import drive as drive_browsers

        browser_job = asyncio.create_task(drive_browsers(url, counts, browsers, seconds, 1, interval=interval,
                                                         server_pid=None, seed=seed + 7, timeout_s=timeout_s,
                                                         warmup=0.0))
    await asyncio.gather(*jobs)
    browser = await browser_job if browser_job is not None else None
    sampler.cancel()
    if not cpu_task.done():
        cpu_task.cancel()
    switch = percentiles([x for r in records for x in r.switch_ms])
    explain = percentiles([x for r in records for x in r.explain_ms])
    kinds = [k for r in records for k in r.in_window]
    n_switch = kinds.count("switch")
    # a server this process did not start (--url) is not measured: None, not the 0 that cpu_split(None) gives
    cpu_s = cpu["end"] - cpu["start"] if "end" in cpu and server_pid is not None else None
    errors = [f"{r.name}: {e}" for r in records for e in r.errors]
    out = {
        "sessions": sessions,
        "switch_p50_ms": _round(switch["p50"]), "switch_p95_ms": _round(switch["p95"]),
        "explain_p50_ms": _round(explain["p50"]), "explain_p95_ms": _round(explain["p95"]),
        "errors": len(errors), "explanations_busy": sum(r.busy for r in records),
        "server_cpu_ms_per_switch": _round(cpu_s * 1000.0 / n_switch) if cpu_s is not None and n_switch else None,
        "rss_start_mb": _round(cpu.get("rss_start")), "rss_end_mb": _round(cpu.get("rss_end")),
        "switches": switch["n"], "explanations": explain["n"], "switches_in_window": n_switch,
        "interactions_in_window": len(kinds),
        "server_cpu_s_in_window": _round(cpu_s, 2),
        # the server's own process (its one interpreter, whose lock every session's script shares), without the
        # explanation workers it spawned (dashboard/explain_pool.py), which the tree figures above include
        "server_main_cpu_ms_per_switch": _round((cpu["main_end"] - cpu["main_start"]) * 1000.0 / n_switch)
        if cpu.get("main_end") is not None and cpu.get("main_start") is not None and n_switch else None,
        "server_main_rss_start_mb": _round(cpu.get("main_rss_start")),
        "server_main_rss_end_mb": _round(cpu.get("main_rss_end")),
        "proxy_cpu_ms_per_switch": _round((cpu["proxy_end"] - cpu["proxy_start"]) * 1000.0 / n_switch)
        if cpu.get("proxy_end") is not None and cpu.get("proxy_start") is not None and n_switch else None,
        "sessions_per_backend": _spread(records),
        "server_cpu_ms_per_interaction": _round(cpu_s * 1000.0 / len(kinds)) if cpu_s is not None and kinds else None,
        "page_p95_ms": _round(percentiles([x for r in records for x in r.page_ms])["p95"]),
        "first_load_p95_ms": _round(percentiles([r.first_ms for r in records if r.first_ms is not None])["p95"]),
        "downloads_fetched": sum(r.downloads for r in records),
        "rss_before_mb": _round(rss_before),
        "rss_peak_mb": _round(max((v for _, v in rss), default=0.0)),
        "load_average_1min": {"start": loads[0][1] if loads else None, "end": loads[-1][1] if loads else None,
                              "max": max((v for _, v in loads), default=None)},
        "window_s": seconds, "interval_s": interval, "explain_share": explain_share,
        "error_samples": errors[:30],
    }
    if browser is not None:
        out["browsers"] = {"sessions": browsers, "switch_ms": browser["switch_ms"], "explain_ms": browser["explain_ms"],
                           "errors": browser["error_count"], "retyped": browser["retyped"],
                           "error_samples": browser["errors"][:20]}
    return out


def _spread(records: list[Record]) -> dict[str, int] | None:
    """Sessions per server process (by the proxy's cookie); None without a proxy."""
    named = [r.backend for r in records if r.backend is not None]
    return {b: named.count(b) for b in sorted(set(named))} if named else None


def _round(x, digits: int = 1):
    return round(float(x), digits) if x is not None else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--series", default="1,5,20,50,100", help="session counts, run one after another")
    ap.add_argument("--seconds", type=float, default=120.0, help="timed window per session count")
    ap.add_argument("--interval", type=float, default=5.0, help="seconds between a session's user switches")
    ap.add_argument("--explain-share", type=float, default=0.1, help="share of switches followed by an explanation")
    ap.add_argument("--download-every", type=int, default=5, help="fetch download files every N-th switch (0: never)")
    ap.add_argument("--timeout", type=float, default=180.0, help="seconds before a run counts as failed")
    ap.add_argument("--stagger", type=float, default=0.5, help="seconds between two sessions' first pages")
    ap.add_argument("--browsers", type=int, default=3, help="Chromium sessions beside the protocol sessions")
    ap.add_argument("--browsers-at", type=int, default=20, help="the session count that gets the browsers")
    ap.add_argument("--max-sessions", type=int, default=200, help=f"refuse a series above this (at most {MAX_SESSIONS})")
    ap.add_argument("--url", default=None, help="a running server (loopback only); default: start one")
    ap.add_argument("--server-env", action="append", default=[], metavar="KEY=VALUE",
                    help="environment of the started server (e.g. STREAMLIT_RUNNER_POST_SCRIPT_GC=true), repeatable")
    ap.add_argument("--processes", type=int, default=1,
                    help="server processes behind `interestlens serve`'s sticky proxy (1: one process, no proxy)")
    ap.add_argument("--train-seconds", type=float, default=300.0, help="training budget when no model exists")
    ap.add_argument("--work", type=Path, default=WORK)
    ap.add_argument("--tag", default="ml100k", help="results file: bench/results/load_ws-<tag>.json")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    series = [int(x) for x in args.series.split(",") if x.strip()]
    bound = min(args.max_sessions, MAX_SESSIONS)
    if not series or min(series) < 1 or max(series) > bound:
        raise SystemExit(f"--series must hold session counts between 1 and {bound}.")
    if not 0 < args.seconds <= MAX_SECONDS:
        raise SystemExit(f"--seconds must be in (0, {MAX_SECONDS:g}].")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    db, model = prepare(args.work, args.train_seconds)
    counts = user_counts(db)
    results = Results("load_ws", args.tag, resume=False)
    results.set("setup", {"db": str(db), "model": str(model), "users": len(counts), "events": sum(counts.values()),
                          "series": series, "seconds": args.seconds, "interval_s": args.interval,
                          "explain_share": args.explain_share, "browsers": args.browsers,
                          "browsers_at": args.browsers_at, "load_average_before": os.getloadavg(),
                          "cpu_count": os.cpu_count(), "command": " ".join(sys.argv),
                          "processes": args.processes if not args.url else None})
    runs: list[dict] = []

    def go(url: str, pid: int | None) -> None:
        for n in series:
            fig = asyncio.run(drive(url, counts, n, args.seconds, server_pid=pid, interval=args.interval,
                                    explain_share=args.explain_share, download_every=args.download_every,
                                    timeout_s=args.timeout, stagger=args.stagger, seed=args.seed + n,
                                    browsers=args.browsers if n == args.browsers_at else 0))
            runs.append(fig)
            results.set("runs", runs)
            print(f"{n:4d} sessions: switch p50 {fig['switch_p50_ms']} / p95 {fig['switch_p95_ms']} ms, explain p95 "
                  f"{fig['explain_p95_ms']} ms, errors {fig['errors']}, server CPU {fig['server_cpu_ms_per_switch']} "
                  f"ms/switch (main process {fig['server_main_cpu_ms_per_switch']}), RSS {fig['rss_start_mb']} -> "
                  f"{fig['rss_end_mb']} MiB (main {fig['server_main_rss_start_mb']} -> {fig['server_main_rss_end_mb']}), "
                  f"load {fig['load_average_1min']}"
                  + (f"; proxy {fig['proxy_cpu_ms_per_switch']} ms/switch, sessions per process "
                     f"{fig['sessions_per_backend']}" if fig["sessions_per_backend"] else "")
                  + (f"; browsers {fig['browsers']['switch_ms']} errors {fig['browsers']['errors']}"
                     if "browsers" in fig else ""), flush=True)
            for e in fig["error_samples"][:5]:
                print("   error:", e)

    if args.processes < 1:
        raise SystemExit("--processes must be 1 or more.")
    if args.url:
        require_loopback(args.url)
        go(args.url, None)
    else:
        extra = dict(kv.split("=", 1) for kv in args.server_env)
        with server(db, model, args.work / "server.log", extra, processes=args.processes) as (url, pid):
            go(url, pid)
    passes = [r["sessions"] for r in runs if r["switch_p95_ms"] is not None and r["switch_p95_ms"] > 1000.0]
    results.set("p95_passes_1s_at_sessions", min(passes) if passes else None)
    results.set("load_average_after", os.getloadavg())
    print(f"switch p95 passes 1 s at {min(passes) if passes else 'none of the'} sessions; wrote {results.path}")


if __name__ == "__main__":
    main()
