"""Which processes of a served dashboard are which, for bench/load_ws.py's CPU and RSS figures: the Streamlit server
process(es) (one, exec'd by `interestlens serve`; or the children of `serve --processes N`'s proxy), and the proxy."""

from __future__ import annotations

__all__ = ["proxy_cpu", "streamlit_cpu_rss", "streamlit_processes"]


def streamlit_processes(pid: int | None) -> list:
    """The Streamlit server processes of the server started as `pid`: that process itself (one process, exec'd into
    Streamlit), or its children running Streamlit (`serve --processes N`: `pid` is the proxy). Explanation workers
    (grandchildren, or children of a single server) are not among them."""
    import psutil

    if pid is None:
        return []
    try:
        root = psutil.Process(pid)
        if "streamlit" in root.cmdline():
            return [root]
        return [c for c in root.children() if "streamlit" in c.cmdline()]
    except psutil.NoSuchProcess:
        return []


def streamlit_cpu_rss(pid: int | None) -> tuple[float | None, float | None]:
    """CPU seconds and RSS MiB of the Streamlit server process(es), summed (not the proxy, not the explanation
    workers); (None, None) when unknown."""
    import psutil

    procs = streamlit_processes(pid)
    if not procs:
        return None, None
    cpu = rss = 0.0
    try:
        for p in procs:
            t = p.cpu_times()
            cpu += t.user + t.system
            rss += p.memory_info().rss / 2**20
    except psutil.NoSuchProcess:
        return None, None
    return cpu, rss


def proxy_cpu(pid: int | None) -> float | None:
    """CPU seconds of the proxy (the supervisor of `serve --processes N`); None with one process (no proxy)."""
    import psutil

    if pid is None:
        return None
    try:
        root = psutil.Process(pid)
        if "streamlit" in root.cmdline():
            return None
        t = root.cpu_times()
        return t.user + t.system
    except psutil.NoSuchProcess:
        return None
