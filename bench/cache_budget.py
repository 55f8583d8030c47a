"""What the User explorer's per-user caches hold: the size of each entry, per user, to set their entry bounds.

Streamlit bounds a cache by entries, not bytes, so `dashboard.cache.shared.PER_USER_ENTRIES` is chosen from the
sizes measured here: the explorer is opened (Streamlit's `AppTest`, the app's own script and caches) on a sample of
users with "Events as a table" open, and every entry of the explorer's seven per-user `st.cache_resource`
functions is sized with `deep_bytes` (numpy buffers, pandas' deep usage, nested containers; an object reached
twice counts once, and the Plotly template dict every prepared figure shares is not charged to any). A long
history is measured too: a copy of the database gets one user whose history is several users' events in a row
(`--long-events`, ML-100k's longest is 737), drawn live from the model (no views file holds it).

Usage::

    python bench/cache_budget.py                        # ML-100k of bench/load_ws.py, 40 users + one 2,400-event user
    python bench/cache_budget.py --users 10 --long-events 0

Writes `bench/results/cache_budget-<tag>.json`: per function and per user the bytes (p50/p95/max), the largest
user, the budget and the entry bound it allows (budget / the largest ML-100k user's entries), and what that bound
would hold if every user were the long one.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # first, even when on $PYTHONPATH: bench/dashboard.py must not shadow the app's package

from bench.common import Results, percentiles  # noqa: E402
from bench.load_data import LOADWS_WORK as WORK  # noqa: E402
from bench.load_data import loadws_app, user_counts  # noqa: E402

# The explorer's per-user cached functions (display names as Streamlit keys them: module.qualname).
FUNCTIONS = ("user_history", "user_view", "trajectory_figures", "timeline_figure", "events_download",
             "recommendations_csv", "_model_marks")
_SAMPLE = 64  # object cells measured per column; a longer column's total is scaled from them

__all__ = ["FUNCTIONS", "deep_bytes", "entry_sizes", "main"]


def deep_bytes(obj: Any, _seen: set[int] | None = None) -> int:
    """An estimate of the memory `obj` holds, in bytes, following containers, dataclasses and object attributes.

    numpy arrays count their buffers (`nbytes`), pandas objects their `memory_usage(deep=True)`, strings and bytes
    `sys.getsizeof`; an object reached twice (or whose id is in `_seen` already) counts once. It is an estimate
    (allocator overhead and objects shared with the rest of the process are not counted), not RSS.
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
    """What the cells of an object array or column hold (lists of categories, dicts; with `strings`, strings too):
    pandas' deep usage counts strings but not the rest. Long columns are estimated from `_SAMPLE` evenly spread
    cells."""
    n = len(values)
    if n == 0:
        return 0
    picked = range(n) if n <= _SAMPLE else np.linspace(0, n - 1, _SAMPLE).astype(int)
    cells = values if n <= _SAMPLE else [values[int(i)] for i in picked]
    total = sum(deep_bytes(v, seen) for v in cells if strings or not isinstance(v, str))
    return total if n <= _SAMPLE else int(total * n / _SAMPLE)


def _explorer_caches() -> dict[str, Any]:
    """The explorer's per-user `st.cache_resource` caches now held by this process, by function name."""
    from streamlit.runtime.caching.cache_resource_api import _resource_caches

    out = {}
    for cache in _resource_caches._function_caches.get(None, {}).values():
        name = cache.display_name.rsplit(".", 1)[-1]
        if name in FUNCTIONS:
            out[name] = cache
    return out


def entry_sizes(users: list[str]) -> list[dict[str, int]]:
    """Open the explorer on each user (the events table open) and size the entries it cached: for each user,
    function name -> bytes (an object two functions share counts for the first in `FUNCTIONS` order)."""
    from streamlit.testing.v1 import AppTest

    from dashboard.components import charts

    template = charts._template()
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=600)
    out = []
    for n, user in enumerate(users):
        for cache in _explorer_caches().values():
            cache.clear()
        at.query_params["user"] = user
        at.session_state["events_open_0"] = True  # "Events as a table" builds its entry only when open
        if n == 0:
            at.run()
        else:
            at.text_input(key="user").set_value(user).run()
        problems = [e.value for e in at.exception] + [e.value for e in at.error]
        if problems or not [m.value for m in at.metric if m.label == "Events"]:
            raise SystemExit(f"the explorer of {user} was not drawn: {problems}")
        caches = _explorer_caches()
        seen = {id(template)}
        sizes = {}
        for name in FUNCTIONS:
            values = [r.value for r in caches[name]._mem_cache.values()] if name in caches else []
            sizes[name] = sum(deep_bytes(v, seen) for v in values)
        out.append(sizes)
    return out


def _long_copy(db: Path, events: int, dest: Path) -> str:
    """A copy of `db` with one more user whose history is `events` events of other users in a row (the longest
    users' events, times shifted so they follow each other); returns the new user's id."""
    from core.ingest.frames import ingest_frames
    from core.store import connect_read

    shutil.copyfile(db, dest)
    with connect_read(dest) as con:
        rows = con.execute("SELECT user_id, item_id, ts, event_type FROM events ORDER BY user_id, ts, seq").df()
    longest = rows.groupby("user_id").size().sort_values(ascending=False).index
    picked, total = [], 0
    for uid in longest:
        picked.append(uid)
        total += int((rows["user_id"] == uid).sum())
        if total >= events:
            break
    parts, start = [], pd.Timestamp("1997-09-20")
    for uid in picked:
        ev = rows[rows["user_id"] == uid].copy()
        ev["ts"] = start + (ev["ts"] - ev["ts"].min())
        start = ev["ts"].max() + pd.Timedelta(hours=1)
        parts.append(ev)
    long = pd.concat(parts).head(events).assign(user_id="long")
    ingest_frames(dest, long[["user_id", "item_id", "ts", "event_type"]].reset_index(drop=True))
    return "long"


def _spread(xs: list[int]) -> dict:
    return {**percentiles(xs), "max": max(xs)}


def _summary(rows: list[dict[str, int]]) -> dict:
    per_user = [sum(r.values()) for r in rows]
    return {"users": len(rows), "per_user_bytes": _spread(per_user),
            "per_function_bytes": {f: _spread([r[f] for r in rows]) for f in FUNCTIONS}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", type=Path, default=WORK, help="folder with ml100k.duckdb and models/default")
    ap.add_argument("--users", type=int, default=40, help="sampled users (the longest history is always one)")
    ap.add_argument("--long-events", type=int, default=2400, help="events of the long user (0: none)")
    ap.add_argument("--budget-mib", type=float, default=64.0, help="what the explorer's entries may hold together")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tag", default="ml100k", help="results file: bench/results/cache_budget-<tag>.json")
    args = ap.parse_args()
    db, _ = loadws_app(args.work)

    counts = user_counts(db)
    longest = max(counts, key=counts.get)
    users = [longest] + random.Random(args.seed).sample(sorted(u for u in counts if u != longest), args.users - 1)
    rows = entry_sizes(users)
    fig: dict[str, Any] = {"ml100k": _summary(rows), "budget_mib": args.budget_mib, "command": " ".join(sys.argv),
                           "load_average_1min": os.getloadavg()[0]}
    biggest = max(sum(r.values()) for r in rows)
    fig["ml100k"]["longest_user"] = {"user": longest, "events": counts[longest], "bytes": sum(rows[0].values())}
    fig["entries_allowed"] = int(args.budget_mib * 2**20 // biggest)
    if args.long_events:
        copy = args.work / f"cache_budget-long{args.long_events}.duckdb"
        user = _long_copy(db, args.long_events, copy)
        os.environ["INTERESTLENS_DB"] = str(copy)
        long_rows = entry_sizes([user])
        fig["long_user"] = {"events": args.long_events, "bytes": sum(long_rows[0].values()),
                            "per_function_bytes": long_rows[0]}
        copy.unlink()
    from dashboard.cache.shared import PER_USER_ENTRIES

    fig["per_user_entries"] = PER_USER_ENTRIES
    fig["held_at_bound_mib"] = {"ml100k_largest": round(PER_USER_ENTRIES * biggest / 2**20, 1)}
    if "long_user" in fig:
        fig["held_at_bound_mib"]["all_long"] = round(PER_USER_ENTRIES * fig["long_user"]["bytes"] / 2**20, 1)
    mib = 2**20
    s = fig["ml100k"]["per_user_bytes"]
    print(f"ML-100k, {len(rows)} users: per user p50 {s['p50'] / mib:.2f} / p95 {s['p95'] / mib:.2f} / max "
          f"{s['max'] / mib:.2f} MiB (longest, {counts[longest]} events: {sum(rows[0].values()) / mib:.2f} MiB)")
    for f, v in fig["ml100k"]["per_function_bytes"].items():
        print(f"  {f:20s} p50 {v['p50'] / 1024:8.1f} KiB  max {v['max'] / 1024:8.1f} KiB")
    if "long_user" in fig:
        print(f"long user, {args.long_events} events: {fig['long_user']['bytes'] / mib:.2f} MiB")
    print(f"budget {args.budget_mib:.0f} MiB / largest ML-100k user -> {fig['entries_allowed']} users per function; "
          f"bound now {PER_USER_ENTRIES}: {fig['held_at_bound_mib']}")
    results = Results("cache_budget", args.tag, resume=False)
    for k, v in fig.items():
        results.set(k, v)
    print(f"wrote {results.path}")


if __name__ == "__main__":
    main()
