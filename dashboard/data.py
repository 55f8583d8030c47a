"""The app's only way to the data: where the database and models are, cached query results, the loaded model.

Connection policy: DuckDB lets one writing process or many reading processes hold a file, never both. The app
therefore never keeps a connection while it is idle: queries run on `dashboard.reader.READER`, one read-only
connection (`core.store.connect_read`, which retries for a bounded time while a writer holds the file) shared by
the queries of a burst and closed a second after the last one. Results are kept with
`st.cache_data`, keyed by the database path and its file stamp (size and modification time of the file and its
WAL), so a new ingest shows up on the next rerun and an unchanged file is never reopened for a repeated view.
Only the loaded model (immutable files) is an `st.cache_resource`.

Model-backed results (`model_call`) are keyed by the checkpoint folder and its weights' stamp as well, so
switching models in the sidebar never shows another model's numbers.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd
import streamlit as st

from core import live
from core.errors import InterestLensError
from core.store import default_db_path, queries, views
from dashboard import calls, demo
from dashboard.reader import READER, file_stamp

__all__ = [
    "db_path",
    "db_stamp",
    "version",
    "release",
    "query",
    "models_root",
    "list_models",
    "active_model_dir",
    "read_card",
    "optional",
    "load_model",
    "model_call",
    "model_calls",
    "model_parquet",
    "path_call",
]

log = logging.getLogger(__name__)

# Every query a page may run: name -> function(con, *args). Pages pass names, so cached keys stay hashable.
_QUERIES = {
    "dataset_summary": queries.dataset_summary,
    "list_users": queries.list_users,
    "user_history": queries.user_history,
    "events_over_time": queries.events_over_time,
    "category_share_over_time": queries.category_share_over_time,
    "top_items": queries.top_items,
    "activity_distribution": queries.activity_distribution,
    "item_lookup": queries.item_lookup,
    "user_attribute_keys": queries.user_attribute_keys,
    "user_exists": views.user_exists,
    "user_attributes": views.user_attributes,
    "attribute_values": views.attribute_values,
    "cohort_sizes": views.cohort_sizes,
    "cohort_category_share": views.cohort_category_share,
    "model_fit": views.model_fit,
    "ingest_runs": views.ingest_runs,
    "run_rejects": views.run_rejects,
    "events_since": live.events_since,
}

# Model-backed calls: name -> "module:function"; each is called as function(loaded, con, *args). They live in
# core capabilities that may not be in this build yet, so they are imported when first used.
_MODEL_CALLS = {
    "recommend": "dashboard.calls:recommend",
    "trajectory": "dashboard.calls:trajectory",
    "user_view": "dashboard.calls:user_view",
    "attention": "dashboard.calls:attention",
    "explain": "dashboard.calls:explain",
    "periods": "dashboard.calls:periods",
    "deletion": "dashboard.calls:deletion",
    "interest_words": "dashboard.semantic:interest_words",
    "search_users": "dashboard.semantic:search_users",
    "what_if": "dashboard.calls:what_if",
    "cohort_trajectories": "dashboard.calls:cohort_trajectories",
}
# Calls that open the database and the model themselves: name -> "module:function", called as fn(db, model_dir, *args).
_PATH_CALLS = {
    "fairness": "dashboard.calls:fairness",
}


def db_path() -> Path:
    """The database the app reads: $INTERESTLENS_DB (set by `interestlens serve --db`), else the default."""
    return default_db_path().resolve()


def db_stamp(path: Path) -> tuple[int, int, int]:
    """(size, mtime_ns of the file, mtime_ns of its WAL) — changes whenever a writer commits."""
    return file_stamp(path)


@st.cache_data(show_spinner=False, max_entries=64)
def _cached_version(db: str, stamp: tuple[int, int, int]) -> live.DataVersion:
    with READER.cursor(db, stamp) as con:
        return live.data_version(con)


def version() -> live.DataVersion:
    """`core.live.data_version` of the app's database: which ingest runs it holds. The file is opened only when
    its stamp changed, so a live view that polls this every few seconds costs a `stat` while nothing arrives."""
    path = db_path()
    return _cached_version(str(path), db_stamp(path))


def release() -> None:
    """Close the shared read connection now (live views: no connection is held between refreshes, so a writer
    never waits for the app's idle timeout)."""
    READER.close()


@st.cache_data(show_spinner=False, max_entries=512)
def _cached_query(name: str, db: str, stamp: tuple[int, int, int], args: tuple, kwargs: tuple) -> Any:
    with READER.cursor(db, stamp) as con:
        return demo.wrap_query(name, _QUERIES[name])(con, *args, **dict(kwargs))  # pseudonyms in demo mode


def query(name: str, *args: Any, **kwargs: Any) -> Any:
    """Run a named read query against the app's database (opened read-only for this call only), cached."""
    path = db_path()
    return _cached_query(name, str(path), db_stamp(path), tuple(args), tuple(sorted(kwargs.items())))


def models_root() -> Path:
    """Where checkpoints live (`core.checkpoint.models_root`), as an absolute path."""
    from core.checkpoint import models_root as core_models_root

    return core_models_root().resolve()


def _is_model(path: Path) -> bool:
    """A checkpoint of ours or a registered external model (`core.external`)."""
    return (path / "model.safetensors").is_file() or (path / "external.json").is_file()


def list_models() -> list[Path]:
    """Checkpoint folders under `models_root()`, newest first (`core.checkpoint.list_checkpoints`), then the
    registered external models by name."""
    from core.checkpoint import list_checkpoints
    from core.external import list_models as all_models

    found = [p.resolve() for p in list_checkpoints(models_root())]
    found += [m.path.resolve() for m in all_models(models_root()) if m.kind != "interestlens"]
    env = os.environ.get("INTERESTLENS_MODEL")
    if env and _is_model(Path(env)) and Path(env).resolve() not in found:
        found.insert(0, Path(env).resolve())
    return found


def active_model_dir() -> Path | None:
    """The model chosen in the sidebar, else $INTERESTLENS_MODEL, else the newest checkpoint trained on the app's
    database (else the newest), else None."""
    chosen = st.session_state.get("sidebar_model")
    if chosen and _is_model(Path(chosen)):
        return Path(chosen)
    env = os.environ.get("INTERESTLENS_MODEL")
    if env and _is_model(Path(env)):
        return Path(env).resolve()
    models = list_models()
    path = db_path()
    if models and path.exists():  # the newest model trained on this database, when there is one
        stamp = db_stamp(path)
        for m in models:
            vocab = m / "vocab.json"
            try:
                if vocab.is_file() and _fits(str(m), vocab.stat().st_mtime_ns, str(path), stamp):
                    return m
            except (InterestLensError, OSError):  # a busy or damaged database: the pages say so themselves
                break
    return models[0] if models else None


@st.cache_data(show_spinner=False, max_entries=64)
def _fits(model: str, vocab_mtime_ns: int, db: str, stamp: tuple[int, int, int]) -> bool:
    """`core.checkpoint.model_fits`, cached until the vocabulary or the database changes."""
    from core.checkpoint import model_fits

    with READER.cursor(db, stamp) as con:
        return model_fits(model, con)


@st.cache_data(show_spinner=False, max_entries=64)
def _read_json(path: str, mtime_ns: int) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_card(model_dir: Path) -> dict:
    """The checkpoint's JSON files by name (metrics, fingerprint, config, vocab); absent or damaged files are {}."""
    out = {}
    for name in ("metrics", "fingerprint", "config", "vocab"):
        p = model_dir / f"{name}.json"
        try:
            out[name] = _read_json(str(p), p.stat().st_mtime_ns) if p.is_file() else {}
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            out[name] = {}
    return out


def optional(module: str) -> ModuleType | None:
    """Import a core capability if this build has it (None while it is not there yet or fails to import)."""
    try:
        return importlib.import_module(module)
    except Exception as exc:  # a capability still being written must not break the other pages
        log.info("capability %s unavailable: %s", module, exc)
        return None


def _model_stamp(model_dir: Path) -> int:
    weights = model_dir / "model.safetensors"
    return (weights if weights.is_file() else model_dir / "external.json").stat().st_mtime_ns


@st.cache_resource(show_spinner="Loading the model…", max_entries=4)
def _load_model(model_dir: str, mtime_ns: int) -> Any:
    import torch

    from core.checkpoint import load_checkpoint

    torch.set_num_threads(calls.APP_TORCH_THREADS)
    return load_checkpoint(model_dir, "cpu")


def load_model(model_dir: Path) -> Any:
    """`core.checkpoint.load_checkpoint(dir)` (a LoadedModel), cached per checkpoint and weights stamp."""
    return _load_model(str(model_dir), _model_stamp(model_dir))


def _resolve(name: str) -> Callable[..., Any]:
    module, _, attr = {**_MODEL_CALLS, **_PATH_CALLS}[name].partition(":")
    return demo.wrap_call(name, getattr(importlib.import_module(module), attr))  # pseudonyms in demo mode


def model_calls(name: str) -> Callable[..., Any]:
    """The uncached function behind `model_call(name, …)` (for benchmarks and tests)."""
    return _resolve(name)


@st.cache_data(show_spinner=False, max_entries=256)
def _cached_model_call(
    name: str, model_dir: str, model_stamp: int, db: str, stamp: tuple[int, int, int], args: tuple
) -> Any:
    loaded = _load_model(model_dir, model_stamp)
    with READER.cursor(db, stamp) as con:
        return _resolve(name)(loaded, con, *args)


def model_call(name: str, model_dir: Path, *args: Any) -> Any:
    """A model-backed result (recommendations, trajectory, attention, explanation…), cached per model and data."""
    path = db_path()
    return _cached_model_call(name, str(model_dir), _model_stamp(model_dir), str(path), db_stamp(path), tuple(args))


@st.cache_data(show_spinner=False, max_entries=32)
def _cached_path_call(
    name: str, model_dir: str, model_stamp: int, db: str, stamp: tuple[int, int, int], args: tuple
) -> Any:
    return _resolve(name)(db, model_dir, *args)


def path_call(name: str, model_dir: Path, *args: Any) -> Any:
    """A result computed from the database and model folder by a core function that opens them itself (e.g. the
    fairness report), cached per model and data."""
    path = db_path()
    return _cached_path_call(name, str(model_dir), _model_stamp(model_dir), str(path), db_stamp(path), tuple(args))


@st.cache_data(show_spinner=False, max_entries=32)
def _read_parquet(path: str, mtime_ns: int) -> pd.DataFrame:
    return pd.read_parquet(path)


def model_parquet(model_dir: Path, name: str) -> pd.DataFrame | None:
    """A derived Parquet file beside the checkpoint (e.g. `drift`), or None when it has not been built."""
    p = model_dir / f"{name}.parquet"
    if not p.is_file():
        return None
    return _read_parquet(str(p), p.stat().st_mtime_ns)
