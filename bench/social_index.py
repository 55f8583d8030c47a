"""The friend edge index in live mode: what the first user switch after a commit pays for the edges.

The dashboard holds the store's edges in memory (`core.friends.index.EdgeIndex`) and, when the database file changes
(every commit), hands the index it holds to `core.friends.index.refresh_index`. This bench copies a social database
(default: `bench/social_scale.py --keep`'s 10M-event / 1M-edge one) to a temporary folder and times, each on a fresh
read-only connection as the dashboard opens one per version:

- `build`: `edge_index`, the full read (the first switch after the dashboard starts);
- `refresh_unchanged`: the same version again;
- `refresh_after_events`: after a commit of `--append` events of users who have events (a new run), the common
  live-mode case;
- `refresh_after_first_events`: after a commit that also brings the first events of `--new-users` users named by
  an edge (the degrees are counted again);
- `refresh_after_delete`: after deleting one user's events (no edge change: which named users have events is
  checked against every event);
- `refresh_after_edges`: after a commit that adds edges (the index is read again, as `build`).

Each figure is wall and CPU milliseconds with the 1-minute load average beside it; the refreshed index is checked
equal (degrees of the users touched, and their edges) to a fresh `edge_index` of the same version.

    OMP_NUM_THREADS=1 python bench/social_index.py --db data/bench-social-1m-10m-events.duckdb

Writes bench/results/social_index-<tag>.json (tag: the database's file name).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Results, peak_rss_mb  # noqa: E402
from core.friends.index import edge_index, refresh_index  # noqa: E402
from core.ingest.frames import ingest_frames  # noqa: E402
from core.store import connect_read  # noqa: E402


def timed(fn) -> tuple[object, dict]:
    load, t0, c0 = os.getloadavg()[0], time.perf_counter(), time.process_time()
    out = fn()
    return out, {"wall_ms": round((time.perf_counter() - t0) * 1000, 1),
                 "cpu_ms": round((time.process_time() - c0) * 1000, 1), "load1": round(load, 2)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", type=Path, default=Path("data/bench-social-1m-10m-events.duckdb"))
    ap.add_argument("--append", type=int, default=1000, help="events in the live commit")
    ap.add_argument("--new-users", type=int, default=5, help="users named by an edge whose first events it brings")
    ap.add_argument("--tag", default=None)
    a = ap.parse_args()
    res = Results("social_index", a.tag or a.db.stem, resume=False)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "live.duckdb"
        shutil.copyfile(a.db, db)
        with duckdb.connect(str(db)) as con:  # users named by an edge, without events yet: the commit's newcomers
            users = [r[0] for r in con.execute("SELECT user_id FROM events USING SAMPLE 50 ROWS").fetchall()]
            con.execute("INSERT INTO social_edges SELECT ?, 'zz-new-' || i, 'friend', 1.0, NULL, FALSE, "
                        "(SELECT max(run_id) FROM social_edges), 0 FROM range(?) t(i)", [users[0], a.new_users])
            victim = users[1]

        def version(fn):
            with connect_read(db) as con:
                return fn(con)

        index, res_build = timed(lambda: version(edge_index))
        res.stage("build", {**res_build, "edges": index.n_edges, "users_named": len(index.ids)})
        _, fig = timed(lambda: version(lambda con: refresh_index(con, index)))
        res.stage("refresh_unchanged", fig)
        t = pd.Timestamp("2022-06-01")  # after every event of the bench log, before now (a future time is rejected)

        def commit(who: list[str], at: pd.Timestamp) -> None:
            ingest_frames(db, pd.DataFrame({"user_id": who, "item_id": [f"i{i % 50:06d}" for i in range(len(who))],
                                            "ts": [at + pd.Timedelta(seconds=i) for i in range(len(who))]}))  # fmt: skip

        commit([users[2 + i % 40] for i in range(a.append)], t)  # users who have events: nothing to count again
        after, fig = timed(lambda: version(lambda con: refresh_index(con, index)))
        assert after.degree is index.degree
        res.stage("refresh_after_events", {**fig, "events": a.append})
        new = [f"zz-new-{i}" for i in range(a.new_users)]
        commit([users[2 + i % 40] for i in range(a.append - a.new_users)] + new, t + pd.Timedelta(days=1))
        after, fig = timed(lambda: version(lambda con: refresh_index(con, index)))
        fresh = version(edge_index)
        check = [users[0], *users[2:42], *new]
        assert after.degrees(check) == fresh.degrees(check) and after.degrees([users[0]]) != index.degrees([users[0]])
        res.stage("refresh_after_first_events", {**fig, "events": a.append, "new_users": a.new_users,
                                                 "same_as_build": True})  # fmt: skip
        with duckdb.connect(str(db)) as con:
            con.execute("DELETE FROM events WHERE user_id = ?", [victim])
        again, fig = timed(lambda: version(lambda con: refresh_index(con, after)))
        fresh = version(edge_index)
        friends = list(set(fresh.edges_of([victim]).src_user) | set(fresh.edges_of([victim]).dst_user))
        assert again.degrees(friends) == fresh.degrees(friends)
        res.stage("refresh_after_delete", {**fig, "same_as_build": True})
        ingest_frames(db, pd.DataFrame({"user_id": [users[3]], "item_id": ["i000001"], "ts": [t]}),
                      edges=pd.DataFrame({"src_user": [users[3]], "dst_user": [users[4]]}))  # fmt: skip
        _, fig = timed(lambda: version(lambda con: refresh_index(con, again)))
        res.stage("refresh_after_edges", fig)
    res.stage("memory", {"peak_rss_mib": round(peak_rss_mb(), 1)})
    for name, fig in res.data["stages"].items():
        print(f"{name:22} {fig}")
    print(f"wrote {res.path}")


if __name__ == "__main__":
    main()
