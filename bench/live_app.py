"""End-to-end live latency: a file lands in a folder watched by `interestlens follow`, and the user's trajectory in a
running app (`interestlens serve`, user explorer in live mode, driven by Chromium through Playwright) shows it.

Setup: a private copy of the database under data/cache/live-app/, `interestlens follow --preset generic` on an inbox
folder beside it (`--interval`, default 0.2 s), `interestlens serve` on a free port with the model, and a headless
Chromium on `/user?user=U&live=true&user_live_every=every <refresh> s` (the refresh selectbox is bound to the URL by
its shown label). Each landing writes a one-event CSV for user U (a known item, one minute after the previous
event) next to the inbox and renames it in (a file lands whole), then
waits until the trajectory chart in the page has one more step. The time between the rename and that moment is the
latency; the follower's JSON line for the batch splits it into land → committed (the follower's poll and the
ingest) and committed → drawn (the app's next live check, its redraw and the browser's). Landings are spaced by a
random 0.5–2.5 s so that they fall at every phase of the refresh. CPU time of the server and the follower (from
/proc) and the load average are recorded beside the wall times.

Usage::

    .venv/bin/python bench/live_app.py --db DB --model DIR --size ml100k --landings 30

DB: any database (it is copied, never written); DIR: a model trained on it.

Prints a table and writes `bench/results/live_app-<size>.json`. Every process it starts is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Results, percentiles, wait_for_health  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
STEPS_JS = """() => {
  // Steps on the trajectory chart: the largest x (event number) over its traces, plus one. Plotly keeps numeric
  // arrays as base64 specs in gd.data; gd._fullData holds them decoded.
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    const title = (gd._fullLayout && gd._fullLayout.title) || (gd.layout && gd.layout.title);
    const t = title && (typeof title === 'string' ? title : title.text);  // Streamlit's theme wraps it in <b>
    if (typeof t !== 'string' || !t.replace(/<[^>]*>/g, '').startsWith('Interest over categories')) continue;
    let m = -1;
    for (const tr of gd._fullData || []) {
      const x = tr.x;
      if (!x || typeof x.length !== 'number') continue;
      for (let i = 0; i < x.length; i++) { if (x[i] > m) m = x[i]; }
    }
    return m + 1;
  }
  return -1;
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its reaped children (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / ticks


def stop(proc: subprocess.Popen, sig: int) -> None:
    """Stop a process group we started: `sig` first, then SIGKILL after 20 s."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def pick_user(db: Path, max_len: int) -> tuple[str, str, int, float]:
    """A user with a median-length history (under `max_len`), an item they have not seen, history length, last ts."""
    from core.store import connect_read

    with connect_read(db) as con:
        user, n, last = con.execute(
            """SELECT user_id, count(*) AS n, epoch(max(ts)) FROM events GROUP BY 1 HAVING count(*) < ?
               ORDER BY n, user_id LIMIT 1 OFFSET (SELECT count(*) FROM (SELECT user_id FROM events GROUP BY 1
               HAVING count(*) < ?)) / 2""",
            [max_len, max_len],
        ).fetchall()[0]
        item = con.execute(
            """SELECT item_id FROM events GROUP BY 1 HAVING NOT bool_or(user_id = ?) ORDER BY count(*) DESC LIMIT 1""",
            [user],
        ).fetchall()[0][0]
    return str(user), str(item), int(n), float(last)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", type=Path, required=True, help="database to copy (it is not written)")
    ap.add_argument("--model", type=Path, required=True, help="trained model the app uses")
    ap.add_argument("--size", default="ml100k", help="name of the results file: live_app-<size>.json")
    ap.add_argument("--landings", type=int, default=12)
    ap.add_argument("--refresh", type=int, default=2, choices=[1, 2, 5, 10], help="the app's live refresh (s)")
    ap.add_argument("--interval", type=float, default=0.2, help="follow --interval (s)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    from core.checkpoint import load_checkpoint

    work = ROOT / "data" / "cache" / "live-app"
    shutil.rmtree(work, ignore_errors=True)
    inbox, staging = work / "inbox", work / "staging"
    inbox.mkdir(parents=True)
    staging.mkdir()
    db = work / "live.duckdb"
    shutil.copy2(args.db, db)
    max_len = load_checkpoint(args.model, "cpu").config.max_len
    user, item, n0, last_ts = pick_user(db, max_len)
    results = Results("live_app", args.size, resume=False)
    results.set("setup", {"db": str(args.db), "model": str(args.model), "user": user, "item": item,
                          "history_events": n0, "refresh_s": args.refresh, "follow_interval_s": args.interval,
                          "load_average_before": os.getloadavg()})
    cli = Path(sys.executable).with_name("interestlens")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    logs = {name: open(work / f"{name}.log", "w") for name in ("server", "follow")}
    follow = subprocess.Popen(
        [str(cli), "follow", "--db", str(db), "--preset", "generic", str(inbox), "--interval", str(args.interval),
         "--event-col", "event", "--value-col", "value", "--json"],
        stdout=subprocess.PIPE, stderr=logs["follow"], text=True, start_new_session=True, env=env,
    )
    committed: dict[str, float] = {}  # file name -> monotonic time its batch line arrived

    def read_follow() -> None:
        for line in follow.stdout:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if event.get("event") == "batch" and event.get("file"):
                committed[Path(event["file"]).name] = time.monotonic()

    threading.Thread(target=read_follow, daemon=True).start()
    port = free_port()
    server = subprocess.Popen(
        [str(cli), "serve", "--db", str(db), "--model", str(args.model), "--port", str(port)],
        stdout=logs["server"], stderr=subprocess.STDOUT, start_new_session=True, env=env,
    )
    url = f"http://127.0.0.1:{port}"
    latencies, to_commit, to_screen, loads = [], [], [], []
    try:
        if not wait_for_health(url, server, 180):
            raise SystemExit("the server did not start:\n" + (work / "server.log").read_text())
        cpu0 = {"server": cpu_seconds(server.pid), "follow": cpu_seconds(follow.pid)}
        rng = random.Random(args.seed)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            try:
                page = browser.new_page(viewport={"width": 1440, "height": 1800})
                # The refresh selectbox is bound to ?user_live_every= by its shown label ("every 2 s").
                query = urllib.parse.urlencode({"user": user, "live": "true", "user_live_every": f"every {args.refresh} s"})
                page.goto(f"{url}/user?{query}")
                page.wait_for_function(f"({STEPS_JS})() >= {n0}", timeout=300_000)
                page.get_by_text("Live · checked").first.wait_for(timeout=120_000)
                shown = page.locator('input[aria-label="Refresh every"]').input_value()
                if shown != f"every {args.refresh} s":
                    raise SystemExit(f"the page refreshes {shown!r}, not every {args.refresh} s")
                for i in range(args.landings):
                    time.sleep(rng.uniform(0.5, 2.5))
                    name = f"batch{i:03d}.csv"
                    ts = int(last_ts) + 60 * (i + 1)
                    (staging / name).write_text(f"user_id,item_id,timestamp,event,value\n{user},{item},{ts},rating,4\n")
                    t0 = time.monotonic()
                    os.rename(staging / name, inbox / name)  # the file lands whole
                    page.wait_for_function(f"({STEPS_JS})() >= {n0 + i + 1}", timeout=120_000, polling=20)
                    t1 = time.monotonic()
                    latencies.append((t1 - t0) * 1000)
                    wait = time.monotonic() + 10  # the follower's line can reach us after the page drew the batch
                    while name not in committed and time.monotonic() < wait:
                        time.sleep(0.01)
                    if name in committed:
                        to_commit.append((committed[name] - t0) * 1000)
                        to_screen.append((t1 - committed[name]) * 1000)
                    loads.append(os.getloadavg()[0])
                    print(f"landing {i + 1:2d}: {latencies[-1]:7.0f} ms", flush=True)
            finally:
                browser.close()
        cpu = {k: cpu_seconds(proc.pid) - cpu0[k] for k, proc in (("server", server), ("follow", follow))}
    finally:
        stop(follow, signal.SIGINT)
        stop(server, signal.SIGTERM)
        for f in logs.values():
            f.close()
    fig = {"landing_to_trajectory_ms": percentiles(latencies), "landing_to_committed_ms": percentiles(to_commit),
           "committed_to_trajectory_ms": percentiles(to_screen), "samples_ms": [round(x, 1) for x in latencies],
           "cpu_seconds_during_landings": cpu, "load_average_during": {"min": min(loads), "max": max(loads)},
           "load_average_after": os.getloadavg()}
    results.stage("live_latency", fig)
    print(f"{len(latencies)} landings, refresh {args.refresh} s, follow --interval {args.interval} s, user {user} "
          f"({n0} events), 1-min load average {min(loads):.1f}–{max(loads):.1f}")
    for label, key in [("land → trajectory drawn", "landing_to_trajectory_ms"),
                       ("land → batch committed", "landing_to_committed_ms"),
                       ("committed → trajectory drawn", "committed_to_trajectory_ms")]:
        f = fig[key]
        print(f"{label:30} p50 {f['p50']:7.0f} ms  p95 {f['p95']:7.0f} ms  (n {f['n']})")
    print(f"CPU seconds during the landings: server {cpu['server']:.1f}, follower {cpu['follow']:.1f}")
    print(f"wrote {results.path}")


if __name__ == "__main__":
    main()
