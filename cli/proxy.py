"""A small sticky reverse proxy in front of several Streamlit processes (`interestlens serve --processes N`).

Why sticky: a Streamlit session lives in the process that accepted its websocket, and so does everything the session
made: the files of its download buttons (`/media/...`, kept in that process's memory), its uploads
(`/_stcore/upload_file/...`) and its widget state. The proxy pins each browser to one backend with a cookie
(`COOKIE`) set on the first response to a request that carries none (or names a backend that is down), and sends
every later request of that browser, the websocket upgrade (`/_stcore/stream`) included, to the same process.

How: standard-library asyncio streams, no HTTP library. Each request head is read and its backend chosen; a plain
HTTP request is sent upstream with `Connection: close` (one request per client connection, so a keep-alive
connection can never carry a request to the wrong backend), and the response head gets the cookie when one was
assigned; a websocket upgrade is relayed byte for byte both ways until either side closes. The `Host` and `Origin`
headers pass unchanged, so Streamlit's same-origin and XSRF checks see what the browser sent.

New browsers are spread round-robin over the healthy backends (`Backend.healthy`, kept by cli/processes.py), so two
browsers that arrive one after the other land on different processes. A pinned browser stays on its backend as long
as that process runs (`Backend.running`), even when it is too busy to answer a health check in time: its session,
downloads and uploads exist nowhere else, so moving it would only turn a slow answer into a lost session and 404s.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
from dataclasses import dataclass

__all__ = ["COOKIE", "Backend", "StickyProxy", "backend_from_cookie"]

log = logging.getLogger(__name__)

COOKIE = "interestlens_backend"  # the sticky cookie: "b<index>" of the backend that owns the browser's session
MAX_HEAD = 64 * 1024  # the streams' buffer limit: a request head longer than this is refused (400), not buffered
CHUNK = 64 * 1024  # bytes read at once when relaying
_HOP_BY_HOP = {b"connection", b"keep-alive", b"proxy-connection"}
_VALUE = re.compile(r"b(\d{1,3})")


@dataclass
class Backend:
    """One Streamlit process behind the proxy (mutable: its health and load change while serving)."""

    index: int  # position in the proxy's list; the cookie names it
    port: int  # its loopback port
    healthy: bool = False  # answered a recent health check (one that does not gets no new browsers)
    running: bool = False  # its process runs and has answered (False before its first answer and after an exit)
    websockets: int = 0  # sessions open through the proxy right now
    assigned: int = 0  # browsers pinned to it so far (cookies set)


def backend_from_cookie(header: str | None) -> int | None:
    """The backend index named by the sticky cookie in a `Cookie` request header; None when absent or malformed."""
    if not header:
        return None
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE:
            match = _VALUE.fullmatch(value.strip().strip('"'))
            return int(match.group(1)) if match else None
    return None


class StickyProxy:
    """Routes each client connection's request to the backend its browser is pinned to (see the module docstring).

    Guarantees: a request whose cookie names a running backend goes to that backend, whatever its path; any other
    request goes to the next healthy backend in round-robin order (a running one when none is healthy) and its
    response carries the cookie naming it; a request is never sent to a backend whose process is not running
    (a 503 with one sentence when none runs).
    """

    def __init__(self, backends: list[Backend], upstream_host: str = "127.0.0.1"):
        self.backends = backends
        self.upstream_host = upstream_host
        self._turn = itertools.count()

    # ------------------------------------------------------------------------------------------------ routing

    def pick(self, cookie_header: str | None) -> tuple[Backend | None, bool]:
        """(backend, whether the browser is newly assigned) for a request with this `Cookie` header."""
        named = backend_from_cookie(cookie_header)
        if named is not None and named < len(self.backends) and self.backends[named].running:
            return self.backends[named], False
        running = [b for b in self.backends if b.running]
        candidates = [b for b in running if b.healthy] or running
        if not candidates:
            return None, True
        chosen = candidates[next(self._turn) % len(candidates)]
        chosen.assigned += 1
        return chosen, True

    # ------------------------------------------------------------------------------------------------ serving

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One client connection: one plain request, or one websocket for as long as it stays open."""
        upstream_writer = None
        try:
            head = await _read_head(reader)
            if head is None:
                return
            request_line, headers = _parse_head(head)
            if request_line is None:
                await _answer(writer, 400, "The request could not be read.")
                return
            backend, new = self.pick(_header(headers, b"cookie"))
            if backend is None:
                await _answer(writer, 503, "No dashboard process is ready yet; try again in a few seconds.")
                return
            upgrade = (_header(headers, b"upgrade") or "").lower() == "websocket"
            if not upgrade:  # one request per connection: the next one is routed by its own cookie
                headers = [(k, v) for k, v in headers if k.lower() not in _HOP_BY_HOP] + [(b"Connection", b"close")]
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection(self.upstream_host, backend.port)
            except OSError:  # refused: the process is gone or restarting (the supervisor sees to it)
                await _answer(writer, 502, "A dashboard process did not answer; reload the page.")
                return
            upstream_writer.write(_join_head(request_line, headers))
            await upstream_writer.drain()
            if upgrade:
                backend.websockets += 1
            try:
                await self._relay(reader, writer, upstream_reader, upstream_writer, backend if new else None, upgrade)
            finally:
                if upgrade:
                    backend.websockets -= 1
        except asyncio.LimitOverrunError:  # a head longer than the stream's limit (64 KiB)
            await _answer(writer, 400, "The request head is too long.")
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # a client or backend that went away: nothing to answer to
        finally:
            for w in (writer, upstream_writer):
                if w is not None:
                    w.close()

    async def _relay(self, reader, writer, upstream_reader, upstream_writer, assign: Backend | None,
                     websocket: bool) -> None:
        """Client bytes up, backend bytes down (the response head gets the cookie when `assign` is set) until the
        backend closes (plain request) or either side closes (websocket)."""
        up = asyncio.create_task(_pipe(reader, upstream_writer))
        try:
            head = await _read_head(upstream_reader)
            if head is None:
                return
            if assign is not None:
                head = _with_cookie(head, assign.index)
            writer.write(head)
            await writer.drain()
            down = asyncio.create_task(_pipe(upstream_reader, writer))
            done, _ = await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
            if down not in done and not websocket:  # a plain request's response may still be coming
                await down
            down.cancel()
        finally:
            up.cancel()


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    while data := await source.read(CHUNK):
        sink.write(data)
        await sink.drain()


async def _read_head(reader: asyncio.StreamReader) -> bytes | None:
    """Bytes up to and including the blank line that ends an HTTP head; None at a clean end of stream."""
    try:
        return await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None


def _parse_head(head: bytes) -> tuple[bytes | None, list[tuple[bytes, bytes]]]:
    lines = head[:-4].split(b"\r\n")
    if len(lines[0].split(b" ")) != 3:
        return None, []
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not name.strip():
            return None, []
        headers.append((name.strip(), value.strip()))
    return lines[0], headers


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    values = [v.decode("latin-1") for k, v in headers if k.lower() == name]
    return "; ".join(values) if values else None


def _join_head(first: bytes, headers: list[tuple[bytes, bytes]]) -> bytes:
    return b"\r\n".join([first, *(k + b": " + v for k, v in headers)]) + b"\r\n\r\n"


def _with_cookie(head: bytes, index: int) -> bytes:
    """A response head with the sticky cookie added (session cookie, this path and all below, not for scripts)."""
    cookie = f"Set-Cookie: {COOKIE}=b{index}; Path=/; HttpOnly; SameSite=Lax\r\n".encode("ascii")
    first, _, rest = head.partition(b"\r\n")
    return first + b"\r\n" + cookie + rest


async def _answer(writer: asyncio.StreamWriter, status: int, sentence: str) -> None:
    reasons = {400: "Bad Request", 502: "Bad Gateway", 503: "Service Unavailable"}
    body = (sentence + "\n").encode("utf-8")
    writer.write(f"HTTP/1.1 {status} {reasons[status]}\r\nContent-Type: text/plain; charset=utf-8\r\n"
                 f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode("ascii") + body)
    await writer.drain()
