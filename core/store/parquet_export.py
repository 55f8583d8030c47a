"""Export a table-backed database's log as a Parquet dataset partitioned by user bucket (`interestlens
export-parquet`), the layout `core.store.parquet.attach_parquet` reads in place and looks users up in by bucket."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from core.store.connection import StoreError, connect_read
from core.store.identity import database_id, write_identity_file
from core.store.parquet import _LOCAL, EVENTS_DIR, ITEMS_FILE, USERS_FILE
from core.store.source import BUCKET_COLUMN, user_bucket

__all__ = ["ExportResult", "export_parquet"]


@dataclass(frozen=True)
class ExportResult:
    out: Path  # the dataset folder: events/, users.parquet, items.parquet
    events: int
    files: int
    buckets: int
    bytes: int



def export_parquet(db: str | os.PathLike | None, out: str | os.PathLike, buckets: int = 64) -> ExportResult:
    """Write the database's log as a Parquet dataset partitioned by user bucket (see the module docstring).

    Each bucket's file holds its users' events sorted by user, then in canonical order, so a user's events are
    in one row group of one file. The database's identity goes into `out/database.json`, so a database attached
    to the folder is recognised as the same data. `out` must not exist yet.
    """
    out = Path(out).absolute()
    if out.exists():
        raise StoreError(f"{out} already exists; export to a new folder.")
    if not 1 <= int(buckets) <= 4096:
        raise StoreError("The number of user buckets must be between 1 and 4,096.")
    if not _LOCAL.match(str(out)):  # the check attach makes: refuse a folder it could not read back
        raise StoreError(f"The folder {str(out)!r} has characters InterestLens does not accept in a path; rename it.")
    events_dir = out / EVENTS_DIR  # the names attach's export_layout reads back
    out.mkdir(parents=True)
    with connect_read(db) as con:
        cur = con.cursor()
        ids = [r[0] for r in cur.execute("SELECT user_id FROM users UNION SELECT DISTINCT user_id FROM events").fetchall()]
        cur.register("_il_buckets", pd.DataFrame({"user_id": pd.Series(ids, dtype=object),
                                                  BUCKET_COLUMN: user_bucket(ids, int(buckets))}))
        cur.execute(
            f"""COPY (SELECT e.user_id, e.item_id, e.ts, e.event_type, e.value, e.context, e.run_id, e.seq, b.{BUCKET_COLUMN}
                      FROM events e JOIN _il_buckets b USING (user_id)
                      ORDER BY b.{BUCKET_COLUMN}, e.user_id, e.ts, e.run_id, e.seq)
                TO ? (FORMAT parquet, PARTITION_BY ({BUCKET_COLUMN}), COMPRESSION zstd)""",
            [str(events_dir)],
        )
        cur.execute("COPY (SELECT * FROM users ORDER BY user_id) TO ? (FORMAT parquet)", [str(out / USERS_FILE)])
        cur.execute("COPY (SELECT * FROM items ORDER BY item_id) TO ? (FORMAT parquet)", [str(out / ITEMS_FILE)])
        cur.unregister("_il_buckets")
        n = cur.execute("SELECT count(*) FROM events").fetchone()[0]
        write_identity_file(out, database_id(cur))  # attach of this folder takes the identity over
        cur.close()
    files = list(events_dir.rglob("*.parquet"))
    size = sum(f.stat().st_size for f in out.rglob("*.parquet"))
    return ExportResult(out, int(n), len(files), int(buckets), int(size))
