"""Text vectors of every item (and of every term), cached in Parquet and recomputed only when texts change.

The cache is `text_vectors.parquet`, by default in `<db>.semantic/` beside the database (never inside it: the
events database is only read here) and copied beside a model trained with text. Its schema metadata holds the
fingerprint of the texts (`ItemTexts.fingerprint`): an unchanged fingerprint means the file is returned as it is
and the encoder is not even loaded. When texts did change, a vector is reused for every text the cache already
holds (same encoder, same text) and only new or edited texts are encoded.

Rows: kind ("item" or "term"), key (item id or term), text, text_hash, vector (float32 list of `dim`).
Items with no text get a zero vector.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from core.errors import InterestLensError, NotFoundError
from core.semantic.encoder import TextEncoder
from core.semantic.text import ItemTexts, item_texts, text_hash
from core.store import connect_read, default_db_path

__all__ = [
    "VECTORS_FILE",
    "TextVectors",
    "default_vectors_path",
    "read_vectors",
    "write_vectors",
    "encode_items",
    "Match",
    "nearest",
]

log = logging.getLogger(__name__)

VECTORS_FILE = "text_vectors.parquet"
_META_KEY = b"interestlens.text_vectors"
_FORMAT = 1


@dataclass
class TextVectors:
    """Unit-length text vectors of items and terms from one encoder."""

    item_ids: list[str]  # [N]
    texts: list[str]  # [N]
    vectors: np.ndarray  # [N, d] float32; zero rows for items without text
    terms: list[str]  # [M] category names and tags
    term_vectors: np.ndarray  # [M, d] float32
    encoder: str  # the encoder's name
    fingerprint: str  # ItemTexts.fingerprint(encoder)
    encoded: int = 0  # texts encoded to build this (0 = read from the cache as it was)
    seconds: float = 0.0  # time spent encoding

    def __post_init__(self) -> None:
        self._row = {k: n for n, k in enumerate(self.item_ids)}

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def row(self, item_id: str) -> int:
        """Row of an item id; NotFoundError when the item has no vector."""
        try:
            return self._row[str(item_id)]
        except KeyError:
            raise NotFoundError(f"There is no item {item_id!r} among the encoded items.") from None

    def has(self, item_id: str) -> bool:
        return str(item_id) in self._row

    def aligned(self, item_ids: list[str]) -> np.ndarray:
        """[len(item_ids) + 1, d] rows in model-index order (row 0 = padding, zero; unknown ids: zero)."""
        out = np.zeros((len(item_ids) + 1, self.dim), np.float32)
        for n, item_id in enumerate(item_ids):
            r = self._row.get(str(item_id))
            if r is not None:
                out[n + 1] = self.vectors[r]
        return out


@dataclass(frozen=True)
class Match:
    """One nearest neighbour: an item id or a term, its text, and its cosine similarity to the query."""

    key: str
    text: str
    score: float


def nearest(vectors: np.ndarray, query: np.ndarray, k: int, exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The k rows of `vectors` [N,d] most similar to `query` [d], best first (ties: lower row first).

    Rows in `exclude` (indices) and all-zero rows (no text) are left out. Returns (rows [k'], scores [k']).
    """
    if vectors.shape[0] == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    sims = vectors @ np.asarray(query, np.float32)  # [N]
    valid = np.abs(vectors).sum(1) > 0  # [N]
    if exclude is not None and len(exclude):
        valid[np.asarray(exclude, np.int64)] = False
    rows = np.flatnonzero(valid)
    order = rows[np.lexsort((rows, -sims[rows]))][:k]
    return order, sims[order]


def default_vectors_path(db: str | os.PathLike | None = None) -> Path:
    """`<db>.semantic/text_vectors.parquet` beside the database."""
    path = default_db_path(db)
    return Path(str(path) + ".semantic") / VECTORS_FILE


def write_vectors(tv: TextVectors, path: str | os.PathLike) -> Path:
    """Write the cache atomically (a temporary file renamed over `path`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n, m, d = len(tv.item_ids), len(tv.terms), tv.dim
    flat = np.concatenate([tv.vectors, tv.term_vectors]).astype(np.float32).reshape(-1)  # [(N+M)*d]
    texts = tv.texts + tv.terms
    table = pa.table(
        {
            "kind": pa.array(["item"] * n + ["term"] * m, pa.string()),
            "key": pa.array(tv.item_ids + tv.terms, pa.string()),
            "text": pa.array(texts, pa.string()),
            "text_hash": pa.array([text_hash(t) for t in texts], pa.string()),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.float32()), d),
        }
    )
    meta = {"format": _FORMAT, "encoder": tv.encoder, "fingerprint": tv.fingerprint, "dim": d}
    table = table.replace_schema_metadata({_META_KEY: json.dumps(meta).encode()})
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    pq.write_table(table, tmp)
    tmp.replace(path)
    return path


def read_vectors(path: str | os.PathLike) -> TextVectors:
    """Read a cache file; NotFoundError when absent, InterestLensError when damaged."""
    path = Path(path)
    if not path.exists():
        raise NotFoundError(f"There are no text vectors at {path}.", next_step="encode_texts")
    try:
        table = pq.read_table(path)
        meta = json.loads((table.schema.metadata or {})[_META_KEY])
        d = int(meta["dim"])
        kind = table.column("kind").to_pylist()
        keys = table.column("key").to_pylist()
        texts = table.column("text").to_pylist()
        vec = table.column("vector").combine_chunks()
        flat = vec.flatten().to_numpy(zero_copy_only=False) if len(vec) else np.zeros(0, np.float32)
    except (OSError, KeyError, ValueError, pa.ArrowException) as exc:
        raise InterestLensError(f"The text vectors at {path} are damaged ({exc.__class__.__name__}); delete the file.") from exc
    mat = np.asarray(flat, np.float32).reshape(len(keys), d)
    is_item = np.array([k == "item" for k in kind], bool)
    return TextVectors(
        item_ids=[k for k, i in zip(keys, is_item, strict=True) if i],
        texts=[t for t, i in zip(texts, is_item, strict=True) if i],
        vectors=mat[is_item],
        terms=[k for k, i in zip(keys, is_item, strict=True) if not i],
        term_vectors=mat[~is_item],
        encoder=str(meta["encoder"]),
        fingerprint=str(meta["fingerprint"]),
    )


def _encode_with_reuse(
    texts: list[str], cached: dict[str, np.ndarray], encoder: TextEncoder, batch_size: int
) -> tuple[np.ndarray, int]:
    """Vectors of `texts`: cached ones by text hash, the rest encoded (empty text: zero). ([N,d], encoded)"""
    hashes = [text_hash(t) for t in texts]
    todo = sorted({t for t, h in zip(texts, hashes, strict=True) if t and h not in cached})
    fresh = dict(zip([text_hash(t) for t in todo], encoder.encode(todo, batch_size=batch_size), strict=True))
    out = np.zeros((len(texts), encoder.dim), np.float32)
    for n, (t, h) in enumerate(zip(texts, hashes, strict=True)):
        if t:
            out[n] = fresh[h] if h in fresh else cached[h]
    return out, len(todo)


def encode_items(
    db: str | os.PathLike | None = None,
    encoder: TextEncoder | Callable[[], TextEncoder] | None = None,
    path: str | os.PathLike | None = None,
    batch_size: int = 64,
    encoder_name: str | None = None,
) -> TextVectors:
    """Text vectors of every item and term of the database, from the cache when its texts are unchanged.

    Parameters
    ----------
    db
        The database (read-only here).
    encoder
        A `TextEncoder`, or a function that loads one (called only when something must be encoded); None loads
        the packaged all-MiniLM-L6-v2 (`load_encoder`) when needed.
    path
        The cache file (default `default_vectors_path(db)`); written only when something was encoded.
    encoder_name
        The name of the encoder a loader will return, so a fresh cache is recognised without loading it. By
        default a cache made by any encoder is fresh while the texts are unchanged.

    Returns
    -------
    TextVectors
        `encoded` says how many texts were encoded now (0 when the cache was fresh).
    """
    from core.semantic.encoder import load_encoder

    with connect_read(db) as con:
        texts: ItemTexts = item_texts(con)
    path = Path(path) if path else default_vectors_path(db)
    old: TextVectors | None = None
    if path.exists():
        try:
            old = read_vectors(path)
        except InterestLensError as exc:
            log.warning("%s; encoding again", exc)
    # Without a named encoder, a cache from whichever encoder made it is fresh while the texts are unchanged.
    name = encoder.name if isinstance(encoder, TextEncoder) else encoder_name or (old.encoder if old else None)
    if old is not None and name == old.encoder and old.fingerprint == texts.fingerprint(name):
        log.info("text vectors of %d items are up to date in %s", len(old.item_ids), path)
        return old
    if encoder is None:
        enc = load_encoder()
    elif isinstance(encoder, TextEncoder):
        enc = encoder
    else:
        enc = encoder()
    name, fingerprint = enc.name, texts.fingerprint(enc.name)
    cached: dict[str, np.ndarray] = {}
    if old is not None and old.encoder == enc.name and old.dim == enc.dim:
        for t, v in zip(old.texts + old.terms, np.concatenate([old.vectors, old.term_vectors]), strict=True):
            cached[text_hash(t)] = v
    started = time.perf_counter()
    vectors, n_items = _encode_with_reuse(texts.texts, cached, enc, batch_size)
    term_vectors, n_terms = _encode_with_reuse(texts.terms, cached, enc, batch_size)
    seconds = time.perf_counter() - started
    tv = TextVectors(
        texts.item_ids, texts.texts, vectors, texts.terms, term_vectors, name, fingerprint, n_items + n_terms, seconds
    )
    try:
        write_vectors(tv, path)
    except OSError as exc:  # a read-only folder: the vectors are still usable, only not cached
        log.warning("text vectors could not be cached in %s (%s)", path, exc)
    log.info("encoded %d texts (%d reused) in %.1fs into %s", tv.encoded, len(texts.texts) + len(texts.terms)
             - tv.encoded, seconds, path)
    return tv
