"""The app's page navigation: a page list in the sidebar whose page change cannot be undone by a rerun sent from the
page being left, and which never starts a run of the page being left.

Why not Streamlit's own navigation menu: a click on it is a rerun request carrying only the new page. A user id
typed and entered right after the click is sent from the page the tab still shows, and the server keeps only the
newer request's page: with `runner.fastReruns` (on by default) the newer request replaces a run that has not got far
(`AppSession.request_rerun` stops it and starts the newer one), and otherwise Streamlit 1.67 folds a pending request
into the newer one with the newer page (`ScriptRequests._request_rerun_locked`). On a busy server that silently put
the tab back on the old page (docs/serving.md "No lost input").

Here the page picked is a widget value, which the browser sends with every later rerun, so whichever request the
server runs carries it, and the list's callback (run before the script) records the pick. `route`, called before
`st.navigation`, then makes every request that the tab sent before it had drawn the pick's run run the picked page
instead of the page it names. How a request's age is told: each pick starts a new *generation* of the list (a new
widget key, so a new widget id); only a tab that has drawn a run made after the pick holds that generation's
widget and sends its value. A request without it was sent before the tab knew of the pick (stale: redirected); a
request with it names the page the tab chose after seeing the pick (honoured: a link, a later page).

In-page links (the explorer's "Explain why item … is recommended", Search's "Open user … in the explorer") go the
same way (`page_link`): `st.page_link` was a client-side page change, a request naming the new page that a rerun
sent at once from the old page (an id typed) undid just as it undid a click in Streamlit's menu. Here a link is a
one-option `st.pills` (a value the browser sends with every later rerun, like the list) whose callback starts a new
generation with the link's page and parameters as the target.

The address bar after a pick carries only what the new page owns: parameters bound to widgets of the picked page or
of the app itself (the "User id" box), plus the link's own parameters; the page left's (`?k=`, `?view=`, Explain's
`?item=`) are dropped, as Streamlit's menu dropped them (`_tidy_query`). The typed id wins over a link's `user`.

Why before `st.navigation` and not `st.switch_page` after it (branch p23, reverted): a switch first starts a run of
the page being left, which Streamlit ends with `remove_orphaned_files()`. That run had already dropped the
session's file references, so the files of the download buttons the tab still showed were removed: HTTP 404 on
`/media/<hash>.csv`. Redirecting the request before `st.navigation` resolves the page means the only run is a run
of the picked page: no run of the old page's body starts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import parse_qsl

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx
from streamlit.runtime.state.common import user_key_from_element_id

__all__ = ["LINK_KEY", "NAV_KEY", "STATE_KEY", "NavState", "link_key", "list_key", "page_link", "route", "sidebar_nav"]

NAV_KEY = "nav_page"  # prefix of the page list's widget key: f"{NAV_KEY}_{generation}" (its value: a url_path)
LINK_KEY = "nav_link"  # prefix of an in-page link's widget key: f"{LINK_KEY}_{name}_{generation}"
STATE_KEY = "_nav"  # session key of the NavState
_TIDY_KEY = "_nav_tidy"  # session key: this run was routed to a pick, so the address bar is to be brought in line


@dataclass(frozen=True)
class NavState:
    """The page list's generation and the pick a stale request must not undo."""

    generation: int = 0  # the list's widget key is list_key(generation); each pick starts the next one
    target: str | None = None  # url_path of the page picked ("" for the default page), kept until a request
    # from a tab that holds this generation's list arrives; None when nothing is pending
    params: tuple[tuple[str, str], ...] = ()  # query parameters the link that picked `target` adds (none for the list)


def list_key(generation: int) -> str:
    """The page list's widget key in `generation`."""
    return f"{NAV_KEY}_{generation}"


def link_key(name: str, generation: int) -> str:
    """The widget key of the in-page link `name` in `generation`."""
    return f"{LINK_KEY}_{name}_{generation}"


def _state() -> NavState:
    state = st.session_state.get(STATE_KEY)
    return state if isinstance(state, NavState) else NavState()


def _picked(key: str) -> None:
    """The page list's callback (Streamlit runs it before the script): a pick in the current list starts a new
    generation. The list of an older generation can only come with a stale request (the browser drops a widget's
    value once a run without it is over), whose value is the pick already made or the page the tab left: ignored."""
    state = _state()
    if key == list_key(state.generation):
        st.session_state[STATE_KEY] = NavState(generation=state.generation + 1, target=st.session_state[key])


def _followed(key: str, name: str, target: str, params: tuple[tuple[str, str], ...]) -> None:
    """An in-page link's callback: as `_picked`, with the link's page and parameters. Only the current generation's
    link counts (an older one's value comes only with a stale request); un-picking it does nothing."""
    state = _state()
    if key == link_key(name, state.generation) and st.session_state.get(key):
        st.session_state[STATE_KEY] = NavState(generation=state.generation + 1, target=target, params=params)


def _sent_by_tab(key: str) -> bool:
    """Whether this run's request carried a value for the widget with key `key`.

    Called before any widget of this run is drawn, when the session's widget states are exactly those the browser
    sent with the request (Streamlit 1.67 `SessionState.on_script_will_rerun` clears them, then sets what came). A
    rerun the app asks for itself (`st.rerun`, `st.switch_page`) carries no browser states: then these are the
    previous run's, whose list is the current generation's once a run of the pick has drawn it.
    """
    ctx = get_script_run_ctx()
    if ctx is None:
        return False
    return any(user_key_from_element_id(w.id) == key for w in ctx.session_state.get_widget_states())


def route(pages: list[st.Page]) -> None:
    """Before `st.navigation`: run the page picked in the list when the request was sent before the tab drew it.

    Guarantees: after a pick, every request the tab sent before it had drawn a run of the new generation runs the
    picked page, whatever page it names (a rerun from the old page, with an id typed there, that the server ran
    before, after or instead of the pick's own request); the first request carrying the new generation (the tab has
    drawn the pick) and the browser's back or forward (a newer explicit choice) end that, and from then on the page
    a request names is run, as without this module. The picked page is run from the start: no run of the page the
    request names begins (see the module docstring). Uses Streamlit 1.67's `PagesManager.set_script_intent`, which
    `st.navigation` resolves the page from; tests/dashboard/test_nav.py fails if an upgrade changes that.
    """
    state = _state()
    if state.target is None:
        return
    ctx = get_script_run_ctx()
    if ctx is None:
        return
    target = next((p for p in pages if p.url_path == state.target), None)
    if target is None or ctx.is_history_navigation or _sent_by_tab(list_key(state.generation)):
        st.session_state[STATE_KEY] = replace(state, target=None, params=())
        return
    ctx.pages_manager.set_script_intent(target._script_hash, target.url_path)
    _tidy_query(ctx, target, state.params)


def _tidy_query(ctx, target: st.Page, params: tuple[tuple[str, str], ...]) -> None:
    """Keep in `st.query_params` only what the picked page owns: parameters bound to a widget of that page or of the
    app's own script (the "User id" box), plus the link's parameters that no widget is bound to (a typed id, bound
    to the box, wins over a link's `user`). No message yet: `sidebar_nav` sends the address bar once, after
    `st.navigation` has sent the page (Streamlit 1.67 `QueryParams` bindings, as its own page change filters)."""
    valid = {ctx.pages_manager.main_script_hash, target._script_hash}
    with ctx.session_state.query_params() as qp:
        for key in list(qp):
            binding = qp.get_binding_for_param(key)
            if binding is None or binding.script_hash not in valid:
                qp.discard_param_no_forward_msg(key)
        for key, value in params:
            if not qp.is_bound(key):
                qp.set_with_no_forward_msg(key, value)
        qp.set_initial_query_params_from_current()
    st.session_state[_TIDY_KEY] = True


def _send_query(ctx) -> None:
    """Bring the address bar in line with `st.query_params` after a routed run, when they differ (each write is a
    new history entry in the browser, so only a real change is sent)."""
    with ctx.session_state.query_params() as qp:
        if sorted(parse_qsl(ctx.query_string, keep_blank_values=True)) != sorted((k, qp[k]) for k in qp):
            qp._send_query_param_msg()


def sidebar_nav(pages: list[st.Page], current: st.Page) -> None:
    """The page list at the top of the sidebar, showing the page this run draws.

    A radio list rather than buttons: the browser sends a widget's value with every later rerun, so the page picked
    reaches the server even when Streamlit drops the click's own request (with `runner.fastReruns` a request that
    arrives before the previous run has started replaces it, trigger and all), and the change of value calls
    `_picked` in whichever run first carries it.
    """
    ctx = get_script_run_ctx()
    if st.session_state.pop(_TIDY_KEY, False) and ctx is not None:
        _send_query(ctx)
    key = list_key(_state().generation)
    titles = {p.url_path: p.title for p in pages}  # plain titles: an icon's name would be part of each label
    # The page drawn, whatever moved the tab there (the list, a link, the back button): a value set before the
    # widget is drawn is sent to the browser with it.
    st.session_state[key] = current.url_path
    st.sidebar.radio("Page", list(titles), key=key, format_func=titles.get, label_visibility="collapsed",
                     on_change=_picked, args=(key,))


def page_link(name: str, target: str, label: str, params: dict[str, str] | None = None, icon: str = "") -> None:
    """A link to the page at url_path `target` that an id typed at once cannot undo (see the module docstring).

    `name` tells this link apart from others on the page (its widget key), `params` are the query parameters the
    target page opens with. Drawn inside an `st.fragment` (the explorer's recommendations), a click reruns only the
    fragment: the link then asks for a run of the whole app, which `route` sends to the target page.
    """
    state = _state()
    key = link_key(name, state.generation)
    option = f"{icon} {label}".strip()
    st.pills(label, [option], key=key, label_visibility="collapsed", on_change=_followed,
             args=(key, name, target, tuple((params or {}).items())))
    if _state().target == target and st.session_state.get(key):  # picked in a fragment's run
        st.rerun(scope="app")
