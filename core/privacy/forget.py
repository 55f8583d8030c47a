"""`forget_user`: delete one user everywhere InterestLens stores them, and mark the models that learned from them.

Where a user is stored: their events and their `users` row (attributes) in the database; rejected rows whose raw
text carries their id as a whole field; every derived table with a `user_id` column (Parquet or CSV) beside each
model (drift summaries, recommendations, per-user evaluation; the explorer's views file, which is deleted) and beside the database (`<db>.truth/`,
`<db>.semantic/`). Model weights hold no user ids, but a model trained on the user's events has learned from them:
its card (`metrics.json`) gets a `forgotten` note, which the app shows, until it is retrained.

Order makes a crash safe: derived files are cleaned first and the database last (one transaction), so a run that
is interrupted leaves the user in the database and running `forget` again finishes the job. DuckDB keeps deleted
rows' bytes in the file until its blocks are rewritten, so the database is then compacted: copied into a fresh file
(`COPY FROM DATABASE`) while the write lock is held, which replaces the old file.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from core.errors import NotFoundError
from core.store import StoreError, connect_write, default_db_path
from core.store.edges import count_user_edges, delete_user_edges

__all__ = ["FORGOTTEN_KEY", "ForgetResult", "forget_user", "rejects_carrying", "derived_folders"]

log = logging.getLogger(__name__)

# core.trajectory.sidecar.VIEWS_FILE, by name: importing it would load the model code (torch) into every forget
_VIEWS_FILE = "views.safetensors"
FORGOTTEN_KEY = "forgotten"  # the model card's note about users deleted after the model was trained
# Characters that separate fields in the raw text of a rejected row (CSV, TSV, `|`, `::`, JSON).
_SEP = r"\s,;|:\"'{}\[\]"


@dataclass(frozen=True)
class ForgetResult:
    """What `forget_user` removed (counts only: the result never repeats what was deleted)."""

    events: int  # rows deleted from events
    users: int  # rows deleted from users (0 or 1)
    rejects: int  # rejected rows that carried the id
    edges: int = 0  # social edges naming the user (either end)
    files: dict[str, int] = field(default_factory=dict)  # derived file -> rows removed
    models_marked: list[str] = field(default_factory=list)  # model folders whose card now has a `forgotten` note
    compacted: bool = False  # the database file was rewritten without the deleted rows' bytes

    def to_dict(self) -> dict:
        return asdict(self)


def rejects_carrying(raws: Iterable[tuple[int, str]], user_id: str) -> list[int]:
    """The row ids (of `(rowid, raw)` pairs) whose raw text holds `user_id` as a whole field.

    A field is bounded by the start or end of the text or by a separator (space, `, ; | : " ' { } [ ]`), so the id
    `7` matches `7,10,1700000000` and `{"user": "7"}` but not `17,10,…`.
    """
    pattern = re.compile(rf"(?<![^{_SEP}]){re.escape(user_id)}(?![^{_SEP}])")
    return [rowid for rowid, raw in raws if raw is not None and pattern.search(raw)]


def derived_folders(db: Path, model_dirs: Sequence[Path]) -> list[Path]:
    """Folders that may hold derived per-user tables: each model folder, `<db>.truth/` and `<db>.semantic/`."""
    out = [Path(m) for m in model_dirs]
    out += [Path(str(db) + suffix) for suffix in (".truth", ".semantic")]
    return [f for f in dict.fromkeys(out) if f.is_dir()]


def _atomic_replace(tmp: Path, path: Path) -> None:
    shutil.copymode(path, tmp)
    os.replace(tmp, path)


def _scrub_parquet(path: Path, user_id: str) -> int:
    if "user_id" not in pq.read_schema(path).names:
        return 0
    table = pq.read_table(path)
    hit = pc.fill_null(pc.equal(pc.cast(table.column("user_id"), pa.string()), user_id), False)
    n = int(pc.sum(hit).as_py() or 0)
    if n:
        tmp = path.with_name(path.name + ".forget-tmp")
        pq.write_table(table.filter(pc.invert(hit)), tmp)
        _atomic_replace(tmp, path)
    return n


def _scrub_csv(path: Path, user_id: str) -> int:
    import pandas as pd

    with open(path, encoding="utf-8", errors="replace") as f:
        header = f.readline()
    if "user_id" not in [h.strip().strip('"') for h in header.rstrip("\r\n").split(",")]:
        return 0
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    hit = df["user_id"] == user_id
    n = int(hit.sum())
    if n:
        tmp = path.with_name(path.name + ".forget-tmp")
        df[~hit].to_csv(tmp, index=False)
        _atomic_replace(tmp, path)
    return n


def _scrub_files(folders: Sequence[Path], user_id: str) -> dict[str, int]:
    removed: dict[str, int] = {}
    for folder in folders:
        for path in sorted(folder.iterdir()):
            if not path.is_file():
                continue
            suffix = path.suffix.lower()
            try:
                if path.name == _VIEWS_FILE:
                    n = _drop_views(path, user_id)
                else:
                    n = _scrub_parquet(path, user_id) if suffix == ".parquet" else _scrub_csv(path, user_id) if suffix == ".csv" else 0
            except (OSError, pa.ArrowException, ValueError, KeyError) as exc:
                raise StoreError(f"Could not remove the user from {path} ({exc.__class__.__name__}); nothing was deleted from the database.") from exc
            if n:
                removed[str(path)] = n
    return removed


def _drop_views(path: Path, user_id: str) -> int:
    """The explorer's views file (`core.trajectory.sidecar`) holds every user's views under their id, listed in its
    safetensors header ("users", JSON): one that holds this user (or cannot be read to tell) is deleted, 1; the drift
    job or the app builds it again from what remains. 0 when the user is not in it. The header is read here with
    safetensors itself, since privacy sits below the trajectory layer."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), "np") as f:
            users = json.loads((f.metadata() or {}).get("users", "[]"))
        holds = str(user_id) in {str(u) for u in users}
    except Exception:  # any unreadable header (safetensors raises its own error types): it may hold the user
        holds = True
    if not holds:
        return 0
    path.unlink()
    return 1


def _trained_on(model_dir: Path, first_event: dt.datetime | None) -> bool:
    """True when the model may have learned from an event at `first_event` (its data ends at or after it)."""
    try:
        fp = json.loads((model_dir / "fingerprint.json").read_text(encoding="utf-8"))
        max_ts = dt.datetime.fromisoformat(str(fp["max_ts"]))
    except (OSError, ValueError, KeyError, TypeError):
        return True  # unknown training data: assume it included the user
    return first_event is not None and first_event <= max_ts.replace(tzinfo=None)


def _mark(model_dir: Path, now: str) -> None:
    path = model_dir / "metrics.json"
    try:
        card = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    except (OSError, json.JSONDecodeError):
        card = {}
    note = card.get(FORGOTTEN_KEY) if isinstance(card.get(FORGOTTEN_KEY), dict) else {}
    card[FORGOTTEN_KEY] = {
        "users": int(note.get("users", 0)) + 1,
        "last": now,
        "note": "trained on events of users deleted since (interestlens forget); retrain it to remove what it learned from them",
    }
    tmp = path.with_name(path.name + ".forget-tmp")
    tmp.write_text(json.dumps(card, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, path)


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _compact_into(con: duckdb.DuckDBPyConnection, target: Path) -> None:
    """Copy the open database into a fresh file (only live rows are written)."""
    target.unlink(missing_ok=True)
    Path(str(target) + ".wal").unlink(missing_ok=True)
    name = con.execute("SELECT current_database()").fetchall()[0][0]
    con.execute("ATTACH '" + str(target).replace("'", "''") + "' AS il_compact")
    try:
        con.execute(f"COPY FROM DATABASE {_quote_ident(name)} TO il_compact")
    finally:
        con.execute("DETACH il_compact")


def forget_user(
    db: str | os.PathLike | None,
    user_id: str,
    model_dirs: Sequence[str | os.PathLike] = (),
    *,
    compact: bool = True,
    write_timeout_s: float = 10.0,
) -> ForgetResult:
    """Delete `user_id` from the database and every derived table, and mark the models trained on them.

    `model_dirs` are checkpoint folders derived from this database. Raises NotFoundError (one sentence) when the
    database does not know the user, StoreError when the file is missing or held by another process.
    """
    path = default_db_path(db)
    if not path.exists():
        raise StoreError(f"No database at {path}: nothing to forget.")
    user_id = str(user_id)
    models = [Path(m) for m in model_dirs]
    tmp = path.with_name(path.name + ".forget-tmp")
    with connect_write(path, timeout_s=write_timeout_s) as con:
        n_events, first = con.execute("SELECT count(*), min(ts) FROM events WHERE user_id = ?", [user_id]).fetchall()[0]
        n_users = con.execute("SELECT count(*) FROM users WHERE user_id = ?", [user_id]).fetchall()[0][0]
        n_edges = count_user_edges(con, user_id)
        if not n_events and not n_users and not n_edges:
            raise NotFoundError(f"There is no user {user_id!r} in this database.")
        files = _scrub_files(derived_folders(path, models), user_id)
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        marked = [m for m in models if _trained_on(m, first) or any(Path(f).parent == m for f in files)]
        for m in marked:
            _mark(m, now)
        raws = con.execute("SELECT rowid, raw FROM rejects WHERE contains(raw, ?)", [user_id]).fetchall()
        reject_ids = rejects_carrying(raws, user_id)
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute("DELETE FROM events WHERE user_id = ?", [user_id])
            con.execute("DELETE FROM users WHERE user_id = ?", [user_id])
            delete_user_edges(con, user_id)
            if reject_ids:
                con.execute("DELETE FROM rejects WHERE list_contains(?::BIGINT[], rowid)", [reject_ids])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        if compact:
            _compact_into(con, tmp)
    if compact:
        # The write lock is gone from here on: swap at once. A leftover WAL belongs to the old file (whose
        # committed state the copy already holds), so it must not be replayed into the new one.
        Path(str(path) + ".wal").unlink(missing_ok=True)
        _atomic_replace(tmp, path)
    log.info("forgot a user: %d events, %d rejects, %d derived files, %d models marked",
             n_events, len(reject_ids), len(files), len(marked))
    return ForgetResult(
        int(n_events), int(n_users), len(reject_ids), int(n_edges), files, [str(m) for m in marked], compact
    )
