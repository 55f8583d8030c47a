"""Shared benchmark helpers: machine description, timing statistics, peak memory and resumable results.

Every benchmark prints its figures and writes `bench/results/<name>-<size>.json` with the machine, the versions
and each figure. Stages save as they finish (`Results.stage`), so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"

__all__ = ["RESULTS", "machine_info", "versions", "percentiles", "time_calls", "peak_rss_mb", "Results"]


def machine_info() -> dict:
    """CPU model, cores, memory and GPU (if any) of this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        import psutil

        mem_gb = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        pass
    gpu = None
    try:
        import torch

        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": mem_gb,
        "gpu": gpu,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
    }


def versions() -> dict:
    out = {}
    for name in ("torch", "duckdb", "pandas", "numpy", "streamlit", "shap", "fairlearn", "pyarrow"):
        try:
            mod = __import__(name)
            out[name] = getattr(mod, "__version__", "?")
        except ImportError:
            out[name] = None
    try:
        import core

        out["interestlens"] = core.__version__
    except ImportError:
        pass
    return out


def percentiles(samples_ms: list[float]) -> dict:
    """p50 / p95 / mean / n of a list of latencies in milliseconds."""
    xs = sorted(samples_ms)
    if not xs:
        return {"p50": None, "p95": None, "mean": None, "n": 0}

    def q(p: float) -> float:
        k = (len(xs) - 1) * p
        lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
        return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)

    return {"p50": q(0.5), "p95": q(0.95), "mean": statistics.fmean(xs), "n": len(xs)}


def time_calls(fn: Callable[[], Any], n: int, warmup: int = 1) -> list[float]:
    """Run `fn` `warmup` times untimed, then `n` times; the latencies in milliseconds."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000.0)
    return out


def peak_rss_mb(children: bool = False) -> float:
    """Peak resident memory of this process (or of its finished children) in MiB."""
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024.0


class Results:
    """`bench/results/<name>-<size>.json`: machine, versions and figures, saved after every stage."""

    def __init__(self, name: str, size: str, resume: bool = True):
        self.path = RESULTS / f"{name}-{size}.json"
        self.data: dict = {"name": name, "size": size, "stages": {}}
        if resume and self.path.exists():
            try:
                self.data = json.loads(self.path.read_text())
                self.data.setdefault("stages", {})
            except json.JSONDecodeError:
                pass
        self.data["machine"] = machine_info()
        self.data["versions"] = versions()

    def done(self, stage: str) -> bool:
        return stage in self.data["stages"]

    def get(self, stage: str) -> dict | None:
        return self.data["stages"].get(stage)

    def stage(self, stage: str, figures: dict) -> dict:
        """Record one stage's figures and write the file at once."""
        self._merge_saved()
        self.data["stages"][stage] = {**figures, "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
        self.save()
        return figures

    def set(self, key: str, value: Any) -> None:
        self._merge_saved()
        self.data[key] = value
        self.save()

    def _merge_saved(self) -> None:
        """Take in the stages another process saved to the file meanwhile (two runs of different stages of one
        suite at once keep each other's results)."""
        try:
            saved = json.loads(self.path.read_text()).get("stages", {})
        except (OSError, json.JSONDecodeError):
            return
        self.data["stages"] = {**self.data["stages"], **saved}

    def save(self) -> None:
        RESULTS.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.data, indent=2, default=str))
        tmp.replace(self.path)


def wait_for_health(url: str, proc, timeout_s: float) -> bool:
    """Poll a Streamlit server's `/_stcore/health` until it answers 200 (True), or until `proc` exits or
    `timeout_s` passes (False); the caller says why, with its own server log."""
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return True
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(0.5)
