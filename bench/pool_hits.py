"""How often a user switch of `bench/load_ws.py` finds its user in the server's shared per-user pool, per pool bound.

`bench/load_ws.py` hands out users from one shuffled cycle shared by all sessions (`bench.load.Users`): at 100
sessions x 0.2 switches a second the cycle of ML-100k's 943 users comes round every ~47 s. A least-recently-used
cache that holds fewer users than the cycle then never holds the next user, so every switch rebuilds the user's
view, history and figures. This measures each user's entries (`bench/cache_budget.py`'s `deep_bytes` of everything
the explorer's per-user `st.cache_resource` functions keep for one switch, default settings) and replays the series'
user order through an LRU bounded by bytes, for each bound. (Measured first, by s23c, on d638d5c's byte-bounded pool;
the explorer's caches are now Streamlit's, bounded by users per function: docs/serving-memory.md.)

Usage::

    python bench/pool_hits.py                                  # ML-100k of bench/load_ws.py
    python bench/pool_hits.py --bounds 64,128,256,320,512 --series 1,5,20,50,100

Writes `bench/results/pool_hits-<tag>.json`: the per-user size (mean, p95, total), and per bound the share of
switches that find their user, per session count of the series (each count switches `--switches-per-session`
times per session, its own shuffle, seed + count, as load_ws does).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import OrderedDict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import Results, percentiles  # noqa: E402
from bench.load_data import LOADWS_WORK as WORK  # noqa: E402
from bench.load_data import loadws_app, user_counts  # noqa: E402

__all__ = ["user_sizes", "replay", "main"]


def user_sizes(users: list[str]) -> dict[str, int]:
    """Each user's explorer entries, in bytes as `bench/cache_budget.py` sizes them (the explorer opened on one
    user at a time, its per-user caches emptied before each; the app named by `loadws_app`): the sum over the
    per-user functions."""
    from bench.cache_budget import entry_sizes

    return {user: sum(sizes.values()) for user, sizes in zip(users, entry_sizes(users), strict=True)}


def replay(sizes: dict[str, int], counts: dict[str, int], bound: int, series: list[int], per_session: int,
           seed: int = 0) -> dict[int, float]:
    """Share of switches whose user is in an LRU of `bound` bytes, per session count, the pool kept across the
    series as one server keeps it."""
    from bench.load_sessions import Users

    pool: OrderedDict[str, int] = OrderedDict()
    held, out = 0, {}
    for n in series:
        users, shown, hits = Users(counts, seed + n), None, 0
        switches = n * per_session
        for _ in range(switches):
            user = users.next(counts[shown] if shown is not None else None)
            shown = user
            if user in pool:
                pool.move_to_end(user)
                hits += 1
                continue
            pool[user] = sizes[user]
            held += sizes[user]
            while held > bound:
                held -= pool.popitem(last=False)[1]
        out[n] = round(hits / switches, 3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", type=Path, default=WORK, help="folder with ml100k.duckdb and models/default")
    ap.add_argument("--bounds", default="64,128,192,256,320,512", help="pool bounds to replay, MiB")
    ap.add_argument("--series", default="1,5,20,50,100", help="session counts, one after another (one server)")
    ap.add_argument("--switches-per-session", type=int, default=25,
                    help="switches each session asks for in a run (load_ws: 120 s / 5 s = 24, plus the first page)")
    ap.add_argument("--tag", default="ml100k")
    args = ap.parse_args()
    db, _ = loadws_app(args.work, INTERESTLENS_EXPLAIN_WORKERS="0")
    t0 = time.process_time()
    counts = user_counts(db)
    sizes = user_sizes(sorted(counts))
    series = [int(x) for x in args.series.split(",") if x.strip()]
    kib = percentiles([s / 1024 for s in sizes.values()])
    total = sum(sizes.values()) / 2**20
    print(f"{len(sizes)} users: pool entries per user mean {kib['mean']:.0f} / p95 {kib['p95']:.0f} KiB, all users "
          f"{total:.0f} MiB (measured in {time.process_time() - t0:.0f} s CPU)")
    results = Results("pool_hits", args.tag, resume=False)
    results.set("users", len(sizes))
    results.set("kib_per_user", kib)
    results.set("mib_all_users", round(total, 1))
    hits = {}
    for mib in [int(x) for x in args.bounds.split(",") if x.strip()]:
        hits[mib] = replay(sizes, counts, mib * 2**20, series, args.switches_per_session)
        print(f"  bound {mib:4d} MiB: share of switches that find their user, per session count: {hits[mib]}")
    results.set("hit_share_per_bound_mib", {str(k): v for k, v in hits.items()})
    results.set("series", series)
    results.set("switches_per_session", args.switches_per_session)
    results.set("command", " ".join(sys.argv))
    print(f"wrote {results.path}")


if __name__ == "__main__":
    main()
