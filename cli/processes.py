"""`interestlens serve --processes N`: N Streamlit processes on loopback ports behind one sticky proxy.

Why several processes: one Streamlit server runs every session's script in threads of one interpreter, so its user
switches queue on one interpreter lock however many cores the machine has (docs/serving.md, "Several processes").
Each process here is a whole `streamlit run dashboard/app.py` (its own caches, its own explanation workers); the
proxy (cli/proxy.py) pins each browser to one of them.

The supervisor (`Supervisor.run`):
- claims the public address first, so a port that is taken is one sentence before anything starts;
- starts the processes in their own process groups on free loopback ports, each told to die with the supervisor
  (Linux `PR_SET_PDEATHSIG`), so not even a SIGKILL of the supervisor leaves one behind;
- checks `/_stcore/health` of each every `HEALTH_S` seconds: a process that fails `MISSES` checks in a row gets no
  new browsers until it answers again (its own browsers stay: a busy process answers late, it has not lost their
  sessions); one that has exited is started again on the same port (its sessions were lost with it; their browsers
  reconnect and are pinned anew);
- on Ctrl-C, SIGTERM or SIGHUP stops every process group (SIGTERM, then SIGKILL after `STOP_S`) before it exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cli.proxy import MAX_HEAD, Backend, StickyProxy
from core.errors import InterestLensError, UserInputError
from dashboard.explain_pool import MAX_WORKERS, WORKERS_ENV

__all__ = ["MAX_PROCESSES", "ServeSpec", "Supervisor", "auto_processes", "parse_processes", "worker_env"]

log = logging.getLogger(__name__)

MAX_PROCESSES = 16  # a bound on one command: each process holds ~0.6-0.8 GiB with the ML-100k model
HEALTH_S = 2.0  # seconds between two health checks of every process
START_S = 300.0  # seconds a process may take to answer its first health check (imports torch; slow on a busy box)
STOP_S = 15.0  # seconds a process group gets to exit after SIGTERM before it is killed
MISSES = 3  # health checks in a row a process may miss (busy) before new browsers go elsewhere
PROCESS_GIB = 1.4  # memory one process with its explanation worker needs on ML-100k (~0.75 + ~0.65 GiB)


def auto_processes() -> int:
    """`--processes auto`: one process per core, at most as many as fit in half the machine's memory."""
    cores = os.cpu_count() or 1
    try:
        total_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        return max(1, min(cores, MAX_PROCESSES))
    return max(1, min(cores, MAX_PROCESSES, int(total_gib / 2 / PROCESS_GIB)))


def parse_processes(raw: str) -> int:
    """The number of server processes from `--processes` ('auto' or a whole number from 1 to MAX_PROCESSES)."""
    text = raw.strip().lower()
    if text == "auto":
        return auto_processes()
    if not text.isdigit() or not 1 <= int(text) <= MAX_PROCESSES:
        raise UserInputError(f"--processes must be 'auto' or a whole number from 1 to {MAX_PROCESSES}, not {raw!r}.")
    return int(text)


def worker_env(processes: int) -> dict[str, str]:
    """Explanation workers per process: one pool per process (a worker is ~650 MiB; a pool shared by processes would
    need its own server), the default total (one per core beyond the first, at most MAX_WORKERS) split between the
    processes, at least one each when the default has any. `$INTERESTLENS_EXPLAIN_WORKERS`, when set, is per process."""
    if WORKERS_ENV in os.environ:
        return {}
    total = max(0, min(MAX_WORKERS, (os.cpu_count() or 1) - 1))
    return {WORKERS_ENV: str(max(1, total // processes) if total else 0)}


@dataclass(frozen=True)
class ServeSpec:
    """What the supervisor runs."""

    processes: int  # Streamlit processes behind the proxy (>= 2; one process is served without a proxy)
    host: str  # the public address the proxy binds (127.0.0.1 unless told otherwise)
    port: int  # the public port
    argv: Callable[[int], list[str]]  # the command line of one Streamlit process on a loopback port
    env: dict[str, str]  # its environment
    cwd: Path  # its working directory (the project root: .streamlit/config.toml)


def _free_loopback_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the supervisor dies, however it dies (Linux only)."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


async def _healthy(port: int, timeout_s: float = 5.0) -> bool:
    """Whether the Streamlit process on `port` answers `GET /_stcore/health` with 200."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout_s)
    except (OSError, TimeoutError):
        return False
    try:
        writer.write(f"GET /_stcore/health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), timeout_s)
        return status.split(b" ")[1:2] == [b"200"]
    except (OSError, TimeoutError, asyncio.IncompleteReadError):
        return False
    finally:
        writer.close()


class Supervisor:
    """Runs the processes and the proxy until a signal (see the module docstring)."""

    def __init__(self, spec: ServeSpec):
        self.spec = spec
        self.backends = [Backend(index=i, port=_free_loopback_port()) for i in range(spec.processes)]
        self.procs: list[subprocess.Popen | None] = [None] * spec.processes
        self.proxy = StickyProxy(self.backends)
        self.stop_signal: int | None = None
        self.misses = [0] * spec.processes  # health checks missed in a row, per process

    def _start(self, i: int) -> None:
        self.procs[i] = subprocess.Popen(self.spec.argv(self.backends[i].port), env=self.spec.env, cwd=self.spec.cwd,
                                         start_new_session=True, preexec_fn=_die_with_parent)

    def run(self) -> int:
        """Serve until Ctrl-C, SIGTERM or SIGHUP; stop every process. Returns the exit code (130 after Ctrl-C)."""
        try:
            return asyncio.run(self._serve())
        finally:
            self.stop_all()

    async def _serve(self) -> int:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, self._stopping, sig, stop)
        try:
            server = await asyncio.start_server(self.proxy.handle, self.spec.host, self.spec.port, limit=MAX_HEAD,
                                                reuse_address=True)
        except OSError as exc:
            raise UserInputError(f"Port {self.spec.port} on {self.spec.host} is already in use or cannot be bound "
                                 f"({exc.strerror}); pick another with --port.") from None
        async with server:
            for i in range(self.spec.processes):
                self._start(i)
            if not await self._started(stop):
                return self._code()
            ports = ", ".join(str(b.port) for b in self.backends)
            sys.stderr.write(f"InterestLens dashboard on http://{self.spec.host}:{self.spec.port}  ({self.spec.processes} "
                             f"processes on 127.0.0.1 ports {ports}; Ctrl-C stops them all)\n")
            sys.stderr.flush()
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), HEALTH_S)
                if not stop.is_set():
                    await self._check()
        return self._code()

    def _stopping(self, sig: int, stop: asyncio.Event) -> None:
        self.stop_signal = sig
        stop.set()

    def _code(self) -> int:
        return 130 if self.stop_signal == signal.SIGINT else 0

    async def _started(self, stop: asyncio.Event) -> bool:
        """Wait until every process answers its health check; False when a signal came first. Raises when one
        exits or stays silent for START_S seconds."""
        deadline = time.monotonic() + START_S
        answered: set[int] = set()
        while not stop.is_set():
            for i, b in enumerate(self.backends):
                code = self.procs[i].poll()
                if code is not None:
                    raise InterestLensError(f"Dashboard process {i + 1} of {self.spec.processes} stopped before it "
                                            f"answered (exit code {code}); its output is above.")
                if i not in answered and await _healthy(b.port):
                    answered.add(i)
            if len(answered) == len(self.backends):  # all at once: the first browsers are spread over every one
                for b in self.backends:
                    b.healthy = b.running = True
                return True
            if time.monotonic() > deadline:
                raise InterestLensError(f"A dashboard process did not answer within {START_S:g} s; its output is above.")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)
        return False

    async def _check(self) -> None:
        """One round of health checks; a process that has exited is started again."""
        for i, b in enumerate(self.backends):
            code = self.procs[i].poll()
            if code is not None:
                log.warning("dashboard process %d (port %d) exited with code %s; starting it again", i + 1, b.port, code)
                b.healthy = b.running = False
                self._start(i)
                continue
            if await _healthy(b.port):
                self.misses[i] = 0
                b.healthy = b.running = True
            else:
                self.misses[i] += 1
                b.healthy = b.healthy and self.misses[i] < MISSES

    def stop_all(self) -> None:
        """SIGTERM to every process group, SIGKILL to any still there after STOP_S seconds; waits for all."""
        running = [p for p in self.procs if p is not None and p.poll() is None]
        for p in running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_S
        for p in running:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        for p in self.procs:  # what a process left in its group (its explanation workers) goes with it
            if p is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(p.pid, signal.SIGKILL)
