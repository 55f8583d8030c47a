"""Nearest-neighbour search in text space: items like an item, items and users matching a free-text query.

Vectors are unit length, so similarity is the cosine (a dot product), in [-1, 1]. A user's current interest in
text space is the text vector of their interest (`core.semantic.describe.interest_text`), so users are found by
what the model believes they want next, not by what they did long ago.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.checkpoint import LoadedModel
from core.errors import InterestLensError, UserInputError
from core.semantic.describe import current_interest_text
from core.semantic.encoder import TextEncoder
from core.semantic.vectors import Match, TextVectors, nearest
from core.sequences import Sequences

__all__ = ["UserMatch", "query_vector", "similar_items", "search_items", "search_users"]


@dataclass(frozen=True)
class UserMatch:
    """A user whose current interest matches a query, with the cosine similarity."""

    user_id: str
    score: float


def query_vector(query: str, encoder: TextEncoder, tv: TextVectors) -> np.ndarray:
    """The unit vector of a free-text query [d], checked against the encoder the vectors came from."""
    if not query or not query.strip():
        raise UserInputError("The search text is empty; type a few words.")
    if encoder.name != tv.encoder or encoder.dim != tv.dim:
        raise InterestLensError(
            f"The item vectors were made by {tv.encoder} but the query encoder is {encoder.name}; encode the items again."
        )
    return encoder.encode([query.strip()])[0]


def similar_items(tv: TextVectors, item_id: str, k: int = 10) -> list[Match]:
    """The k items whose text is nearest to this item's (the item itself left out)."""
    r = tv.row(item_id)
    rows, sims = nearest(tv.vectors, tv.vectors[r], k, exclude=np.array([r]))
    return [Match(tv.item_ids[i], tv.texts[i], float(s)) for i, s in zip(rows, sims, strict=True)]


def search_items(tv: TextVectors, query: str, encoder: TextEncoder, k: int = 10) -> list[Match]:
    """The k items whose text is nearest to a free-text query ("space adventure", "kitchen appliances")."""
    rows, sims = nearest(tv.vectors, query_vector(query, encoder, tv), k)
    return [Match(tv.item_ids[i], tv.texts[i], float(s)) for i, s in zip(rows, sims, strict=True)]


def search_users(
    loaded: LoadedModel,
    tv: TextVectors,
    seqs: Sequences,
    query: str,
    encoder: TextEncoder,
    k: int = 10,
    batch_size: int = 256,
) -> list[UserMatch]:
    """The k users whose current interest (after their last event) is nearest to a free-text query."""
    q = query_vector(query, encoder, tv)
    users = current_interest_text(loaded, tv, seqs, batch_size=batch_size)  # [U, d]
    rows, sims = nearest(users, q, k)
    return [UserMatch(str(seqs.user_ids[r]), float(s)) for r, s in zip(rows, sims, strict=True)]
