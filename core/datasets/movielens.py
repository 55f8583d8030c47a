"""MovieLens-100k from the files the `recbole` wheel ships (`recbole/dataset_example/ml-100k/`).

The files are found with `importlib.util.find_spec`, which locates the package without running it:
importing `recbole` fails on NumPy 2, and only its data files are needed.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path

from core.errors import NotFoundError
from core.ingest.api import ingest
from core.ingest.result import IngestResult
from core.ingest.stage import Progress

__all__ = ["INSTALL_HINT", "build_movielens_100k", "find_movielens_100k", "require_movielens_100k"]

INSTALL_HINT = "pip install --no-deps recbole==1.2.1"
_FILES = ("ml-100k.inter", "ml-100k.item", "ml-100k.user")


def find_movielens_100k(search_path: Sequence[str] | None = None) -> Path | None:
    """The folder holding RecBole's ml-100k atomic files, or None when recbole is not installed.

    `search_path` (folders to look in instead of `sys.path`) lets a caller check a particular environment.
    """
    try:
        if search_path is None:
            spec = importlib.util.find_spec("recbole")
        else:
            spec = importlib.machinery.PathFinder.find_spec("recbole", list(search_path))
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        folder = Path(root) / "dataset_example" / "ml-100k"
        if all((folder / name).is_file() for name in _FILES):
            return folder
    return None


def require_movielens_100k(search_path: Sequence[str] | None = None) -> Path:
    """The ml-100k folder, or a clear error saying how to install it."""
    folder = find_movielens_100k(search_path)
    if folder is None:
        raise NotFoundError(
            f"MovieLens-100k comes from the recbole wheel's files, which are not installed; run `{INSTALL_HINT}` "
            "(or `make install`) and try again."
        )
    return folder


def build_movielens_100k(db: str | os.PathLike | None, progress: Progress | None = None) -> IngestResult:
    """Ingest MovieLens-100k (943 users, 1,682 movies, 100,000 ratings) with the `movielens-100k` preset."""
    return ingest(db, "movielens-100k", require_movielens_100k() / "ml-100k.inter", progress=progress)
