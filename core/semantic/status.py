"""What semantic features can show right now, and the one sentence to show where they cannot (app and CLI)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from core.errors import InterestLensError, NextStep
from core.semantic.encoder import INSTALL_HINT, encoder_available
from core.semantic.text import item_texts
from core.semantic.vectors import default_vectors_path, read_vectors
from core.store import connect_read

__all__ = ["SemanticStatus", "semantic_status"]


@dataclass(frozen=True)
class SemanticStatus:
    """Whether the encoder is installed and the item vectors cached beside the database are up to date."""

    encoder_installed: bool  # the `semantic` extra is installed (free-text queries, encoding new texts)
    vectors_path: Path
    cached: bool  # a readable vector cache exists
    fresh: bool  # and it matches the items' current texts
    message: str | None  # what to tell the analyst where semantics would appear; None when everything works
    next_step: NextStep | None = None  # "encode_texts" when the vectors are missing or stale (each app words it)

    @property
    def can_describe(self) -> bool:
        """Similar items, interests in words and model fusion can be shown (up-to-date vectors, or an encoder)."""
        return self.fresh or self.encoder_installed

    @property
    def can_search(self) -> bool:
        """Free-text queries need the encoder itself."""
        return self.encoder_installed


def semantic_status(db: str | os.PathLike | None = None) -> SemanticStatus:
    """Check the extra and the cache of `db` without loading the encoder (reads the items' texts)."""
    installed = encoder_available()
    path = default_vectors_path(db)
    cached = fresh = False
    if path.exists():
        try:
            tv = read_vectors(path)
            cached = True
            with connect_read(db) as con:
                fresh = tv.fingerprint == item_texts(con).fingerprint(tv.encoder)
        except InterestLensError:
            cached = False
    if installed:
        message = None
    elif fresh:
        message = f"Free-text search needs the text encoder: {INSTALL_HINT}."
    else:
        message = (
            f"Item semantics (search by meaning, interests in words) need the text encoder: {INSTALL_HINT}; "
            "then the item texts need encoding."
        )
    return SemanticStatus(installed, path, cached, fresh, message, None if fresh else "encode_texts")
