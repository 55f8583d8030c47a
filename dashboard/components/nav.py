"""The app's page navigation: a page list in the sidebar whose page change cannot be undone by a rerun sent from the
page being left.

Why not Streamlit's own navigation menu: a click on it is a rerun request carrying only the new page. A user id
typed and entered right after the click is sent from the page the tab still shows, and the server keeps only the
newer request's page: with `runner.fastReruns` (on by default) the newer request replaces a run that has not got far
(AppSession.request_rerun stops it and starts the newer one), and otherwise Streamlit 1.67 folds a pending request
into the newer one with the newer page (`ScriptRequests._request_rerun_locked`). On a busy server that silently put
the tab back on the old page (2 of 4 rounds under 20-session load, docs/serving.md "No lost input").
Here the page picked is a widget value, which the browser sends with every later rerun, so whichever request the
server runs carries it; its callback records the destination (a `NavIntent`) in the session, and `settle` switches
to it on every run until the tab has shown it, whatever page a later rerun names.
"""

from __future__ import annotations

import time
import urllib.parse
from dataclasses import dataclass, field, replace

import streamlit as st
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetStates
from streamlit.runtime.runtime_util import MESSAGE_FLUSH_INTERVAL_SECS
from streamlit.runtime.scriptrunner import get_script_run_ctx
from streamlit.runtime.scriptrunner_utils.script_requests import RerunData

from dashboard.components.user_finder import USER_KEY

__all__ = ["INTENT_KEY", "NAV_KEY", "NavIntent", "go", "settle", "sidebar_nav"]

INTENT_KEY = "_nav_intent"  # session key of the pending NavIntent
MAX_SWITCHES = 5  # a page that cannot be reached (it fails before drawing, or is not served) is not retried forever
NAV_KEY = "nav_page"  # widget key of the sidebar's page list (its value: the url_path of the page picked)


@dataclass(frozen=True)
class NavIntent:
    """A page change asked for by a click, kept until the tab has shown that page."""

    page: str  # url_path of the destination page ("" for the default page)
    query: dict[str, str] = field(default_factory=dict)  # query parameters the click adds (besides ?user=)
    shown: bool = False  # a run of the destination page has started since the last switch to it
    switches: int = 0  # switches made for it in a row without reaching its page (bounded by MAX_SWITCHES)


def go(url_path: str, query: dict[str, str] | None = None) -> None:
    """Ask for page `url_path` (a button's callback, or the app itself): recorded now, switched to by `settle`."""
    st.session_state[INTENT_KEY] = NavIntent(url_path, dict(query or {}))


def _pending() -> NavIntent | None:
    """The pending intent, None when there is none; dropped on the browser's back or forward button."""
    intent = st.session_state.get(INTENT_KEY)
    if not isinstance(intent, NavIntent):
        return None
    ctx = get_script_run_ctx()
    if ctx is not None and ctx.is_history_navigation:
        del st.session_state[INTENT_KEY]
        return None
    return intent


def settle(current: st.Page, pages: list[st.Page]) -> None:
    """After `st.navigation` and the "User id" box: switch to the page a click asked for when this run is on another.

    Guarantees: a click's destination wins over every later rerun that names the page it left, whether Streamlit
    coalesced that rerun with the switch, ran it after the switch or let it interrupt the switch; the id in the
    "User id" box at that moment goes along as ?user=. The intent is dropped on the second run of its page (the tab
    has shown the page, so nothing it sends later is stale), on a new click, and on the browser's back or forward
    (a newer explicit choice, which must win in turn).
    """
    intent = _pending()
    if intent is None:
        return
    if current.url_path == intent.page:
        if intent.shown:
            del st.session_state[INTENT_KEY]
        else:
            st.session_state[INTENT_KEY] = replace(intent, shown=True, switches=0)
        return
    if intent.switches >= MAX_SWITCHES:
        del st.session_state[INTENT_KEY]
        return
    target = next((p for p in pages if p.url_path == intent.page), None)
    if target is None:  # a page that is not in this app (cannot come from the list): forget it
        del st.session_state[INTENT_KEY]
        return
    st.session_state[INTENT_KEY] = replace(intent, shown=False, switches=intent.switches + 1)
    _switch(target, intent.query)


def _switch(target: st.Page, query: dict[str, str]) -> None:
    """Run `target` next, with the URL's parameters plus `query`, adding one browser history entry.

    This is `st.switch_page` with another URL write. `st.switch_page` replaces the query string and cannot carry a
    parameter bound to a widget (?user=), so the browser saw the parameters vanish and come back: two or three
    history entries per page change, and the back button stopped on each page more than once. Here the browser is
    first told the query string it already has (which sets the query string it gives the new page without a history
    entry), then the new page runs with the same parameters plus `query` (Streamlit drops those bound to other
    pages' widgets). Uses Streamlit 1.67's runner internals (`ScriptRunContext.script_requests`, `RerunData`,
    `Page._script_hash`), as `st.switch_page` does; tests/dashboard/test_nav.py and test_browser.py fail if an
    upgrade changes them.
    """
    ctx = get_script_run_ctx()
    if ctx is None or ctx.script_requests is None:  # outside a script run (never in the app)
        return
    same = ForwardMsg()
    same.page_info_changed.query_string = ctx.query_string
    ctx.enqueue(same)
    time.sleep(2 * MESSAGE_FLUSH_INTERVAL_SECS)  # sent before the rerun drops unsent messages (as in switch_page)
    params = dict(urllib.parse.parse_qsl(ctx.query_string, keep_blank_values=True))
    params.update({k: v for k, v in query.items() if k != USER_KEY})  # the box carries ?user=
    # The widget values go along (the browser sends them with a page change too): a page change without them drops
    # every widget's state, the "User id" box's among them, which would then clear ?user= in the address bar.
    widgets = WidgetStates()
    widgets.widgets.extend(ctx.session_state.get_widget_states())
    ctx.script_requests.request_rerun(RerunData(
        query_string=urllib.parse.urlencode(params), page_script_hash=target._script_hash, widget_states=widgets,
        cached_message_hashes=ctx.cached_message_hashes, context_info=ctx.context_info,
    ))
    st.empty()  # a yield point: the runner acts on the request here, before this element is sent


def _chosen() -> None:
    """The page list's callback: the page picked becomes the click's destination."""
    go(st.session_state[NAV_KEY])


def sidebar_nav(pages: list[st.Page], current: st.Page) -> None:
    """The page list at the top of the sidebar, showing the page this run draws.

    A radio list rather than buttons: the browser sends a widget's value with every later rerun, so the page
    picked reaches the server even when Streamlit drops the click's own request (with `runner.fastReruns`, on by
    default, a request that arrives before the previous run has started replaces it, trigger and all), and the
    change of value calls `_chosen` in whichever run first carries it.
    """
    titles = {p.url_path: p.title for p in pages}  # plain titles: an icon's name would be part of each label
    # Show the page this run leads to: the one a pending click asked for, else the page drawn (a link, the back
    # button). A widget value set before the widget is drawn is sent to the browser with it, so showing the page
    # being left in the run that switches away would put that page back in the browser's list, and the next
    # request (an id typed at once) would carry it as a new pick.
    intent = _pending()
    st.session_state[NAV_KEY] = intent.page if intent is not None else current.url_path
    st.sidebar.radio("Page", list(titles), key=NAV_KEY, format_func=titles.get, label_visibility="collapsed",
                     on_change=_chosen)
