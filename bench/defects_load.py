"""Try to reproduce, under protocol load, the two input defects issue 23 names, in a real browser.

- **A typed id lost after Explain:** open the explorer on one user, go to the Explain page, come back through the
  sidebar and type another user's id into the "User id" box at once (while the switch is under way); lost when the
  box or the URL does not hold the typed id 1.5 s after the explorer shows it, or the page shows another user.
- **A download 404 after a reload:** reload the explorer and click "Download recommendations (CSV)" at once, then
  again once the run is over; lost when the browser's download fails or a `/media/` request answers 404.

Both run `--rounds` times in one Chromium tab while `--sessions` protocol sessions (`bench.load_ws.drive`: user
switches every `--interval` s, explanations, downloads) load the same `interestlens serve` on ML-100k. Loopback only.

Usage::

    python bench/defects_load.py                       # 20 protocol sessions, 10 rounds
    python bench/defects_load.py --sessions 50 --rounds 5

Writes `bench/results/defects_load-<tag>.json` (each round's outcome, the protocol sessions' figures, the load average).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import Results  # noqa: E402
from bench.load_data import user_counts  # noqa: E402
from bench.load_page import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from bench.load_server import server  # noqa: E402
from bench.load_ws import WORK, drive, prepare  # noqa: E402

SLOW = 240_000  # ms a page may take under load
__all__ = ["main"]


def _idle(page) -> None:
    page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=SLOW)


def _explorer_shows(page, user: str, events: int) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_role("heading", name="User explorer", exact=True)).to_be_visible(timeout=SLOW)
    expect(page.get_by_test_id("stMetric").filter(has_text="Events")).to_contain_text(f"{events:,}", timeout=SLOW)


ONE_LIST_JS = "document.querySelectorAll('[data-testid=\"stSidebar\"] [data-testid=\"stRadio\"]').length === 1"


def _pick(page, name: str) -> None:
    """Click page `name` in the sidebar's page list (dashboard/components/nav.py), once the list is drawn once: a
    pick draws the list anew (a new widget id), and the old one can be on screen for a moment beside it."""
    page.wait_for_function(ONE_LIST_JS, timeout=SLOW)
    page.get_by_test_id("stSidebar").get_by_test_id("stRadio").get_by_text(name, exact=True).click()


def _where(page) -> str:
    """The tab's URL, page heading and user box, for a failed round."""
    try:
        heading = page.locator("h1").first.inner_text(timeout=5000)
        box = page.get_by_role("textbox", name="User id", exact=True).input_value(timeout=5000)
    except Exception as exc:  # the page is gone or mid-render: say so rather than fail the report
        heading = box = f"unreadable ({type(exc).__name__})"
    return f"URL {page.url}, heading {heading!r}, box {box!r}"


def _typed_after_explain(page, url: str, a: str, b: str, counts: dict[str, int]) -> str | None:
    """One round of the lost-id case; None when the typed id was kept, else what went wrong."""
    page.goto(f"{url}/?user={a}")
    _explorer_shows(page, a, counts[a])
    _idle(page)
    _pick(page, "Explain")
    page.get_by_role("heading", name="Explain a recommendation", exact=True).wait_for(timeout=SLOW)
    _idle(page)
    _pick(page, "User explorer")
    box = page.get_by_role("textbox", name="User id", exact=True)
    box.fill(b)  # at once, while the switch back is under way
    box.press("Enter")
    try:
        _explorer_shows(page, b, counts[b])
    except AssertionError as exc:
        return (f"the explorer did not show {b} after it was typed: {str(exc).splitlines()[0]}; where the tab was: "
                f"{_where(page)}")
    page.wait_for_timeout(1500)  # a late run must not put the old id back
    value = box.input_value()
    if value != b or f"user={b}" not in page.url:
        return f"typed {b}, then: {_where(page)}"
    return None


def _download_after_reload(page, url: str, user: str, counts: dict[str, int], bad: list[str]) -> str | None:
    """One round of the download case: reload, click at once and after the run; None when both downloaded."""
    page.goto(f"{url}/user?user={user}")
    _explorer_shows(page, user, counts[user])
    _idle(page)
    bad.clear()
    page.reload()
    button = page.get_by_role("button", name="Download recommendations (CSV)")
    for when in ("at once", "after the run"):
        if when == "after the run":
            _idle(page)
        try:
            with page.expect_download(timeout=SLOW) as info:
                button.click(timeout=SLOW)
            failure = info.value.failure()
        except Exception as exc:  # a click that finds no button, or no download within the timeout
            return f"download {when} after a reload: {type(exc).__name__}: {str(exc).splitlines()[0]}"
        if failure:
            return f"download {when} after a reload failed: {failure}"
    return f"HTTP 404 on {bad}" if bad else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sessions", type=int, default=20, help="protocol sessions loading the server")
    ap.add_argument("--rounds", type=int, default=10, help="rounds of each case in the browser")
    ap.add_argument("--interval", type=float, default=5.0, help="seconds between a protocol session's switches")
    ap.add_argument("--work", type=Path, default=WORK)
    ap.add_argument("--tag", default="ml100k")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if not 1 <= args.sessions <= 200 or not 1 <= args.rounds <= 100:
        raise SystemExit("--sessions must be in 1..200 and --rounds in 1..100.")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    db, model = prepare(args.work, 300.0)
    counts = user_counts(db)
    rng = random.Random(args.seed)
    users = sorted(counts)
    results = Results("defects_load", args.tag, resume=False)
    load_before = os.getloadavg()
    rounds: list[dict] = []
    stop = threading.Event()
    with server(db, model, args.work / "server.log") as (url, pid):
        from playwright.sync_api import sync_playwright

        load: dict = {}

        def protocol() -> None:  # the load runs until the browser rounds are done (bounded by one hour)
            load.update(asyncio.run(drive(url, counts, args.sessions, 3600.0, server_pid=pid, interval=args.interval,
                                          explain_share=0.1, timeout_s=180.0, seed=args.seed, stop=stop)))

        loader = threading.Thread(target=protocol, daemon=True)
        loader.start()
        time.sleep(min(60.0, 2.0 + 0.5 * args.sessions))  # the sessions' first pages
        bad: list[str] = []
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                page = browser.new_page(viewport={"width": 1440, "height": 1400})
                page.on("response", lambda r: bad.append(r.url) if r.status == 404 and "/media/" in r.url else None)
                for n in range(args.rounds):
                    a, b = rng.sample(users, 2)
                    while counts[b] == counts[a]:
                        b = rng.choice(users)
                    t0 = time.monotonic()
                    lost = _typed_after_explain(page, url, a, b, counts)
                    dl = _download_after_reload(page, url, b, counts, bad)
                    rounds.append({"round": n, "typed_id": lost, "download": dl, "s": round(time.monotonic() - t0, 1),
                                   "load_average_1min": os.getloadavg()[0]})
                    print(f"round {n}: typed id {'kept' if lost is None else 'LOST: ' + lost}; download "
                          f"{'ok' if dl is None else 'FAILED: ' + dl}; load {os.getloadavg()[0]:.1f}", flush=True)
            finally:
                browser.close()
                stop.set()
        loader.join(timeout=300)
    results.set("setup", {"sessions": args.sessions, "rounds": args.rounds, "interval_s": args.interval,
                          "load_average_before": load_before, "command": " ".join(sys.argv)})
    results.set("rounds", rounds)
    results.set("typed_id_lost", sum(r["typed_id"] is not None for r in rounds))
    results.set("download_failed", sum(r["download"] is not None for r in rounds))
    results.set("load_average_after", os.getloadavg())
    results.set("protocol", {k: load.get(k) for k in ("switch_p50_ms", "switch_p95_ms", "errors", "switches",
                                                       "error_samples", "load_average_1min")})
    lost, failed = sum(r["typed_id"] is not None for r in rounds), sum(r["download"] is not None for r in rounds)
    print(f"typed id lost in {lost} of {len(rounds)} rounds, download failed in {failed}; protocol sessions: "
          f"switch p95 {load.get('switch_p95_ms')} ms, errors {load.get('errors')}; wrote {results.path}")


if __name__ == "__main__":
    main()
