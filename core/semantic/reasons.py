"""Why a search result matched: the terms (categories, tags) of the result nearest to the query.

A match by meaning has no shared keyword to point at, so the reason given is the result's own terms ranked by how
close each is to the query in the same text space, with that closeness. Shapes: M terms, d text width.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.semantic.vectors import TextVectors

__all__ = ["MatchReason", "match_reasons"]


@dataclass(frozen=True)
class MatchReason:
    """The terms of one result nearest to the query, best first, with their cosine similarity to it."""

    key: str  # the result's item id
    terms: tuple[tuple[str, float], ...]  # (term, similarity to the query)

    def text(self) -> str:
        """'near "Sci-Fi" (0.71), "Space" (0.64)', or 'its wording as a whole' when none of its terms is known."""
        if not self.terms:
            return "its wording as a whole"
        return "near " + ", ".join(f"“{t}” ({s:.2f})" for t, s in self.terms)


def match_reasons(tv: TextVectors, query: np.ndarray, keys: list[str], top: int = 2) -> list[MatchReason]:
    """For each item id in `keys`, its terms (category names and tags appearing in its text) nearest to `query` [d].

    An item's terms are the catalogue terms its text contains (case-insensitive, whole words); each is scored by the
    cosine of its vector with the query, and the `top` best are kept.
    """
    q = np.asarray(query, dtype=np.float32)
    q = q / max(float(np.linalg.norm(q)), 1e-12)
    sims = tv.term_vectors @ q  # [M]
    lowered = [t.lower() for t in tv.terms]
    out = []
    for key in keys:
        words = f" {tv.texts[tv.row(key)].lower()} "
        found = [m for m, t in enumerate(lowered) if t and _has_word(words, t)]
        found.sort(key=lambda m: -float(sims[m]))
        out.append(MatchReason(str(key), tuple((tv.terms[m], float(sims[m])) for m in found[:top])))
    return out


def _has_word(text: str, term: str) -> bool:
    """`term` appears in `text` between non-alphanumeric characters (so "War" is not found in "Warm")."""
    start = text.find(term)
    while start >= 0:
        before, after = text[start - 1], text[start + len(term) : start + len(term) + 1]
        if not before.isalnum() and not after.isalnum():
            return True
        start = text.find(term, start + 1)
    return False
