"""The limits of the explorer's per-user caches: Streamlit's `st.cache_resource`, bounded by entries and age.

Many analysts moving through one catalogue ask for the same users again: the user view, history, figures, tables,
CSV bytes and marks of a user are built once and handed to every session read-only (`st.cache_resource` returns
the object itself, nothing is pickled or copied per run; callers never change it). Two sessions asking for the same
missing entry build it once: Streamlit takes a lock per key before building and looks again under it.

Streamlit bounds a cache by entries (`max_entries`, least recently used first) and age (`ttl`), not by bytes, so
the entry bound is set from measured entry sizes (`python bench/cache_budget.py`, docs/serving-memory.md). One
user's explorer entries, all seven functions together, on ML-100k: p50 0.17 MiB, mean 0.30, p95 1.04, the longest
history (737 events) 1.60 MiB; a 2,400-event user 4.90 MiB. 128 users per function hold ~38 MiB for users drawn
at random (their mean), within `BUDGET_BYTES` (64 MiB) while the users kept average under 0.5 MiB (128 users all of
the p95 size would hold 133 MiB), and keep the current user of 100 sessions at once,
whose explorer a session's next run (back from Explain, a setting) reads again. A catalogue of long histories
needs fewer: `$INTERESTLENS_CACHED_USERS` sets the bound when the server starts (128 users of 2,400 events would
hold ~630 MiB; 13 hold 64 MiB).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from typing import TypeVar

import streamlit as st

from dashboard.cache.handles import DbRef, ModelRef

__all__ = ["BUDGET_BYTES", "CACHED_USERS_ENV", "PER_USER", "PER_USER_ENTRIES", "PER_USER_TTL", "REF_HASHES",
           "cached_users", "fixed_signature", "per_user"]

F = TypeVar("F", bound=Callable)

BUDGET_BYTES = 64 * 2**20  # what the explorer's per-user entries may hold together on ML-100k (docs/serving-memory.md)
CACHED_USERS_ENV = "INTERESTLENS_CACHED_USERS"
DEFAULT_CACHED_USERS = 128  # ~38 MiB at ML-100k's mean user (0.30 MiB), bench/results/cache_budget-s20c.json


def cached_users(value: str | None) -> int:
    """The entry bound per per-user function: `value` (the environment's setting) when given, else the default."""
    if value is None or not value.strip():
        return DEFAULT_CACHED_USERS
    if not value.strip().isdigit() or int(value) < 1:
        raise ValueError(f"{CACHED_USERS_ENV} must be a whole number of users, at least 1 (got {value!r}).")
    return int(value)


# Entries per cached function: the users whose explorer a server keeps (the seven functions hold one entry per user
# each; the trajectory figures and the recommendations' CSV one per user and setting). Read once, at import.
PER_USER_ENTRIES = cached_users(os.environ.get(CACHED_USERS_ENV))
# An entry is built again an hour after it was built: the entries of a database state or model that is no longer
# current (a commit or a retraining makes new keys) go at the cache's next write after that, full or not. Seconds,
# not "1h": Streamlit parses a ttl string on every call.
PER_USER_TTL = 3600.0


def _db_key(ref: DbRef) -> str:
    return f"{ref.path}\0{ref.stamp}"


def _model_key(ref: ModelRef) -> str:
    return f"{ref.path}\0{ref.stamp}"


# How Streamlit hashes the references for a key: as one string each. Its default for a dataclass (`asdict`, then
# every field and item hashed on its own) was ~0.2 ms of every lookup, 100 times the lookup itself.
REF_HASHES = {DbRef: _db_key, ModelRef: _model_key}

# The settings of every per-user `st.cache_resource` function (`per_user` applies them).
PER_USER = dict(show_spinner=False, max_entries=PER_USER_ENTRIES, ttl=PER_USER_TTL, hash_funcs=REF_HASHES)


def fixed_signature(func: F) -> F:
    """`func` with its signature computed once (`__signature__`): Streamlit names every positional argument of every
    cached call with `inspect.signature`, which parsed the function anew each time (~15 us an argument, half of a
    lookup of the 8-argument trajectory figures). Apply it under `st.cache_resource`."""
    func.__signature__ = inspect.signature(func)
    return func


def per_user(func: F) -> F:
    """`func` as one of the explorer's per-user caches: `st.cache_resource(**PER_USER)` over `fixed_signature(func)`."""
    return st.cache_resource(**PER_USER)(fixed_signature(func))
