"""Which database and which model the app reads, as small hashable references that key every cached result.

Connection policy: DuckDB lets one writing process or many reading processes hold a file, never both. The app
never keeps a connection while idle: cached functions read through `dashboard.reader.READER`, one read-only
connection shared by the queries of a burst and closed a second after the last one. A `DbRef` carries the file's
stamp (size and modification times of the file and its WAL), so a new ingest is a new key and shows up on the next
rerun, while an unchanged file is never reopened for a repeated view. A `ModelRef` carries the weights' stamp, so
switching or retraining a model never shows another model's numbers.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import streamlit as st

from core import live
from core.errors import InterestLensError
from core.model_files import is_model, model_file
from core.store import default_db_path
from dashboard.reader import READER, file_stamp

__all__ = [
    "DbRef",
    "ModelRef",
    "db_path",
    "database",
    "version",
    "release",
    "models_root",
    "list_models",
    "model_ref",
    "active_model",
    "read_card",
    "model_parquet",
    "ChangedMost",
    "changed_most",
]

Stamp = tuple[int, int, int]


@dataclass(frozen=True)
class DbRef:
    """The database file as of one committed state: the key of every cached read."""

    path: str  # the DuckDB file
    stamp: Stamp  # (size, mtime_ns of the file, mtime_ns of its WAL): changes whenever a writer commits

    @property
    def file(self) -> Path:
        return Path(self.path)

    @property
    def exists(self) -> bool:
        return self.stamp != (0, 0, 0)


@dataclass(frozen=True)
class ModelRef:
    """One checkpoint folder as of one set of weights: the key of every model-backed result."""

    path: str  # the checkpoint folder (model.safetensors + JSON files)
    stamp: str  # content hash of model.safetensors (core.checkpoint.weights_fingerprint): a retrained model in the
    # same folder is another key, a touched or copied-back file with the same bytes keeps every cached result

    @property
    def dir(self) -> Path:
        return Path(self.path)

    @property
    def name(self) -> str:
        return Path(self.path).name


def _absolute(path: str) -> Path:
    """`path` made absolute against the working directory, lexically (`os.path.abspath`): every page run asks for
    the database and the models folder, and `Path.resolve` walked the path's components with a system call each
    (~2 % of a server's CPU under 20 sessions, docs/serving-cpu.md). A symbolic link in the path is kept as
    written: the file opened is the same."""
    return Path(os.path.abspath(path))


def db_path() -> Path:
    """The database the app reads: $INTERESTLENS_DB (set by `interestlens serve --db`), else the default."""
    return _absolute(str(default_db_path()))


def database() -> DbRef:
    """The app's database as of now (a `stat`; nothing is opened)."""
    path = db_path()
    return DbRef(str(path), file_stamp(path))


@st.cache_data(show_spinner=False, max_entries=8)
def _version(db: DbRef) -> live.DataVersion:
    with READER.cursor(db.path, db.stamp) as con:
        return live.data_version(con)


def version() -> live.DataVersion:
    """`core.live.data_version` of the app's database; the file is opened only when its stamp changed, so a live
    view polling this every few seconds costs a `stat` while nothing arrives."""
    return _version(database())


def release() -> None:
    """Close the shared read connection now (live views hold no connection between refreshes)."""
    READER.close()


def models_root() -> Path:
    """Where checkpoints live (`core.checkpoint.models_root`), as an absolute path."""
    from core.checkpoint import models_root as core_models_root

    return _absolute(str(core_models_root()))


def list_models() -> list[Path]:
    """Checkpoint folders under `models_root()`, newest first (`core.checkpoint.list_checkpoints`), then the
    registered external models by name."""
    from core.checkpoint import list_checkpoints
    from core.external import is_external, model_folders

    found = [p.resolve() for p in list_checkpoints(models_root())]
    # the folders only: describing every model (core.external.list_models) parsed each vocabulary on every rerun,
    # ~10 % of a user switch's script time on ML-100k (docs/serving-cpu.md)
    found += [d.resolve() for d in model_folders(models_root()) if is_external(d)]
    env = os.environ.get("INTERESTLENS_MODEL")
    if env and is_model(Path(env)) and Path(env).resolve() not in found:
        found.insert(0, Path(env).resolve())
    return found


def model_ref(model_dir: Path | str) -> ModelRef:
    """The reference of a checkpoint folder (its weights, or an external model's registration, must exist).

    Keyed on the weights' content, not their mtime: the hash is read again only when the file's stat changes
    (size, inode, mtime or ctime; a rewrite changes ctime even when its mtime is set back), so a run costs a `stat`
    and a touched-but-unchanged file keeps every cached result."""
    s = model_file(model_dir).stat()  # the file weights_fingerprint hashes (core.model_files: one rule)
    return ModelRef(str(model_dir), _fingerprint(str(model_dir), (s.st_size, s.st_ino, s.st_mtime_ns, s.st_ctime_ns)))


@st.cache_data(show_spinner=False, max_entries=64)
def _fingerprint(model_dir: str, file_stat: tuple[int, int, int, int]) -> str:  # file_stat: the memo's key only
    from core.checkpoint import weights_fingerprint  # lazily, as models_root: core.checkpoint imports torch

    return weights_fingerprint(model_dir)


def _active_dir() -> Path | None:
    chosen = st.session_state.get("sidebar_model")
    if chosen and is_model(Path(chosen)):
        return Path(chosen)
    env = os.environ.get("INTERESTLENS_MODEL")
    if env and is_model(Path(env)):
        return Path(env).resolve()
    models = list_models()
    db = database()
    if models and db.exists:  # the newest model trained on this database, when there is one
        for m in models:
            vocab = m / "vocab.json"
            try:
                if vocab.is_file() and _fits(str(m), vocab.stat().st_mtime_ns, db):
                    return m
            except (InterestLensError, OSError):  # a busy or damaged database: the pages say so themselves
                break
    return models[0] if models else None


def active_model() -> ModelRef | None:
    """The model chosen in the sidebar, else $INTERESTLENS_MODEL, else the newest checkpoint trained on the app's
    database (else the newest), else None."""
    found = _active_dir()
    try:
        return model_ref(found) if found is not None else None
    except OSError:  # deleted between the listing and the stat
        return None


@st.cache_data(show_spinner=False, max_entries=64)
def _fits(model: str, vocab_mtime_ns: int, db: DbRef) -> bool:
    """`core.checkpoint.model_fits`, cached until the vocabulary or the database changes."""
    from core.checkpoint import model_fits

    with READER.cursor(db.path, db.stamp) as con:
        return model_fits(model, con)


@st.cache_resource(show_spinner=False, max_entries=64)  # shared read-only: unpickled per call, the vocabulary
def _read_json(path: str, mtime_ns: int) -> dict:  # (vocab.json) cost every run a copy (read_card: 8 calls a run)
    with open(path, encoding="utf-8") as f:
        return json.load(f)


_CARD_NAMES = ("metrics", "fingerprint", "config", "vocab")
_CARDS: dict[str, tuple[tuple[int, ...], dict]] = {}  # model folder -> (the files' mtimes, the card); one per folder


def read_card(model_dir: Path) -> dict:
    """The checkpoint's JSON files by name (metrics, fingerprint, config, vocab); absent or damaged files are {}.

    One `os.stat` per file and, while no file changed, the same dict (shared read-only: callers never change it).
    The explorer asks for it 8 times a run (sidebar, marks, model fit, social check), and each ask was 4 Path
    builds, 8 stats and 4 `st.cache_resource` lookups with their argument hashing (docs/serving-cpu.md, s23)."""
    folder = os.fspath(model_dir)
    stamps = []
    for name in _CARD_NAMES:
        try:
            stamps.append(os.stat(os.path.join(folder, f"{name}.json")).st_mtime_ns)
        except OSError:
            stamps.append(-1)  # absent (or unreadable): {}
    key = tuple(stamps)
    held = _CARDS.get(folder)
    if held is not None and held[0] == key:
        return held[1]
    out = {}
    for name, stamp in zip(_CARD_NAMES, key, strict=True):
        path = os.path.join(folder, f"{name}.json")
        try:
            out[name] = _read_json(path, stamp) if stamp >= 0 and os.path.isfile(path) else {}
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            out[name] = {}
    if len(_CARDS) >= 64:  # a bound on folders held (a long-running server that saw many models)
        _CARDS.clear()
    _CARDS[folder] = (key, out)
    return out


@st.cache_data(show_spinner=False, max_entries=32)
def _read_parquet(path: str, mtime_ns: int) -> pd.DataFrame:
    return pd.read_parquet(path)


def model_parquet(model_dir: Path, name: str) -> pd.DataFrame | None:
    """A derived Parquet file beside the checkpoint (e.g. `drift`), or None when it has not been built."""
    p = Path(model_dir) / f"{name}.parquet"
    if not p.is_file():
        return None
    return _read_parquet(str(p), p.stat().st_mtime_ns)


_CHANGED_COLUMNS = ["user_id", "largest_change", "shift", "n_events", "mostly_bulk"]


@dataclass(frozen=True)
class ChangedMost:
    """The "interests changed most" list of one model's drift summaries (what the User explorer shows)."""

    table: pd.DataFrame = field(default_factory=pd.DataFrame)  # top rows by largest change, then user id; columns
    # user_id, largest_change, shift, n_events, mostly_bulk; stored user ids (not pseudonyms)
    n_changed: int = 0  # users with at least one change point
    n_users: int = 0  # users summarised
    n_bulk: int = 0  # users who entered most of their history in bulk
    outdated: bool = False  # the summaries predate `largest_change` (rebuild with `interestlens drift`)


def changed_most(model_dir: Path, top: int) -> ChangedMost | None:
    """The `top` users whose interests changed most, from `drift.parquet` beside the model (None when absent).

    Cached as the small result, keyed by the file's modification time: returning the whole drift frame from
    `st.cache_data` unpickled a copy of it on every run (most of this panel's time on ML-100k, docs/serving-cpu.md)."""
    p = Path(model_dir) / "drift.parquet"
    if not p.is_file():
        return None
    return _changed_most(str(p), p.stat().st_mtime_ns, top)


@st.cache_data(show_spinner=False, max_entries=8)
def _changed_most(path: str, mtime_ns: int, top: int) -> ChangedMost:
    drift = pd.read_parquet(path)
    if "largest_change" not in drift.columns:
        return ChangedMost(n_users=len(drift), outdated=True)
    changed = drift[drift["largest_change"] > 0]
    table = changed.sort_values(["largest_change", "user_id"], ascending=[False, True]).head(top)[_CHANGED_COLUMNS]
    return ChangedMost(table.reset_index(drop=True), len(changed), len(drift), int(drift["mostly_bulk"].sum()))
