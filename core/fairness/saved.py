"""The fairness report's model outputs, saved beside the model so a report opens without scoring every user.

What is saved (in ``<model>/fairness_inputs/``):

- ``recommendations.parquet``: every user's top-K list from their whole history (K at least `SAVED_K`, so every
  list length the app offers is a cut of it);
- ``eval_users.parquet``: every user's test target and its rank (the `eval_users.parquet` contract);
- ``trend-<hash>.parquet``: one trend window's lists, addressed by a hash of the window's histories (the users,
  items, times and event order the model reads), so any calendar window or panel finds its own lists;
- ``key.json``: what the files were computed from.

The key is the database's identity and contents (events, users, last event time, last ingest run, a hash of the
item ids), the model's weights (sha256 of ``model.safetensors``; for an external ONNX or TorchScript model, of its
registration, model file and item map; a Python entry point is never saved) and the seen rule. A file is used only
when the whole key matches; on any difference the folder is emptied before the next write, so a stale list is never read.
The folder is a cache: deleting it only costs the time to compute it again, and a model folder that cannot be
written (read-only) simply computes every time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from core.fairness.over_time import RecommendFn
from core.store.identity import database_id

__all__ = ["SAVED_DIR", "SAVED_K", "SavedInputs", "inputs_key", "saved_recommender", "histories_hash"]

log = logging.getLogger(__name__)

SAVED_DIR = "fairness_inputs"  # folder beside the model's files; save_checkpoint drops it with the old weights
SAVED_K = 20  # saved lists hold at least this many items: the app offers K = 5, 10 and 20
_FORMAT = 1  # bump when a saved file's meaning changes: older folders then no longer match


# the files that decide an external model's scores (core.external: its registration, model file and item map)
_EXTERNAL_FILES = ("external.json", "model.onnx", "model.pt", "items.csv")


def _weights_sha(model_dir: Path) -> str | None:
    """sha256 of what decides the model's scores: ``model.safetensors`` for ours; for an external ONNX or TorchScript
    model its registration, model file and item map. None for a Python entry point, whose code lives outside the
    folder and may change without it: its inputs are never saved or read."""
    if (model_dir / "model.safetensors").exists():
        files = [model_dir / "model.safetensors"]
    else:
        try:
            spec = json.loads((model_dir / "external.json").read_text())
        except (OSError, ValueError):
            return None
        if spec.get("kind") not in ("onnx", "torchscript"):
            return None
        files = [model_dir / name for name in _EXTERNAL_FILES if (model_dir / name).exists()]
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.name.encode() + b"\0")
        with open(file, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def inputs_key(con: duckdb.DuckDBPyConnection, model_dir: str | os.PathLike, exclude_seen: bool) -> dict:
    """What the saved inputs depend on: the database (identity and contents), the weights and the seen rule.

    Any ingest, live append or `forget` changes the counts, the last run or the item hash; a retrained model
    changes the weights' hash."""
    users, events, last = con.execute("SELECT count(DISTINCT user_id), count(*), max(ts) FROM events").fetchone()
    run = con.execute("SELECT coalesce(max(run_id), 0) FROM ingest_runs").fetchone()[0]
    items = hashlib.sha256()
    for (item_id,) in con.execute("SELECT DISTINCT item_id FROM events ORDER BY 1").fetchall():
        items.update(str(item_id).encode("utf-8", "surrogatepass") + b"\0")
    return {
        "format": _FORMAT,
        "database": database_id(con),
        "events": int(events),
        "users": int(users),
        "last_event": last.isoformat() if last is not None else None,
        "last_run": int(run),
        "items_sha256": items.hexdigest(),
        "weights_sha256": _weights_sha(Path(model_dir)),
        "exclude_seen": bool(exclude_seen),
    }


def histories_hash(histories: pd.DataFrame) -> str:
    """A hash of the histories a recommender reads (user, item, time, in row order); equal histories give equal
    lists from the same weights."""
    cols = [c for c in ("user_id", "item_id", "ts") if c in histories.columns]
    h = pd.util.hash_pandas_object(histories[cols].astype(str), index=False).to_numpy()
    digest = hashlib.sha256(h.tobytes())
    digest.update(str(len(histories)).encode())
    return digest.hexdigest()[:32]


@dataclass(frozen=True)
class SavedInputs:
    """The saved inputs of one model for one database state (see the module docstring)."""

    folder: Path  # <model>/fairness_inputs
    key: dict  # `inputs_key` of the database and model now

    @classmethod
    def open(cls, model_dir: str | os.PathLike, key: dict) -> SavedInputs:
        return cls(Path(model_dir) / SAVED_DIR, key)

    def valid(self) -> bool:
        """Whether the folder was written for exactly this key (never for a model whose weights have no hash)."""
        if self.key.get("weights_sha256") is None:
            return False
        try:
            return json.loads((self.folder / "key.json").read_text()) == self.key
        except (OSError, ValueError):
            return False

    def read(self, name: str) -> pd.DataFrame | None:
        """The saved table `name`, or None when it is missing, unreadable or saved under another key."""
        file = self.folder / f"{name}.parquet"
        if not self.valid() or not file.exists():
            return None
        try:
            return pd.read_parquet(file)
        except (OSError, ValueError) as exc:
            log.info("ignoring the unreadable saved fairness input %s (%s)", file, exc)
            return None

    def write(self, name: str, table: pd.DataFrame) -> bool:
        """Save `table` as `name` (atomically); a folder saved under another key is emptied first. False when the
        folder cannot be written (the report then computes the table again next time) or the model's weights have
        no hash (a Python entry point)."""
        if self.key.get("weights_sha256") is None:
            return False
        try:
            if not self.valid():
                shutil.rmtree(self.folder, ignore_errors=True)
                self.folder.mkdir(parents=True, exist_ok=True)
                tmp = self.folder / "key.json.tmp"
                tmp.write_text(json.dumps(self.key, indent=2))
                os.replace(tmp, self.folder / "key.json")
            file = self.folder / f"{name}.parquet"
            tmp = file.with_name(file.name + ".tmp")
            table.to_parquet(tmp, index=False)
            os.replace(tmp, file)
            return True
        except OSError as exc:
            log.info("could not save the fairness input %s in %s (%s)", name, self.folder, exc)
            return False


def saved_recommender(saved: SavedInputs, inner: RecommendFn, save: bool = True) -> RecommendFn:
    """`inner` with its lists saved per trend window: a window whose histories were scored before (same hash)
    reads its lists back, cut to K; others are scored at max(K, `SAVED_K`) and saved when `save`."""

    def fn(histories: pd.DataFrame, k: int) -> pd.DataFrame:
        name = f"trend-{histories_hash(histories)}"
        lists = saved.read(name)
        if lists is None or lists.empty or int(lists["rank"].max()) < k:
            lists = inner(histories, max(int(k), SAVED_K))
            if save:
                saved.write(name, lists)
        cut = lists[lists["rank"] <= k].reset_index(drop=True)
        return cut.astype({"rank": np.int64})

    return fn
