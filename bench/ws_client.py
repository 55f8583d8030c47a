"""A protocol-level Streamlit client: one browser tab without the browser.

It speaks the app's own websocket protocol with the protobuf messages that ship in the `streamlit` package, the way
Streamlit's frontend does (and its server tests, which send `BackMsg.rerun_script` over `/_stcore/stream`):

1. `GET /_stcore/health` sets the XSRF cookie (`_streamlit_xsrf`) when XSRF protection is on (and, behind
   `interestlens serve --processes N`, the proxy's sticky cookie that pins the tab to one server process);
2. the websocket `/_stcore/stream` is opened with the subprotocols `streamlit, <xsrf token>`, every cookie the tab
   holds and a same-origin `Origin` header; the tab's other requests (downloads) carry the cookies too, as a
   browser's do;
3. each interaction is one `BackMsg.rerun_script` (a `ClientState`: the query string, the page's script hash and
   the widget values the tab holds), after which `ForwardMsg`s are read until `script_finished` says the run is
   over (a run replaced by a newer one, `FINISHED_EARLY_FOR_RERUN`, is waited past: `st.switch_page` does that).

A `Tab` keeps what a browser tab keeps: the pages (from `new_session`), the query string (from
`page_info_changed`) and the widget values it has set, sent with every rerun as the frontend sends them. What a run
drew is summarised in a `Run`: metrics by label, text inputs by label (id and value), download URLs, tables with an
`item_id` column, exceptions and error alerts. Loopback only: the client refuses any other host.
"""

from __future__ import annotations

import asyncio
import io
import re
import time
import urllib.request
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlparse

__all__ = ["LOOPBACK", "Run", "Tab", "ProtocolError", "require_loopback"]

LOOPBACK = ("127.0.0.1", "localhost", "::1")
XSRF_COOKIE = "_streamlit_xsrf"


class ProtocolError(RuntimeError):
    """The server closed the stream, or a run did not finish in time."""


def require_loopback(url: str) -> None:
    """Refuse a server that is not on this machine: a load test is not to be pointed at someone else's."""
    host = urlparse(url).hostname
    if host not in LOOPBACK:
        raise SystemExit(f"{url} is not a loopback address ({', '.join(LOOPBACK)}); the load client only runs locally.")


@dataclass
class Run:
    """What one script run drew (the last successful run, after any runs it replaced)."""

    ms: float = 0.0
    page_hash: str = ""
    metrics: dict[str, str] = field(default_factory=dict)  # label -> shown value
    text_inputs: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # label -> (widget id, value the
    # server set, None when it left the box as the browser has it)
    downloads: list[str] = field(default_factory=list)  # download button URLs (empty for deferred ones)
    items: list[str] = field(default_factory=list)  # item ids of the first table that has an item_id column
    problems: list[str] = field(default_factory=list)  # exceptions and error alerts
    url_writes: list[str] = field(default_factory=list)  # query strings the server wrote into the URL (in a
    # browser each one that differs from the address bar is a new history entry)
    bound: dict[str, str] = field(default_factory=dict)  # query parameter -> widget id, of widgets bound to the URL
    buttons: list[str] = field(default_factory=list)  # widget ids of the buttons drawn (a keyed one ends in -KEY)
    radios: dict[str, list[str]] = field(default_factory=dict)  # widget id -> the options as the browser shows them
    radio_values: dict[str, str] = field(default_factory=dict)  # widget id -> the option the radio shows
    pills: dict[str, list[str]] = field(default_factory=dict)  # widget id -> options as the browser sends them
    page_links: list[tuple[str, str, str]] = field(default_factory=list)  # st.page_link: (label, page hash, query)
    tables: list[str] = field(default_factory=list)  # widget ids of selectable tables (dataframes with an id)
    fragments: dict[str, str] = field(default_factory=dict)  # widget id -> id of the fragment that drew it
    messages: int = 0
    bytes: int = 0


def _item_ids(arrow: bytes) -> list[str]:
    """Item ids of an Arrow table (a recommendation list), in rank order when it has a rank column."""
    import pyarrow as pa

    try:
        table = pa.ipc.open_stream(io.BytesIO(arrow)).read_all()
    except (pa.ArrowInvalid, OSError):
        return []
    if "item_id" not in table.column_names:
        return []
    ids = [str(x) for x in table.column("item_id").to_pylist()]
    if "rank" in table.column_names:
        ranks = table.column("rank").to_pylist()
        ids = [i for _, i in sorted(zip(ranks, ids, strict=True))]
    return ids


class Tab:
    """One simulated browser tab on a Streamlit server (see the module docstring)."""

    def __init__(self, url: str, timeout_s: float = 60.0):
        require_loopback(url)
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self.ws = None
        self.pages: dict[str, str] = {}  # page name (as in the navigation) -> script hash
        self.page_hash = ""
        self.query: dict[str, str] = {}
        self.widgets: dict[str, str | list[str]] = {}  # widget id -> value the tab has set (text boxes, radios: a
        # string; pills: the list of options picked)
        self.session_id: str | None = None
        self.cookies: dict[str, str] = {}  # cookies the server set (name -> value), sent with every request
        self._unread = None  # a message read by `settled` that belongs to the next run
        self._radios: set[str] = set()  # ids of every radio drawn so far (held only while the last finished run has it)
        self._queue: asyncio.Queue = asyncio.Queue()
        self._reader: asyncio.Task | None = None

    # ---------------------------------------------------------------------------------------------- connection

    def _request(self, url: str) -> urllib.request.Request:
        """A GET carrying the tab's cookies."""
        headers = {"Cookie": self.cookie_header()} if self.cookies else {}
        return urllib.request.Request(url, headers=headers)

    def cookie_header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())

    def _keep_cookies(self, response) -> None:
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]

    def _xsrf(self) -> str | None:
        """The XSRF cookie the server sets on its health endpoint (None when XSRF protection is off)."""
        with urllib.request.urlopen(self._request(self.url + "/_stcore/health"), timeout=self.timeout_s) as r:  # noqa: S310 (loopback)
            self._keep_cookies(r)
        return self.cookies.get(XSRF_COOKIE)

    async def open(self) -> None:
        import websockets

        xsrf = await asyncio.to_thread(self._xsrf)
        protocols = ["streamlit", xsrf] if xsrf else ["streamlit"]
        headers = {"Cookie": self.cookie_header()} if self.cookies else {}
        ws_url = "ws" + self.url[len("http"):] + "/_stcore/stream"
        self.ws = await websockets.connect(ws_url, subprotocols=protocols, origin=self.url, additional_headers=headers,
                                           max_size=None, compression=None, open_timeout=self.timeout_s,
                                           ping_interval=None)
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        try:
            async for data in self.ws:
                if isinstance(data, str):
                    continue
                msg = ForwardMsg()
                msg.ParseFromString(data)
                await self._queue.put((msg, len(data)))
        except Exception as exc:  # the connection dropped: the waiting run reports it
            await self._queue.put((exc, 0))
            return
        await self._queue.put((ProtocolError("the server closed the stream"), 0))

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()

    # ---------------------------------------------------------------------------------------------- runs

    def page(self, name: str) -> str:
        """The script hash of the page called `name` in the navigation (KeyError when the app has none)."""
        return self.pages[name]

    async def rerun(self, query: dict[str, str] | None = None, page_hash: str | None = None,
                    widgets: dict[str, str | list[str]] | None = None, forget: tuple[str, ...] = (),
                    click: str | None = None, history: bool = False, fragment: str | None = None) -> Run:
        """Send one rerun (the tab's query string updated with `query`, on `page_hash`, with the tab's widget
        values updated with `widgets`; `forget` drops widget values, as a page change does for its widgets;
        `click`: the id of a button clicked; `history`: the browser's back or forward button; `fragment`: rerun only
        that fragment, as a widget drawn in it does) and read until the run is over (a fragment's run, or the app
        run it asked for). Raises ProtocolError when it does not finish within the timeout."""
        t0 = time.perf_counter()
        await self.send(query, page_hash, widgets, forget, click, history, fragment)
        run = await self._until_finished(fragment_ends=fragment is not None)
        run.ms = (time.perf_counter() - t0) * 1000.0
        return run

    async def send(self, query: dict[str, str] | None = None, page_hash: str | None = None,
                   widgets: dict[str, str | list[str]] | None = None, forget: tuple[str, ...] = (),
                   click: str | None = None, history: bool = False, fragment: str | None = None,
                   query_string: str | None = None) -> None:
        """Send one rerun as `rerun` does, without waiting for it: a second interaction can follow at once, as a
        quick user's does while the first is still on its way (read the outcome with `finished`)."""
        from streamlit.proto.BackMsg_pb2 import BackMsg

        if query is not None:
            self.query.update(query)
        for key in forget:
            self.widgets.pop(key, None)
        self.widgets.update(widgets or {})
        msg = BackMsg()
        cs = msg.rerun_script
        if query_string is not None:  # the browser's own page change (st.page_link): the link's query replaces it
            self.query = dict(parse_qsl(query_string, keep_blank_values=True))
        cs.query_string = urlencode(self.query)
        cs.page_script_hash = self.page_hash if page_hash is None else page_hash
        cs.is_history_navigation = history
        if fragment is not None:
            cs.fragment_id = fragment
        for wid, value in self.widgets.items():
            if isinstance(value, list):
                cs.widget_states.widgets.add(id=wid).string_array_value.data.extend(value)
            else:
                cs.widget_states.widgets.add(id=wid, string_value=value)
        if click is not None:  # a trigger: sent once, with the click's rerun only (as the browser does)
            cs.widget_states.widgets.add(id=click, trigger_value=True)
        await self.ws.send(msg.SerializeToString())

    async def finished(self) -> Run:
        """Read until the next run the server completes (runs replaced by newer ones are read past)."""
        return await self._until_finished()

    async def settled(self, quiet_s: float = 3.0) -> Run:
        """Read until the server has finished every run it was sent: the last run completed after which nothing
        arrived for `quiet_s` seconds (requests sent back-to-back may end in one run or in several)."""
        run = await self._until_finished()
        while True:
            try:
                item = await asyncio.wait_for(self._queue.get(), quiet_s)
            except TimeoutError:
                return run
            msg = item[0]
            if isinstance(msg, BaseException) or msg.WhichOneof("type") == "new_session":
                self._unread = item  # a later run has begun: read it whole, from this message on
                run = await self._until_finished()
            elif msg.WhichOneof("type") == "page_info_changed":  # after the run: still the address bar's
                self.query = dict(parse_qsl(msg.page_info_changed.query_string, keep_blank_values=True))

    def button(self, run: Run, key: str) -> str:
        """The widget id of the button with widget key `key` in `run` (KeyError when it drew none)."""
        for wid in run.buttons:
            if wid.endswith(f"-{key}"):
                return wid
        raise KeyError(key)

    async def switch(self, name: str, typed: tuple[str, str] | None = None, last: Run | None = None) -> Run:
        """A click on page `name` in the navigation, as the browser sends it: the query string keeps only the
        parameters of widgets bound to the URL (`last`: the run drawn before the click), and the widget values go
        along. `typed`: (widget id, value) typed and entered into a box at once, while the switch is under way
        (the browser sends the box's id as it was drawn; a bound box also writes its parameter)."""
        bound = last.bound if last is not None else {}
        boxes = {wid for wid, _ in last.text_inputs.values()} if last is not None else set()
        self.query = {k: v for k, v in self.query.items() if k in bound}
        # a bound box keeps its value across the switch (the value of a box drawn by the page itself would be
        # dropped with the page, but such a box is bound to the URL only when the app draws it outside the pages)
        widgets = {bound[k]: v for k, v in self.query.items() if bound[k] in boxes}
        if typed is not None:
            widgets[typed[0]] = typed[1]
            self.query.update({k: typed[1] for k, wid in bound.items() if wid == typed[0]})
        return await self.rerun(None, self.page(name), widgets)

    async def nav(self, name: str, key: str, last: Run, wait: bool = True) -> Run | None:
        """A click on page `name` in the app's sidebar: in the app's own page list (a radio with widget key `key`,
        or `key` plus a generation suffix `_N`) when `last` (the run drawn before the click) has one, else in Streamlit's navigation menu (`switch`, a
        rerun naming the page). `wait=False` only sends it (a second interaction can follow at once)."""
        radio = next(((wid, opts) for wid, opts in last.radios.items() if re.search(rf"-{re.escape(key)}(_\d+)?$", wid)),
                     None)
        if radio is None:
            if wait:
                return await self.switch(name, last=last)
            self.query = {k: v for k, v in self.query.items() if k in last.bound}
            await self.send(None, self.page(name))
            return None
        wid, options = radio
        label = next(o for o in options if o == name or o.endswith(f" {name}"))
        if wait:
            return await self.rerun(widgets={wid: label})
        await self.send(widgets={wid: label})
        return None

    async def follow(self, run: Run, label: str) -> None:
        """A click on the in-page link whose label contains `label`, sent without waiting (a second interaction can
        follow at once): an `st.page_link` is a page change the browser makes itself (a rerun naming the page, with
        the link's query string); the app's own link (dashboard/components/nav.py) is a one-option `st.pills`, whose
        picked value is sent with a rerun of the fragment that drew it (or of the app)."""
        for text, page_hash, query in run.page_links:
            if label in text:
                await self.send(None, page_hash, query_string=query)
                return
        for wid, options in run.pills.items():
            picked = [o for o in options if label in o]
            if picked:
                await self.send(widgets={wid: picked[:1]}, fragment=run.fragments.get(wid))
                return
        raise KeyError(label)

    async def _until_finished(self, fragment_ends: bool = False) -> Run:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        run = Run()
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                if self._unread is not None:
                    item, self._unread = self._unread, None
                else:
                    item = await asyncio.wait_for(self._queue.get(), max(0.0, deadline - time.monotonic()))
                msg, size = item
            except TimeoutError as exc:
                raise ProtocolError(f"the run did not finish within {self.timeout_s:g} s") from exc
            if isinstance(msg, BaseException):
                raise ProtocolError(f"the stream ended: {type(msg).__name__}: {msg}") from msg
            run.messages += 1
            run.bytes += size
            kind = msg.WhichOneof("type")
            if kind == "new_session":
                ns = msg.new_session
                self.session_id = ns.initialize.session_id or self.session_id
                self.pages = {p.page_name: p.page_script_hash for p in ns.app_pages}
                self.page_hash = run.page_hash = ns.page_script_hash
                fresh = Run(messages=run.messages, bytes=run.bytes, page_hash=run.page_hash,
                            url_writes=run.url_writes)
                run = fresh  # a new run started (after a replaced one, or a switch_page): keep only its output
            elif kind == "navigation":  # the page the run draws (the browser takes it as its current page)
                self.page_hash = run.page_hash = msg.navigation.page_script_hash
            elif kind == "page_info_changed":
                run.url_writes.append(msg.page_info_changed.query_string)
                self.query = dict(parse_qsl(msg.page_info_changed.query_string, keep_blank_values=True))
            elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
                self._element(msg.delta.new_element, run, msg.delta.fragment_id)
            elif kind == "page_not_found":
                run.problems.append(f"page not found: {msg.page_not_found.page_name}")
            elif kind == "script_finished":
                status = msg.script_finished
                if status == ForwardMsg.FINISHED_SUCCESSFULLY:
                    self._hold_radios(run)
                    return run
                if status == ForwardMsg.FINISHED_WITH_COMPILE_ERROR:
                    run.problems.append("the script did not compile")
                    return run
                if fragment_ends and status == ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY:
                    return run
                # FINISHED_EARLY_FOR_RERUN (a newer run follows) or a fragment's run: keep reading

    def _hold_radios(self, run: Run) -> None:
        """As the browser does once a run is over: hold the value of every radio the run drew (sent with each later
        rerun) and drop the radios it no longer draws."""
        self._radios.update(run.radios)
        for wid in self._radios - set(run.radios):
            self.widgets.pop(wid, None)
        self.widgets.update(run.radio_values)

    @staticmethod
    def _element(el, run: Run, fragment: str = "") -> None:
        kind = el.WhichOneof("type")
        widget = getattr(el, kind) if kind else None
        if getattr(widget, "query_param_key", ""):
            run.bound[widget.query_param_key] = widget.id
        if fragment and getattr(widget, "id", ""):
            run.fragments[widget.id] = fragment
        if kind == "metric":
            run.metrics[el.metric.label] = el.metric.body
        elif kind == "text_input":
            # Without `set_value` the browser keeps what is in the box (what the tab typed): the value field is unset.
            box = el.text_input
            run.text_inputs[box.label] = (box.id, box.value if box.set_value else None)
        elif kind == "button":
            run.buttons.append(el.button.id)
        elif kind == "radio":
            run.radios[el.radio.id] = list(el.radio.options)
            r = el.radio
            if r.set_value or r.options:
                run.radio_values[r.id] = r.raw_value if r.set_value else r.options[r.default]
        elif kind == "button_group":  # st.pills / st.segmented_control: options as the browser sends them back
            g = el.button_group
            run.pills[g.id] = [f"{o.content_icon} {o.content}" if o.content_icon else o.content for o in g.options]
        elif kind == "page_link":
            run.page_links.append((el.page_link.label, el.page_link.page_script_hash, el.page_link.query_string))
        elif kind == "download_button":
            run.downloads.append(el.download_button.url)
        elif kind == "dataframe":
            if el.dataframe.id:
                run.tables.append(el.dataframe.id)
            if not run.items and el.dataframe.arrow_data.data:
                run.items = _item_ids(el.dataframe.arrow_data.data)
        elif kind == "exception":
            run.problems.append(f"exception: {el.exception.type}: {el.exception.message[:200]}")
        elif kind == "alert" and el.alert.format == 1:  # Alert.ERROR
            run.problems.append(f"error alert: {el.alert.body[:200]}")

    def get(self, path: str) -> int:
        """HTTP status of a GET on the server (a download button's file, as a click fetches it)."""
        import urllib.error

        target = path if path.startswith("http") else self.url + path
        require_loopback(target)
        try:
            with urllib.request.urlopen(self._request(target), timeout=self.timeout_s) as r:  # noqa: S310 (loopback only)
                r.read()
                self._keep_cookies(r)
                return r.status
        except urllib.error.HTTPError as exc:
            return exc.code
