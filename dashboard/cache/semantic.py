"""Item semantics for the app: what can be shown (`core.semantic.semantic_status`), the cached item vectors, the
text encoder, and the cached calls behind interests in words, search by meaning and similar items.

The app never encodes the catalogue itself (tens of seconds on a CPU): it reads the vectors cached beside the
database (`interestlens semantic encode`) and says in one sentence what to run when they are missing or out of date.
Free-text queries need the encoder that made the vectors: the packaged one (the `semantic` extra, loaded once per
process) or one registered with `register_text_encoder` (a process that embeds the app, e.g. a test with a tiny
encoder). Without either, everything that needs no query still works from the cached vectors.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from core.errors import InterestLensError
from dashboard import demo
from dashboard.cache.handles import DbRef, ModelRef
from dashboard.cache.resources import loaded_model
from dashboard.reader import READER

if TYPE_CHECKING:  # core.semantic loads torch and the encoder's packages: imported where a call needs it
    from core.semantic import Match, TextEncoder, TextVectors, UserInterestWords, UserMatch

__all__ = [
    "SemanticView",
    "status",
    "register_text_encoder",
    "text_encoder",
    "vectors",
    "unregister_text_encoder",
    "similar",
    "search_items",
    "interest_words",
    "search_users",
]

log = logging.getLogger(__name__)

_ENCODERS: dict[str, TextEncoder] = {}  # encoder name -> a TextEncoder registered by the embedding process
_LOCK = threading.Lock()


@dataclass(frozen=True)
class SemanticView:
    """What the semantic panels may show now, and the sentence to show where they cannot."""

    vectors_path: Path
    vectors_stamp: int  # mtime_ns of the vectors file (0 when absent)
    encoder: str | None  # the encoder that made the cached vectors
    describe: bool  # interests in words and similar items: up-to-date vectors are cached
    search: bool  # free-text search: the vectors and the encoder that made them are both at hand
    message: str | None  # one sentence where something cannot be shown


def register_text_encoder(encoder: TextEncoder) -> None:
    """Make a `core.semantic.TextEncoder` available to the app's free-text search under its `name`."""
    with _LOCK:
        _ENCODERS[str(encoder.name)] = encoder


def unregister_text_encoder(name: str) -> None:
    with _LOCK:
        _ENCODERS.pop(str(name), None)


@st.cache_resource(show_spinner="Loading the text encoder…", max_entries=1)
def _packaged_encoder() -> TextEncoder:
    from core.semantic import load_encoder

    return load_encoder("cpu")


def text_encoder(name: str) -> TextEncoder:
    """The encoder called `name`: a registered one, else the installed one (SemanticUnavailable without it)."""
    with _LOCK:
        found = _ENCODERS.get(str(name))
    return found if found is not None else _packaged_encoder()


@st.cache_data(show_spinner=False, max_entries=16)
def _status(db: str, db_stamp: tuple, vectors_stamp: int, registered: tuple[str, ...]) -> SemanticView:
    from core.semantic import DEFAULT_ENCODER, default_vectors_path, read_vectors, semantic_status

    s = semantic_status(db)
    name = None
    if s.cached:
        try:
            name = read_vectors(s.vectors_path).encoder
        except InterestLensError:
            name = None
    cmd = f"`interestlens semantic encode --db {db}`"
    installed = s.encoder_installed and name == DEFAULT_ENCODER
    search = s.fresh and (name in registered or installed)
    if not s.fresh:
        what = "are out of date (the items changed)" if s.cached else "have not been computed"
        message = (f"Interests in words, similar items and search by meaning need the item text vectors, which {what}: "
                   f"run {cmd}." if s.encoder_installed else f"{s.message} Encode them with {cmd}.")
    elif not search and s.encoder_installed:
        message = f"The item vectors were made by the encoder {name}; for search by meaning encode them again with {cmd}."
    else:
        message = None if search else s.message
    return SemanticView(default_vectors_path(db), vectors_stamp, name, s.fresh, search, message)


def status(db: DbRef) -> SemanticView:
    """What semantics can show for `db` now (cached per database and vectors stamp)."""
    from core.semantic import default_vectors_path

    p = default_vectors_path(db.path)
    with _LOCK:
        registered = tuple(sorted(_ENCODERS))
    return _status(db.path, db.stamp, p.stat().st_mtime_ns if p.exists() else 0, registered)


@st.cache_resource(show_spinner=False, max_entries=4)
def _vectors(path: str, mtime_ns: int) -> TextVectors:
    from core.semantic import read_vectors

    return read_vectors(path)


def vectors(view: SemanticView) -> TextVectors:
    """The cached `core.semantic.TextVectors` (read once per file version)."""
    return _vectors(str(view.vectors_path), view.vectors_stamp)


@st.cache_data(show_spinner=False, max_entries=256)
def similar(view: SemanticView, item_id: str, k: int) -> list[Match]:
    """`core.semantic.similar_items`: the k items whose text is nearest to this item's."""
    from core.semantic import similar_items

    return similar_items(vectors(view), str(item_id), int(k))


@st.cache_data(show_spinner=False, max_entries=64)
def search_items(view: SemanticView, query: str, k: int) -> pd.DataFrame:
    """`core.semantic.search_items` with the encoder that made the vectors, and why each matched
    (`core.semantic.match_reasons`). Columns: text, item_id, similarity, why."""
    from core.semantic import match_reasons, query_vector
    from core.semantic import search_items as core_search

    tv = vectors(view)
    encoder = text_encoder(tv.encoder)
    found = core_search(tv, query, encoder, int(k))
    reasons = match_reasons(tv, query_vector(query, encoder, tv), [m.key for m in found])
    return pd.DataFrame({"text": [m.text for m in found], "item_id": [m.key for m in found],
                         "similarity": [m.score for m in found], "why": [r.text() for r in reasons]})


@st.cache_data(show_spinner=False, max_entries=64)
def interest_words(db: DbRef, model: ModelRef, view: SemanticView, user_id: str, steps: tuple[int, ...]) -> UserInterestWords:
    """`core.semantic.describe_user` at the given steps: the terms and items nearest to the user's interest."""
    from core.semantic import describe_user
    from core.sequences import load_sequences

    loaded = loaded_model(model)
    with READER.cursor(db.path, db.stamp) as con, demo.stored_user(con, user_id) as uid:
        seqs = load_sequences(con, loaded.vocab, users=[uid])
    return demo.shown(describe_user(loaded, vectors(view), seqs, uid, steps=list(steps), k=5))


@st.cache_data(show_spinner=False, max_entries=64)
def search_users(db: DbRef, model: ModelRef, view: SemanticView, query: str, k: int) -> list[UserMatch]:
    """`core.semantic.search_users`: users whose current interest is nearest to the query."""
    from core.semantic import search_users as core_search
    from core.sequences import load_sequences

    loaded = loaded_model(model)
    tv = vectors(view)
    with READER.cursor(db.path, db.stamp) as con:
        seqs = load_sequences(con, loaded.vocab)
    return demo.shown(core_search(loaded, tv, seqs, query, text_encoder(tv.encoder), int(k)))
