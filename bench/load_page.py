"""What the load benchmarks' browsers look for on the served app's page: Chromium's flags, the JavaScript predicates
that say a page is drawn (the explorer showing a user, an explanation, the run over), and the page's problems
(console errors, failed requests, HTTP errors, Streamlit's exception and error elements)."""

from __future__ import annotations

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "IDLE_JS", "EVENTS_METRIC_JS", "SETTLED_JS", "EXPLORER_READY_JS",
           "EXPLANATION_READY_JS", "TAKEN_JS", "STATE_JS", "ONE_LIST_JS", "listen", "page_problems", "page_state"]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
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
ONE_LIST_JS = "document.querySelectorAll('[data-testid=\"stSidebar\"] [data-testid=\"stRadio\"]').length === 1"


def _probe(url: str) -> bool:
    """Streamlit's client looks for the server under each prefix of the page's path (`/user/_stcore/health`, then
    `/_stcore/health`): a 404 there is how it finds the base path, not an error."""
    return url.split("?")[0].endswith(PROBES)


def listen(page, s) -> None:
    """Record the page's problems in `s.errors` (a `bench.load_sessions.Session`) until `s.closing`."""
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


async def page_problems(page) -> list[str]:
    """Streamlit exception and error elements on the page now."""
    out = []
    for test_id in ("stException", "stAlertContentError"):
        loc = page.get_by_test_id(test_id)
        for i in range(await loc.count()):
            out.append(f"{test_id}: {(await loc.nth(i).inner_text())[:300]}")
    return out


async def page_state(page) -> str:
    """What the page showed when an interaction failed (for the error record)."""
    try:
        return f" (page: {await page.evaluate(STATE_JS)})"
    except Exception:
        return ""
