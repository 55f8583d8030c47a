"""Screenshot one user's interest trajectory in the dashboard (served by `interestlens serve`, driven by Chromium).

    .venv/bin/python bench/screenshot_trajectory.py --db data/long.duckdb --model data/models/long --user u13 \
        --out docs/screenshots/trajectory_after.png

How the README's trajectory screenshots were made: a synthetic log whose longest users have 2,000+ events
(`interestlens build --db data/long.duckdb --dataset synthetic --users 30 --items 400 --events 30000 --seed 1`;
user u13 has 2,209 events), a short training run (`interestlens train --db data/long.duckdb --out data/models/long
--epochs 5 --time-budget 120 --device cpu`), then this script. It prints the seconds the page took to draw.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--query", default="", help="extra URL query, e.g. '&grain=week'")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    port = _free_port()
    cli = Path(sys.executable).with_name("interestlens")
    log = open(Path(args.out).with_suffix(".server.log"), "w")
    proc = subprocess.Popen([str(cli), "serve", "--db", args.db, "--model", args.model, "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env={**os.environ})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the server did not start; see " + log.name) from None
                time.sleep(0.5)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1440, "height": 1900})
            t0 = time.perf_counter()
            page.goto(f"{url}/?user={args.user}{args.query}")
            page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length >= 3", timeout=600_000)
            page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=600_000)
            time.sleep(2)
            print(f"drawn in {time.perf_counter() - t0:.1f} s")
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=args.out, full_page=False)
            from PIL import Image  # 256 colours, no dithering: a third of the bytes, the same picture

            with Image.open(args.out) as im:
                flat = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
            flat.save(args.out, optimize=True)
            browser.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
        log.close()
        Path(log.name).unlink()


if __name__ == "__main__":
    main()
