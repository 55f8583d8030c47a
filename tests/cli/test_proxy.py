"""The sticky proxy's routing (cli/proxy.py) and the `--processes` rule (cli/processes.py), without a server: which
backend a cookie names, round-robin for new browsers over healthy backends only, the cookie added to a response
head, and a request relayed to a stand-in backend over real sockets with the cookie in its answer."""

from __future__ import annotations

import asyncio

import pytest

from cli import processes
from cli.proxy import COOKIE, Backend, StickyProxy, _with_cookie, backend_from_cookie
from core.errors import UserInputError


@pytest.mark.parametrize(
    ("header", "index"),
    [(None, None), ("", None), (f"{COOKIE}=b1", 1), (f"_streamlit_xsrf=2|ab; {COOKIE}=b0; x=y", 0),
     (f'{COOKIE}="b2"', 2), (f"{COOKIE}=1", None), (f"{COOKIE}=b-1", None), (f"x{COOKIE}=b1", None)],
)
def test_the_cookie_names_a_backend_only_in_its_own_form(header, index):
    assert backend_from_cookie(header) == index


def test_new_browsers_go_round_robin_to_healthy_backends_and_a_pinned_one_stays():
    backends = [Backend(0, 1000, healthy=True, running=True), Backend(1, 1001, healthy=True, running=True),
                Backend(2, 1002, healthy=False, running=False)]
    proxy = StickyProxy(backends)
    picks = [proxy.pick(None) for _ in range(4)]
    assert [(b.index, new) for b, new in picks] == [(0, True), (1, True), (0, True), (1, True)]
    assert proxy.pick(f"{COOKIE}=b1") == (backends[1], False)
    # a cookie naming a backend whose process is not running, or that does not exist: assigned anew
    assert proxy.pick(f"{COOKIE}=b2")[1] is True and proxy.pick(f"{COOKIE}=b7")[1] is True
    # too busy to answer its health checks: its own browsers stay (their sessions live there), new ones go elsewhere
    backends[0].healthy = False
    assert proxy.pick(f"{COOKIE}=b0") == (backends[0], False)
    assert {proxy.pick(None)[0].index for _ in range(3)} == {1}
    backends[1].healthy = False  # none healthy: new browsers still go to a running one
    assert proxy.pick(None)[0].running
    for b in backends:
        b.running = False
    assert proxy.pick(f"{COOKIE}=b0") == (None, True)


def test_the_cookie_goes_into_the_response_head_after_the_status_line():
    head = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"
    out = _with_cookie(head, 1)
    assert out.startswith(b"HTTP/1.1 200 OK\r\nSet-Cookie: interestlens_backend=b1; Path=/; HttpOnly; SameSite=Lax\r\n")
    assert out.endswith(b"content-length: 2\r\n\r\n")


def test_a_request_is_relayed_to_its_backend_and_the_answer_carries_the_cookie():
    async def scenario() -> tuple[bytes, bytes, bytes]:
        seen: list[bytes] = []

        async def backend(reader, writer):  # answers once, then closes (as for Connection: close)
            seen.append(await reader.readuntil(b"\r\n\r\n"))
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello")
            await writer.drain()
            writer.close()

        upstream = await asyncio.start_server(backend, "127.0.0.1", 0)
        port = upstream.sockets[0].getsockname()[1]
        proxy = StickyProxy([Backend(0, port, healthy=True, running=True)])
        front = await asyncio.start_server(proxy.handle, "127.0.0.1", 0)
        reader, writer = await asyncio.open_connection("127.0.0.1", front.sockets[0].getsockname()[1])
        writer.write(b"GET /media/x.csv HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n")
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        # a second request with the cookie: relayed, and no new cookie
        reader, writer = await asyncio.open_connection("127.0.0.1", front.sockets[0].getsockname()[1])
        writer.write(f"GET /media/x.csv HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {COOKIE}=b0\r\n\r\n".encode())
        await writer.drain()
        again = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        front.close()
        upstream.close()
        return answer, again, seen[0]

    answer, again, request = asyncio.run(scenario())
    assert answer.startswith(b"HTTP/1.1 200 OK\r\nSet-Cookie: interestlens_backend=b0;") and answer.endswith(b"hello")
    assert b"Set-Cookie" not in again and again.endswith(b"hello")
    assert b"Connection: close" in request and b"keep-alive" not in request  # one request per upstream connection


def test_the_processes_option_takes_a_number_or_auto(monkeypatch):
    assert processes.parse_processes("3") == 3
    assert 1 <= processes.parse_processes("auto") <= processes.MAX_PROCESSES
    for bad in ("0", "-1", "two", str(processes.MAX_PROCESSES + 1)):
        with pytest.raises(UserInputError, match="--processes must be 'auto' or a whole number"):
            processes.parse_processes(bad)


def test_explanation_workers_are_split_between_the_processes(monkeypatch):
    monkeypatch.delenv(processes.WORKERS_ENV, raising=False)
    monkeypatch.setattr(processes.os, "cpu_count", lambda: 5)  # default total: 4 workers
    assert processes.worker_env(2) == {processes.WORKERS_ENV: "2"}
    assert processes.worker_env(8) == {processes.WORKERS_ENV: "1"}  # at least one each
    monkeypatch.setattr(processes.os, "cpu_count", lambda: 1)  # no workers by default on one core
    assert processes.worker_env(2) == {processes.WORKERS_ENV: "0"}
    monkeypatch.setenv(processes.WORKERS_ENV, "1")  # an explicit setting is per process, unchanged
    assert processes.worker_env(4) == {}
