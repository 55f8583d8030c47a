"""Item texts from the store: what the text encoder reads for each item, and a fingerprint of them.

An item's text joins, in this order: its title, its categories (genres), and the text-like attributes it has
(`TEXT_ATTRIBUTES`: tags, description, review text, ...), e.g.
"Toy Story. Animation, Children's, Comedy. Year: 1995. Tags: pixar, toys". Terms are the distinct category names and
tags: the words an interest is described with.

The fingerprint covers every item id, every text and every term, so cached vectors are reused exactly while the
catalogue's text is unchanged.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import duckdb

__all__ = ["TEXT_ATTRIBUTES", "MAX_TEXT_CHARS", "ItemTexts", "item_texts", "compose_text", "text_hash"]

# Attribute keys read as free text, in the order they are appended ("tags" also yields terms).
TEXT_ATTRIBUTES: tuple[str, ...] = (
    "tags",
    "genres",
    "release_year",
    "year",
    "brand",
    "main_cat",
    "description",
    "overview",
    "plot",
    "summary",
    "review_text",
    "reviews",
)
MAX_TEXT_CHARS = 2000  # longer texts are cut (the encoder reads at most 256 tokens anyway)
_LABELS = {
    "tags": "Tags",
    "genres": "Genres",
    "release_year": "Year",
    "year": "Year",
    "brand": "Brand",
    "main_cat": "Department",
}
_SPLIT_TAGS = re.compile(r"[|,;]")


@dataclass
class ItemTexts:
    """The text of every item in the store, and the terms (categories, tags) interests are described with."""

    item_ids: list[str]  # every item of the `items` table, sorted by id
    texts: list[str]  # [N] the composed text of each item ("" when it has none)
    terms: list[str]  # distinct category names and tags, sorted

    def fingerprint(self, encoder: str) -> str:
        """sha256 of the encoder name, every (item id, text) pair and every term."""
        h = hashlib.sha256(encoder.encode())
        for item_id, text in zip(self.item_ids, self.texts, strict=True):
            h.update(b"\x00i" + item_id.encode() + b"\x00" + text.encode())
        for term in self.terms:
            h.update(b"\x00t" + term.encode())
        return h.hexdigest()


def text_hash(text: str) -> str:
    """Stable hash of one text (the cache reuses a vector when the same text comes back)."""
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _tags(value: str) -> list[str]:
    return [t.strip() for t in _SPLIT_TAGS.split(value) if t.strip()]


def compose_text(title: str | None, categories: list[str] | None, attributes: dict[str, str] | None) -> str:
    """One item's text: title, categories, then the text attributes it has (see the module docstring)."""
    parts = []
    if title and title.strip():
        parts.append(title.strip())
    cats = [c for c in (categories or []) if c]
    if cats:
        parts.append(", ".join(cats))
    attributes = attributes or {}
    for key in TEXT_ATTRIBUTES:
        value = attributes.get(key)
        if value is None or not str(value).strip():
            continue
        value = str(value).strip()
        if key in ("tags", "genres"):
            value = ", ".join(_tags(value))
        label = _LABELS.get(key)
        parts.append(f"{label}: {value}" if label else value)
    text = ". ".join(p.rstrip(".") for p in parts)
    return text[:MAX_TEXT_CHARS]


def item_texts(con: duckdb.DuckDBPyConnection) -> ItemTexts:
    """The texts of all items in the store (read-only; nothing is written)."""
    rows = con.execute(
        "SELECT item_id, title, categories, attributes FROM items ORDER BY item_id"
    ).fetchall()
    ids, texts, terms = [], [], set()
    for item_id, title, categories, attributes in rows:
        attrs = dict(attributes) if isinstance(attributes, dict) else {}
        cats = [str(c) for c in (categories or []) if c is not None]
        ids.append(str(item_id))
        texts.append(compose_text(title, cats, attrs))
        terms.update(cats)
        if attrs.get("tags"):
            terms.update(t.lower() for t in _tags(str(attrs["tags"])))
    return ItemTexts(ids, texts, sorted(terms))
