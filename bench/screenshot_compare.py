"""Screenshot the Compare page for two models (served by `interestlens serve`, driven by Chromium).

    OMP_NUM_THREADS=1 .venv/bin/python bench/screenshot_compare.py --db data/ml100k.duckdb \
        --model-a data/models/ours-conv --model-b data/models/sasrec --recbole --out docs/screenshots/compare.png

How docs/external.md's Compare screenshot was made: both model folders are copied into a temporary models folder
(A, a checkpoint of ours, is listed first; B, a checkpoint or a registered external model, second), the app is
served on that folder, the page is opened through the sidebar, RecBole's protocol ticked when asked, and the
picture is saved in 256 colours. It prints the seconds the page took to draw and the 1-minute load average.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.load_page import ONE_LIST_JS  # noqa: E402
from bench.load_server import server  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
WAIT = 240_000  # ms per step: a first comparison on ML-100k on a busy 2-core machine takes ~30 s


def _idle(page) -> None:
    """Wait until the script run is over (Streamlit shows its running widget only while a script runs)."""
    page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=WAIT)


def _step(t0: float, what: str) -> None:
    print(f"{time.perf_counter() - t0:7.1f} s  {what}", file=sys.stderr, flush=True)


def _shoot(url: str, out: Path, recbole: bool, height: int) -> float:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": height})
            t0 = time.perf_counter()
            try:
                page.goto(url)
                _step(t0, "opened")
                expect(page.get_by_role("heading", name="Overview")).to_be_visible(timeout=WAIT)
                page.wait_for_function(ONE_LIST_JS, timeout=WAIT)  # a pick while a second list is drawn can miss
                page.get_by_test_id("stSidebar").get_by_test_id("stRadio").get_by_text("Compare models", exact=True).click()
                expect(page.get_by_text("Accuracy per protocol")).to_be_visible(timeout=WAIT)
                _step(t0, "compared")
                if recbole:
                    page.get_by_text("Also RecBole's protocol").click()
                    page.wait_for_timeout(1000)
                    _idle(page)
                    _step(t0, "compared under RecBole's protocol too")
                page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length >= 2",
                                       timeout=WAIT)
                _idle(page)
                _step(t0, "both trajectories drawn")
            except Exception:
                page.screenshot(path=str(out.with_suffix(".failed.png")))  # what the page showed when it stuck
                raise
            time.sleep(2)  # let the data frames' canvases paint
            seconds = time.perf_counter() - t0
            page.screenshot(path=str(out), full_page=False)
        finally:
            browser.close()
    from PIL import Image  # 256 colours, no dithering: a third of the bytes, the same picture

    with Image.open(out) as im:
        flat = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    flat.save(out, optimize=True)
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", required=True)
    ap.add_argument("--model-a", required=True, help="a checkpoint folder of ours (listed first)")
    ap.add_argument("--model-b", required=True, help="a checkpoint or a registered external model's folder")
    ap.add_argument("--out", required=True)
    ap.add_argument("--recbole", action="store_true", help="tick 'Also RecBole's protocol'")
    ap.add_argument("--height", type=int, default=2900, help="viewport height in pixels")
    args = ap.parse_args()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="interestlens-compare-shot-") as tmp:
        root = Path(tmp)
        a, b = (root / Path(m).name for m in (args.model_a, args.model_b))
        shutil.copytree(args.model_a, a)
        shutil.copytree(args.model_b, b)
        # the served models folder is `root` (bench.load_server.server points $INTERESTLENS_MODELS at the model's parent),
        # so the page lists exactly A and B
        with server(Path(args.db), a, root / "server.log") as (url, _pid):
            seconds = _shoot(url, out, args.recbole, args.height)
            print(f"drawn in {seconds:.1f} s, load1 {os.getloadavg()[0]:.2f}; saved {out}")


if __name__ == "__main__":
    main()
