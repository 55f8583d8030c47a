"""A social model's friend context, built once per user switch and shared by the explorer's view and its Friends
panel (and the Explain page's friend values), over the store's edges held once per database version.

Before, the explorer's view (`core.trajectory.user_view`) and the Friends panel (`core.social.evidence.
user_social_evidence`) each built the user's friend context: the user's edges and their friends' degrees, read
with scans of all edges and all events' user ids (`core.friends.graph.friend_degrees`), then the friends'
sequences and state timelines through the model. At 10M events / 1M edges that was ~0.8 s of CPU a switch
(docs/social_scale.md). Now:

- `edge_index(db)`: the edges in memory (`core.friends.index.EdgeIndex`), per `DbRef`, whose stamp changes with
  every commit; a new version refreshes the latest index held, which reads the edges again only when they changed
  (`core.friends.index.refresh_index`), then each ego graph is a lookup;
- `friend_context(db, model, con, user)`: the user's context (`core.friends.context.user_context` over that index),
  kept for the few users being looked at now, so the view and the panel of one switch share one.

Both are read only by their callers (never modified): the timelines are a model's outputs for those sequences.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

import duckdb

from core.errors import NotFoundError
from dashboard.cache.handles import DbRef, ModelRef
from dashboard.cache.resources import loaded_model

if TYPE_CHECKING:
    from core.friends.context import SocialContext
    from core.friends.index import EdgeIndex

__all__ = ["edge_index", "friend_context", "forget_contexts"]

# Contexts kept: one per user being looked at (the view and the panel of a switch ask within one page run). A
# context is the user's and ~20 friends' sequences and state timelines: ~0.4 MiB for ~70-event users with d 64,
# a few MiB for 700-event ones, so a handful of sessions' current users cost little.
_CONTEXTS = 16

_LOCK = threading.Lock()
_KEPT: OrderedDict[tuple, tuple[SocialContext, int]] = OrderedDict()


# The edges held per database file: the index of the latest versions asked for (the version being read and the
# one before it while sessions move over), each a (file stamp, index) pair.
_VERSIONS = 2
_INDEXES: dict[str, OrderedDict[tuple, EdgeIndex]] = {}
_INDEX_LOCK = threading.Lock()


def edge_index(db: DbRef, con: duckdb.DuckDBPyConnection) -> EdgeIndex:
    """`core.friends.index.edge_index` of the database as of `db` (read through `con`, a cursor on that very
    version), shared by every session. A new version (every commit gives the file a new stamp) starts from the
    index of the latest version held (`core.friends.index.refresh_index`): the edges are read again only when they
    changed, so live mode's commits of events do not rebuild it."""
    from core.friends.index import edge_index as core_edge_index
    from core.friends.index import refresh_index

    with _INDEX_LOCK:  # one build at a time: a second session waits for the index instead of building its own
        held = _INDEXES.setdefault(db.path, OrderedDict())
        stamp = tuple(db.stamp)
        if stamp in held:
            held.move_to_end(stamp)
            return held[stamp]
        index = refresh_index(con, next(reversed(held.values()))) if held else core_edge_index(con)
        held[stamp] = index
        while len(held) > _VERSIONS:
            held.popitem(last=False)
        return index


def friend_context(db: DbRef, model: ModelRef, con: duckdb.DuckDBPyConnection,
                   user_id: str) -> tuple[SocialContext, int] | None:  # fmt: skip
    """The friend context of stored user `user_id` (the real id, not a demo pseudonym) and their row in it, for a
    model with the social branch; None for a model without it or a user without events (the callers' own paths
    then say why). `con` is a cursor on the database as of `db`."""
    from core.friends.context import user_context

    loaded = loaded_model(model)
    if loaded.model is None or getattr(loaded.model, "social", None) is None:
        return None
    key = (db, model, str(user_id))
    with _LOCK:
        if key in _KEPT:
            _KEPT.move_to_end(key)
            return _KEPT[key]
    try:
        built = user_context(con, loaded.model, loaded.vocab, str(user_id), edges=edge_index(db, con))
    except NotFoundError:
        return None
    with _LOCK:
        _KEPT[key] = built
        while len(_KEPT) > _CONTEXTS:
            _KEPT.popitem(last=False)
    return built


def forget_contexts() -> None:
    """Drop the kept contexts and edge indexes (tests; a new process starts the same way)."""
    with _LOCK:
        _KEPT.clear()
    with _INDEX_LOCK:
        _INDEXES.clear()
