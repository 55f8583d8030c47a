"""Helpers for the dashboard's AppTests: open a page the way a browser link would, list what went wrong."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
TIMEOUT = 240  # seconds per script run: torch, model loading and SHAP on a busy 2-core machine
USER = "u003"  # a fixture user with a few dozen events
OTHER_USER = "u010"


def open_page(page: str | None = None, **query: str) -> AppTest:
    """Run the app on `page` (a file under dashboard/pages, None = the default page) with URL query params."""
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    # A link opens a new session, whose first run reads the URL: the user box (drawn by the app on every page)
    # takes ?user= then. A page's own settings are read on the run that first draws them.
    at.query_params.update(query)
    if page is not None:
        at.run()  # st.navigation registers the pages on the first run
        at.switch_page(f"pages/{page}.py")
        at.query_params.update(query)
    return at.run()


def problems(at: AppTest) -> list[str]:
    """Exceptions and error boxes on the page (an empty list on a healthy page)."""
    return [e.value for e in at.exception] + [e.value for e in at.error]


def figure(at: AppTest, key: str) -> dict:
    """The Plotly figure (as its JSON dict) of the chart with widget key `key`."""
    import json

    found = [c for c in at.get("plotly_chart") if c.proto.id.endswith(f"-{key}")]
    assert len(found) == 1, f"expected one chart {key!r}, found {len(found)}"
    return json.loads(found[0].proto.spec)


def numbers(arr: list | dict) -> list:
    """A Plotly array as a list (Plotly writes numeric arrays as base64 `bdata` with a dtype)."""
    import base64

    import numpy as np

    if isinstance(arr, dict) and "bdata" in arr:
        return np.frombuffer(base64.b64decode(arr["bdata"]), dtype=np.dtype(arr["dtype"])).tolist()
    return list(arr)


def title(fig: dict) -> str:
    t = fig.get("layout", {}).get("title", {})
    return t.get("text", "") if isinstance(t, dict) else str(t)


def small(png: Path) -> None:
    """Rewrite a screenshot with 256 colours and no dithering: about a third of the bytes, and the same picture
    (the app's flat colours fit in 256; docs/screenshots is kept in git)."""
    from PIL import Image

    with Image.open(png) as im:
        flat = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    flat.save(png, optimize=True)


def uncaptioned_charts(at: AppTest) -> list[str]:
    """The keys of the Plotly charts on the page without a one-line caption right after them in the same container
    (the page's plain-language rule: every chart says what it shows), in page order."""
    missing: list[str] = []

    def walk(node) -> None:
        children = getattr(node, "children", None)
        if not children:
            return
        kids = [children[i] for i in sorted(children)]
        for i, kid in enumerate(kids):
            if getattr(kid, "type", None) == "plotly_chart":
                after = kids[i + 1] if i + 1 < len(kids) else None
                if getattr(after, "type", None) != "caption" or not str(after.value).strip():
                    missing.append(kid.key or kid.proto.id)
            walk(kid)

    walk(at._tree)
    return missing


def unexplained_metrics(at: AppTest) -> list[str]:
    """The labels of the metrics on the page without a help text (the tooltip that says what the number is)."""
    return [m.label for m in at.metric if not m.proto.help.strip()]


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, log_path: Path, within_s: float, request_s: float = 2.0) -> None:
    """Wait until `url`/_stcore/health answers 200; AssertionError with the server's log when `proc` exits first or
    `within_s` seconds pass."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=request_s) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError("the server did not start:\n" + log_path.read_text())
        time.sleep(0.5)
