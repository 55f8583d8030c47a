"""`interestlens serve --processes 2` for real: two Streamlit processes behind the sticky proxy (cli/proxy.py,
cli/processes.py), spoken to through the app's websocket protocol (bench/ws_client.py) on the tiny database.

What must hold: two tabs that arrive one after the other land on different processes; a tab stays on its process
across reruns and its download URLs answer 200 through the proxy (the files live in that process's memory: the same
URL sent with the other tab's cookie is a 404, so the pinning is what serves them); a process that dies is started
again; Ctrl-C and SIGTERM stop every process; a port that is taken is one sentence and starts nothing.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
from dashboard_helpers import OTHER_USER, USER, free_port, wait_healthy

from bench.ws_client import Tab
from cli.proxy import COOKIE
from core.store import connect_read, user_history

START_S = 240  # two cold Streamlit processes on a busy 2-core machine


def _start(db: Path, model: Path, port: int, log: Path) -> subprocess.Popen:
    cli = Path(sys.executable).with_name("interestlens")
    with open(log, "w") as out:
        return subprocess.Popen([str(cli), "serve", "--db", str(db), "--model", str(model), "--port", str(port),
                                 "--processes", "2"], stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ})


def _streamlit_children(pid: int) -> list[psutil.Process]:
    """The supervisor's Streamlit processes that are alive (a killed one is a zombie until the supervisor reaps it)."""
    out = []
    for c in psutil.Process(pid).children():
        try:
            if "streamlit" in c.cmdline():
                out.append(c)
        except (psutil.ZombieProcess, psutil.NoSuchProcess):
            pass
    return out


def _wait_ready(proc: subprocess.Popen, port: int, log: Path) -> list[psutil.Process]:
    """Wait until the proxy answers a health check; the two Streamlit processes."""
    wait_healthy(f"http://127.0.0.1:{port}", proc, log, START_S, request_s=5)
    children = _streamlit_children(proc.pid)
    assert len(children) == 2, log.read_text()
    return children


def _gone(pids: list[int], within_s: float = 30.0) -> list[int]:
    """The pids still alive (not a zombie) after up to `within_s` seconds."""
    def alive(pid: int) -> bool:
        try:
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    deadline = time.monotonic() + within_s
    while True:
        left = [p for p in pids if alive(p)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.5)


def _events(db: Path, user: str) -> str:
    with connect_read(db) as con:
        return f"{len(user_history(con, user)):,}"


@contextmanager
def _two_processes(db: Path, model: Path, log: Path) -> Iterator[tuple[subprocess.Popen, int, list[psutil.Process]]]:
    """`serve --processes 2` on a free port, once ready: (supervisor, port, its two Streamlit processes); killed with
    its process group afterwards if a test left it running."""
    port = free_port()
    proc = _start(db, model, port, log)
    try:
        yield proc, port, _wait_ready(proc, port, log)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_two_tabs_land_on_two_processes_each_stays_on_its_own_and_ctrl_c_stops_them_all(dash_env, tmp_path):
    db, model = dash_env
    log = tmp_path / "serve.log"
    with _two_processes(db, model, log) as (proc, port, children):
        tree = [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]

        async def scenario() -> None:
            a, b = Tab(f"http://127.0.0.1:{port}", timeout_s=300), Tab(f"http://127.0.0.1:{port}", timeout_s=300)
            await a.open()
            await b.open()
            assert {a.cookies[COOKIE], b.cookies[COOKIE]} == {"b0", "b1"}  # round-robin: one tab on each process
            ran = await a.rerun({"user": USER})
            rbn = await b.rerun({"user": OTHER_USER})
            assert ran.metrics["Events"] == _events(db, USER) and not ran.problems
            assert rbn.metrics["Events"] == _events(db, OTHER_USER) and not rbn.problems
            box = ran.text_inputs["User id"][0]
            pinned = a.cookies[COOKIE]
            for user in (OTHER_USER, USER):  # reruns of tab a: same process, its downloads answer 200 each time
                ran = await a.rerun({"user": user}, widgets={box: user})
                assert ran.metrics["Events"] == _events(db, user) and not ran.problems
                assert ran.downloads and [a.get(u) for u in ran.downloads] == [200] * len(ran.downloads)
                assert a.cookies[COOKIE] == pinned
            # the same files asked for with tab b's cookie go to the other process, which does not hold them
            own = dict(a.cookies)
            a.cookies[COOKIE] = b.cookies[COOKIE]
            assert [a.get(u) for u in ran.downloads] == [404] * len(ran.downloads)
            a.cookies = own
            await a.close()
            await b.close()

        asyncio.run(scenario())
        proc.send_signal(signal.SIGINT)  # Ctrl-C: the supervisor stops both process groups, then exits
        assert proc.wait(timeout=60) == 130
        assert _gone([c.pid for c in children] + tree) == []


def test_a_dead_process_is_started_again_and_sigterm_stops_everything(dash_env, tmp_path):
    db, model = dash_env
    log = tmp_path / "serve.log"
    with _two_processes(db, model, log) as (proc, port, children):
        ports = {c.pid: c.cmdline()[c.cmdline().index("--server.port") + 1] for c in children}
        killed = children[0]
        killed.kill()  # a crash: the health check notices the exit and starts the process again on its port
        deadline = time.monotonic() + START_S
        while True:
            now = _streamlit_children(proc.pid)
            again = [c for c in now if c.pid != killed.pid and c.pid not in ports]
            if again:
                break
            assert time.monotonic() < deadline, "the dead process was not started again:\n" + log.read_text()
            time.sleep(0.5)
        assert again[0].cmdline()[again[0].cmdline().index("--server.port") + 1] == ports[killed.pid]
        _wait_ready(proc, port, log)
        tree = [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        assert _gone(tree) == []


def test_a_taken_port_is_one_sentence_and_starts_nothing(dash_env, tmp_path):
    db, model = dash_env
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cli = Path(sys.executable).with_name("interestlens")
        done = subprocess.run([str(cli), "serve", "--db", str(db), "--model", str(model), "--port", str(port),
                               "--processes", "2"], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert f"Port {port} on 127.0.0.1 is already in use; pick another with --port." in done.stderr
    assert "Traceback" not in done.stderr and "streamlit" not in done.stderr.lower()
