"""Screenshot the HTML report of one user as Chromium draws it offline (every request refused).

    OMP_NUM_THREADS=1 .venv/bin/python bench/report_size.py --db data/ml100k.duckdb --model data/models/ml100k \
        --out /tmp/report-405.html
    .venv/bin/python bench/screenshot_report.py --html /tmp/report-405.html --out docs/screenshots/report.png

How docs/dashboard.md's report picture is made: the report file (built as the app's button builds it, by
`bench/report_size.py --out`) is opened from disk with every non-file request aborted, as in
`tests/dashboard/test_report.py::test_chromium_draws_the_report_offline_from_its_packed_plotly`; once the page's
decoder has drawn every chart (`body[data-charts=drawn]`) the top `--height` pixels are saved in 256 colours. It
prints the seconds the charts took to draw and the 1-minute load average, and fails on a script error or a request.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
WAIT = 240_000  # ms: unpacking plotly.js and drawing four charts takes ~4 s on a quiet machine, far more when busy


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--html", required=True, help="the report file (bench/report_size.py --out)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--width", type=int, default=1200, help="viewport width in pixels")
    ap.add_argument("--height", type=int, default=2700, help="height of the picture in pixels (the report's top)")
    args = ap.parse_args()
    from PIL import Image
    from playwright.sync_api import sync_playwright

    out = Path(args.out)
    requests: list[str] = []
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"], headless=True)
        try:
            page = browser.new_page(viewport={"width": args.width, "height": args.height})
            page.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file:")
                       else (requests.append(r.request.url), r.abort()))
            page.on("pageerror", lambda e: errors.append(str(e)))
            t0 = time.perf_counter()
            page.goto(Path(args.html).resolve().as_uri())
            page.wait_for_selector("body[data-charts=drawn]", timeout=WAIT)
            seconds = time.perf_counter() - t0
            page.screenshot(path=str(out), full_page=False)
        finally:
            browser.close()
    if requests or errors:
        sys.exit(f"the report asked for {requests} or raised {errors}")
    with Image.open(out) as im:  # 256 colours, no dithering: a third of the bytes, the same picture
        flat = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    flat.save(out, optimize=True)
    print(f"drawn in {seconds:.1f} s, load1 {os.getloadavg()[0]:.2f}; saved {out}")


if __name__ == "__main__":
    main()
