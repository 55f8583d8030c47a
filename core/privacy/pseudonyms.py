"""Pseudonymous user ids for demo mode: a stable keyed hash of each id, the same on every page and in every link.

A pseudonym is `p-` and the first 16 hex digits of SHA-256(K ‖ user id), where K is the 64 hex digits of
SHA-256 of the demo key (a secret the server keeps; any text). K has a fixed length, so K ‖ id is unambiguous,
and without the key a pseudonym cannot be linked to an id. The hash is computed the same way by Python and by
DuckDB's `sha256`, so a pseudonym in a URL is resolved with one parameterised query over the users table.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass, field

import duckdb

__all__ = ["DEMO_ENV", "DEMO_KEY_ENV", "PREFIX", "Pseudonymizer", "demo_from_env", "demo_enabled", "new_demo_key"]

DEMO_ENV = "INTERESTLENS_DEMO"  # "1" turns demo mode on (`interestlens serve --demo-mode` sets it)
DEMO_KEY_ENV = "INTERESTLENS_DEMO_KEY"  # the secret behind the pseudonyms (stable links across restarts)
PREFIX = "p-"
_DIGITS = 16  # 64 bits: collisions are negligible below billions of users
_TRUE = {"1", "true", "yes", "on"}


def new_demo_key() -> str:
    """A fresh random demo key (256 bits as hex)."""
    return secrets.token_hex(32)


@dataclass(frozen=True)
class Pseudonymizer:
    """Maps user ids to pseudonyms and back (through the database) under one secret key."""

    key: str = field(repr=False)  # the demo key (never shown)

    @property
    def _k(self) -> str:
        return hashlib.sha256(self.key.encode("utf-8")).hexdigest()

    def pseudonym(self, user_id: object) -> str:
        """The pseudonym of one user id (`p-` and 16 hex digits)."""
        text = self._k + str(user_id)
        return PREFIX + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:_DIGITS]

    def pseudonyms(self, user_ids) -> list[str]:
        """Pseudonyms of many ids, in order."""
        return [self.pseudonym(u) for u in user_ids]

    @staticmethod
    def looks_like(text: str) -> bool:
        """True when `text` has the shape of a pseudonym."""
        body = text[len(PREFIX) :]
        return text.startswith(PREFIX) and len(body) == _DIGITS and all(c in "0123456789abcdef" for c in body)

    def resolve(self, con: duckdb.DuckDBPyConnection, pseudonym: str) -> str | None:
        """The user id behind a pseudonym (None when no user of the database has it)."""
        if not self.looks_like(pseudonym):
            return None
        rows = con.execute(
            "SELECT user_id FROM users WHERE left(sha256(? || user_id), ?) = ? LIMIT 2",
            [self._k, _DIGITS, pseudonym[len(PREFIX) :]],
        ).fetchall()
        return str(rows[0][0]) if len(rows) == 1 else None


_PROCESS_KEY: list[str] = []  # a key made up once per process when demo mode is on without one


def demo_enabled() -> bool:
    """True when `$INTERESTLENS_DEMO` turns demo mode on."""
    return os.environ.get(DEMO_ENV, "").strip().lower() in _TRUE


def demo_from_env() -> Pseudonymizer | None:
    """The pseudonymizer when demo mode is on, else None.

    The key is `$INTERESTLENS_DEMO_KEY`; without one, a random key is made once per process, so pseudonyms stay
    the same while the server runs (and change when it restarts).
    """
    if not demo_enabled():
        return None
    key = os.environ.get(DEMO_KEY_ENV, "")
    if not key:
        if not _PROCESS_KEY:
            _PROCESS_KEY.append(new_demo_key())
        key = _PROCESS_KEY[0]
    return Pseudonymizer(key)
