"""The served app under load: `interestlens serve` started on a free loopback port in its own process group, and
the CPU seconds and resident memory of its process tree (psutil)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import wait_for_health  # noqa: E402

__all__ = ["server", "cpu_split", "tree_rss_mb"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def server(db: Path, model: Path, log_path: Path, extra_env: dict | None = None,
           processes: int = 1) -> Iterator[tuple[str, int]]:
    """`interestlens serve` (with `--processes` when above 1: the proxy's pid is yielded, the Streamlit processes
    are its children) on a free port in its own process group; yields (base URL, server pid)."""
    port = _free_port()
    cli = Path(sys.executable).with_name("interestlens")
    env = {**os.environ, "INTERESTLENS_MODELS": str(model.parent), **(extra_env or {})}
    many = ["--processes", str(processes)] if processes > 1 else []
    with open(log_path, "w") as out:
        proc = subprocess.Popen([str(cli), "serve", "--db", str(db), "--model", str(model), "--port", str(port), *many],
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        if not wait_for_health(url, proc, 180):
            raise RuntimeError("the server did not start:\n" + log_path.read_text()[-3000:])
        yield url, proc.pid
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def _cpu_seconds(procs) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except Exception:  # gone meanwhile
            pass
    return total


def cpu_split(server_pid: int | None) -> dict:
    """CPU seconds used so far by the server's process tree and by this process's other descendants (Chromium and
    Playwright's driver): where the machine's time goes."""
    import psutil

    me = psutil.Process()
    others = me.children(recursive=True)
    server_tree = []
    if server_pid is not None:
        try:
            root = psutil.Process(server_pid)
            server_tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            pass
    ids = {p.pid for p in server_tree}
    return {"server": _cpu_seconds(server_tree), "browser": _cpu_seconds([p for p in others if p.pid not in ids]),
            "bench": _cpu_seconds([me])}


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants, MiB (0 when it has gone)."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 2**20
