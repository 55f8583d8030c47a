"""Build a database from a built-in dataset: `interestlens build --dataset synthetic|movielens-100k`."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from core.datasets.synthetic import generate
from core.datasets.truth import truth_dir
from core.ingest.frames import ingest_frames
from core.ingest.result import IngestResult
from core.ingest.stage import Progress
from core.store import default_db_path

__all__ = ["build_synthetic", "ingest_dataset"]


def build_synthetic(
    db: str | os.PathLike | None,
    users: int = 2000,
    items: int = 1000,
    events: int = 100_000,
    seed: int = 0,
    categories: int = 12,
    progress: Progress | None = None,
    single_category: bool = False,
) -> IngestResult:
    """Generate the synthetic log, ingest it in one run and save its planted truth to `<db>.truth/`.

    The truth is written only after the ingest committed, so a failed build leaves no truth behind.
    """
    path = default_db_path(db)
    ds = generate(users=users, items=items, events=events, categories=categories, seed=seed,
                  single_category=single_category)
    return ingest_dataset(path, ds, progress)


def ingest_dataset(path: Path, ds, progress: Progress | None = None) -> IngestResult:
    """Ingest a generated log (`SyntheticDataset` or `core.datasets.planted.generate_planted`) in one run and save
    its planted truth to `<db>.truth/`."""
    p = ds.params
    item_cols = ds.items[["item_id", "title", "categories", "primary_category"]]
    result = ingest_frames(
        path,
        ds.events,
        ds.users,
        item_cols,
        context=("device",),
        source=f"{ds.name}(" + ", ".join(f"{k}={v}" for k, v in p.items()) + ")",
        preset="synthetic",
        progress=progress,
    )
    folder = truth_dir(path)
    tmp = Path(str(folder) + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    ds.truth.save(tmp)
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return result
