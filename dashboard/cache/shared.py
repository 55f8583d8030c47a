"""Per-user results shared by every session of the server, bounded by their total size in bytes.

Many analysts moving through one catalogue ask for the same users again: the explorer's user view, history,
figures, tables and CSV bytes are built once and handed to every session read-only (docs/serving.md). A bound by
entries (Streamlit's `max_entries`) lets memory follow the users' sizes: at ML-100k's ~0.3 MiB per user, 1,024
users grew a server by +33 % over a 20-session run, and a catalogue of long histories would grow it without a
useful limit. Here every cached function of the explorer draws on ONE pool whose entries' estimated sizes
(`deep_bytes`) add up to at most `SHARED_BYTES`; the least recently used entries go first.

Guarantees: after every insertion the pool's total is at most its bound (an entry larger than the whole bound is
returned but not kept); a value is built once per key while it stays in the pool, and two sessions asking for the
same missing key at once build it once (the second waits for the first); what the pool hands out is shared, so
callers only read it (as with `st.cache_resource`).
"""

from __future__ import annotations

import dataclasses
import functools
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import numpy as np
import pandas as pd

__all__ = ["SHARED_BYTES", "BytePool", "PoolStats", "POOL", "deep_bytes", "held_once", "shared"]

# The explorer's per-user entries, all functions together. A complete view (user view, history, three figures, the
# events table with its CSV, marks) is ~0.3 to 1 MiB by this estimate on ML-100k (a 100- to 700-event user; the
# user view's trajectory arrays are half of it), so 64 MiB holds ~100 to 200 users: those a team moves through
# between two commits. 96 MiB let the server process grow +21 % over a 20-session run (docs/serving.md).
SHARED_BYTES = 64 * 2**20

_SAMPLE = 64  # object cells measured per column; a longer column's total is scaled from them
P = ParamSpec("P")
R = TypeVar("R")


def deep_bytes(obj: Any, _seen: set[int] | None = None) -> int:
    """An estimate of the memory `obj` holds, in bytes, following containers, dataclasses and object attributes.

    numpy arrays count their buffers (`nbytes`), pandas objects their `memory_usage(deep=True)`, strings and bytes
    `sys.getsizeof`; an object reached twice counts once. It is an estimate (allocator overhead and interned
    objects shared with the rest of the process are not counted), used to bound caches, not to report RSS.
    """
    seen = set() if _seen is None else _seen
    if obj is None or id(obj) in seen:
        return 0
    if isinstance(obj, (bool, int, float)):
        return sys.getsizeof(obj)
    seen.add(id(obj))
    if isinstance(obj, (str, bytes, bytearray)):
        return sys.getsizeof(obj)
    if isinstance(obj, np.ndarray):
        # an array that owns its buffer counts it in sys.getsizeof; a view adds its span unless its base counted
        view_of_seen = isinstance(obj.base, np.ndarray) and id(obj.base) in seen
        data = 0 if obj.flags.owndata or view_of_seen else obj.nbytes
        return sys.getsizeof(obj) + data + (_cells(obj.ravel(), seen, strings=True) if obj.dtype == object else 0)
    if isinstance(obj, pd.DataFrame):
        # column by column: the same total as `obj.memory_usage(deep=True, index=True).sum()`, without the Series
        # of usages that call builds (it was 60 % of sizing a 300-event history, ~0.5 of ~0.9 ms; a new user's
        # entries hold 3 to 4 frames)
        total = int(obj.index.memory_usage(deep=True))
        for _, col in obj.items():
            total += int(col.memory_usage(deep=True, index=False))
            if col.dtype == object:
                total += _cells(col.to_numpy(), seen)
        return total
    if isinstance(obj, (pd.Series, pd.Index)):
        return int(obj.memory_usage(deep=True)) + (_cells(obj.to_numpy(), seen) if obj.dtype == object else 0)
    if isinstance(obj, dict):
        return sys.getsizeof(obj) + sum(deep_bytes(k, seen) + deep_bytes(v, seen) for k, v in obj.items())
    if isinstance(obj, (list, tuple, set, frozenset)):
        return sys.getsizeof(obj) + sum(deep_bytes(v, seen) for v in obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return sys.getsizeof(obj) + sum(deep_bytes(getattr(obj, f.name, None), seen) for f in dataclasses.fields(obj))
    if hasattr(obj, "__dict__"):
        return sys.getsizeof(obj) + deep_bytes(vars(obj), seen)
    return sys.getsizeof(obj)


def _cells(values, seen: set[int], strings: bool = False) -> int:
    """What the cells of an object array or column hold (lists of categories, dicts; with `strings`, strings
    too): pandas' `memory_usage(deep=True)` counts strings but not the rest, an object array's buffer only its
    pointers. Long columns are estimated from `_SAMPLE` evenly spread cells (sizing must stay cheap beside the
    build it bounds: the whole column cost up to 10 ms for a 700-event user)."""
    n = len(values)
    if n == 0:
        return 0
    picked = range(n) if n <= _SAMPLE else np.linspace(0, n - 1, _SAMPLE).astype(int)
    cells = values if n <= _SAMPLE else [values[int(i)] for i in picked]
    total = sum(deep_bytes(v, seen) for v in cells if strings or not isinstance(v, str))
    return total if n <= _SAMPLE else int(total * n / _SAMPLE)


@dataclass(frozen=True)
class PoolStats:
    """What a pool holds and has done, for tests and benches."""

    entries: int  # values kept now
    bytes: int  # their estimated size, sum of `deep_bytes` at insertion
    max_bytes: int  # the bound: `bytes` never exceeds it after an insertion
    hits: int  # lookups answered from the pool
    misses: int  # lookups that built the value
    evicted: int  # entries dropped to stay within the bound


class BytePool:
    """A thread-safe least-recently-used map whose values' estimated sizes add up to at most `max_bytes`."""

    def __init__(self, max_bytes: int):
        if max_bytes <= 0:
            raise ValueError("A shared pool needs a positive size bound.")
        self.max_bytes = int(max_bytes)
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._building: dict[Hashable, threading.Lock] = {}
        self._bytes = self._hits = self._misses = self._evicted = 0

    def get_or_build(self, key: Hashable, build: Callable[[], R]) -> R:
        """The value kept under `key`, or `build()`'s (kept when it fits the bound). One build per missing key
        at a time: concurrent callers of the same key wait for it instead of building it again."""
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                self._hits += 1
                return self._entries[key][0]
            gate = self._building.setdefault(key, threading.Lock())
        with gate:
            with self._lock:  # built by another caller while this one waited
                if key in self._entries:
                    self._entries.move_to_end(key)
                    self._hits += 1
                    return self._entries[key][0]
            try:
                value = build()
            finally:
                with self._lock:
                    self._building.pop(key, None)
            self._put(key, value, deep_bytes(value, set(_HELD_ONCE)))
            return value

    def _put(self, key: Hashable, value: Any, size: int) -> None:
        with self._lock:
            self._misses += 1
            if size > self.max_bytes:  # larger than the whole pool: served once, not kept
                return
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._entries[key] = (value, size)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._bytes -= dropped
                self._evicted += 1

    def clear(self, prefix: Hashable | None = None) -> None:
        """Drop every entry (or those whose key starts with `prefix`, a function's name)."""
        with self._lock:
            for key in [k for k in self._entries if prefix is None or k[0] == prefix]:
                self._bytes -= self._entries.pop(key)[1]

    def stats(self) -> PoolStats:
        with self._lock:
            return PoolStats(len(self._entries), self._bytes, self.max_bytes, self._hits, self._misses, self._evicted)


_HELD_ONCE: set[int] = set()  # ids of objects the process holds once, however many entries refer to them


def held_once(obj: R) -> R:
    """Mark `obj` (kept alive by its owner for the life of the process, e.g. the Plotly template dict every
    prepared figure refers to) as held once: entries that refer to it are not charged its size."""
    _HELD_ONCE.add(id(obj))
    return obj


POOL = BytePool(SHARED_BYTES)  # the server's one pool of shared per-user results (lives as long as the process)


def shared(func: Callable[P, R]) -> Callable[P, R]:
    """Cache `func`'s results in `POOL`, keyed by its qualified name and its (hashable) arguments.

    The arguments must be hashable values that name the result completely (`DbRef`, `ModelRef`, ids, settings,
    bytes). `func.clear()` drops its entries."""
    name = f"{func.__module__}.{func.__qualname__}"

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        key = (name, args, tuple(sorted(kwargs.items())))
        return POOL.get_or_build(key, lambda: func(*args, **kwargs))

    wrapper.clear = lambda: POOL.clear(name)  # type: ignore[attr-defined]
    return wrapper
