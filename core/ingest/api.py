"""`ingest`: read a source in one of the preset formats into the event store, in one transaction."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from core.errors import SettingError, UserInputError
from core.ingest.presets import IngestOptions, get_preset
from core.ingest.result import ColumnMapping, IngestResult
from core.ingest.run import execute_run
from core.ingest.stage import Offset, Progress, Run, Stage

__all__ = ["ingest"]


def ingest(
    db: str | os.PathLike | duckdb.DuckDBPyConnection | None,
    preset: str,
    source: str | os.PathLike,
    *,
    mapping: ColumnMapping | None = None,
    meta: str | os.PathLike | None = None,
    progress: Progress | None = None,
    state: dict[str, str] | None = None,
    offset: Offset | None = None,
    label: str | None = None,
    write_timeout_s: float = 10.0,
) -> IngestResult:
    """Ingest `source` with the named preset; every accepted row lands, or nothing changes.

    Parameters
    ----------
    db : the database path (default `$INTERESTLENS_DB` or `data/interestlens.duckdb`) or an open writer.
    preset : a name from `core.ingest.presets.preset_names()`.
    source : a file or folder, as the preset describes (`PRESETS[name].source`).
    mapping : generic only: which columns hold the user, item, time, etc.
    meta : amazon-reviews only: the metadata file (default: `meta_<name>` beside the reviews, if present).
    state : rows for the `meta` table, written in the same transaction as the events (live ingest keeps its
        position in a source there, so the position advances exactly when the batch lands).
    offset : the rows and lines of the whole source before `source` when it is a chunk of a longer file.
    label : what `ingest_runs.source` records (default: the path).
    write_timeout_s : how long to wait for a database held by another process before giving up (`StoreError`).

    Returns the run's counts: `accepted + duplicates` valid rows, `rejected` rows in `rejects` with reasons.
    Raises `UserInputError` (one sentence) for a missing file, an unknown preset or format, missing
    required columns, or a file that cannot be read at all; the database is then unchanged apart from
    the `ingest_runs` row recording the failure.
    """
    p = get_preset(preset)
    if mapping is not None and p.name != "generic":
        raise SettingError("Column mapping options apply only when {preset} is generic, not {name}.", "preset", name=p.name)
    if meta is not None and p.name != "amazon-reviews":
        raise SettingError("{meta} applies only when {preset} is amazon-reviews, not {name}.", ("meta", "preset"),
                           name=p.name)
    path = Path(source).expanduser()
    if not path.exists():
        raise UserInputError(f"The source {path} does not exist; {p.name} expects {p.source}.")
    options = IngestOptions(mapping=mapping, meta=Path(meta).expanduser() if meta is not None else None)

    def build(run: Run) -> Stage:
        return p.load(run, path, options)

    return execute_run(
        db, source=label or str(path), preset=p.name, build=build, progress=progress, state=state, offset=offset,
        write_timeout_s=write_timeout_s,
    )
