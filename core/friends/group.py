"""One read of the store for a user and their friends: the events a friend context needs (as `Sequences`) and each
reader's dominant category now (what the Friends panel colours a friend by), from one scan of `events`.

A user switch with a social model needs, from the events table, the user's and their friends' events in model
indices (`core.sequences.load_sequences(con, vocab, users=...)`) and the friends' dominant categories over their
latest events (`core.social.communities.dominant_categories`). Each of those is a scan of the row groups that hold
any of these users (a dozen of the 82 at 10M events, whichever way the filter is written: DuckDB prunes row groups
by the user column's min/max, and one ingest run stores its events clustered by user); `read_group` reads them
once, with the items' categories, and maps ids to the vocabulary in memory (a dictionary lookup per event, instead
of registering the vocabulary as tables for every read).

Guarantees: `GroupRead.seqs` equals `load_sequences(con, vocab, users=users)` array for array, and
`GroupRead.dominant` equals `dominant_categories(con, users, last)` for every user asked (None for one without
categorised events among their latest `last`); tested in tests/core/test_friend_group.py.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import duckdb
import numpy as np

from core.sequences import Sequences, Vocab, assemble_sequences, user_runs

__all__ = ["GroupRead", "read_group", "DOMINANT_LAST"]

DOMINANT_LAST = 20  # latest events a user's dominant category is read over (`dominant_categories`' default)


@dataclass(frozen=True)
class GroupRead:
    """The events of a group of users and each one's dominant category now."""

    seqs: Sequences  # the users with events, sorted by id, in canonical event order
    dominant: dict[str, str | None]  # user id -> most frequent category over their latest `last` events


def read_group(con: duckdb.DuckDBPyConnection, vocab: Vocab, users: Sequence[str],
               last: int | None = DOMINANT_LAST) -> GroupRead:  # fmt: skip
    """The events of `users` in one query; those without events are left out of `seqs` (its `row` raises
    NotFoundError for them, as `load_sequences`' does) and have a None dominant category. `last` None: no dominant
    categories (every one None), and no read of the items."""
    ids = list(dict.fromkeys(str(u) for u in users))
    keys = list(vocab.context)
    ctx_cols = "".join(f", e.context[?] AS ctx{n}" for n in range(len(keys)))
    # the events in canonical order per user; the items' categories only on each user's latest `last` (what the
    # dominant category reads), so the result carries no list for older events
    if last is None:
        cats_col, joins, params = "NULL::VARCHAR[] AS categories", "", []
    else:
        cats_col = """CASE WHEN row_number() OVER (PARTITION BY e.user_id ORDER BY e.ts DESC, e.run_id DESC, e.seq DESC)
                      <= ? THEN i.categories END AS categories"""
        joins, params = "LEFT JOIN items i USING (item_id)", [int(last)]
    cur = con.cursor()  # a relation cannot run on a connection with an unfinished result (a caller's fetchone)
    try:
        table = cur.sql(
            f"""SELECT e.user_id, e.item_id, epoch(e.ts)::BIGINT AS ts, e.event_type{ctx_cols}, {cats_col}
                FROM events e {joins} WHERE e.user_id IN (SELECT unnest(?::VARCHAR[]))
                ORDER BY e.user_id, e.ts, e.run_id, e.seq""",
            params=[*keys, *params, ids],
        ).to_arrow_table()
    finally:
        cur.close()

    def column(name: str) -> np.ndarray:  # strings as objects, NULL as None
        return table.column(name).to_numpy(zero_copy_only=False)

    user_ids, offsets = user_runs(column("user_id").astype(object))
    n = int(offsets[-1])
    items = vocab.item_indices(column("item_id"))
    types = np.array([vocab.event_type_index(t) if t is not None else 0 for t in column("event_type")], np.int64)
    ctx = np.zeros((n, len(keys)), np.int64)
    for j, key in enumerate(keys):
        index = {v: i + 1 for i, v in enumerate(vocab.context[key])}
        ctx[:, j] = [index.get(v, 0) if v is not None else 0 for v in column(f"ctx{j}")]
    seqs = assemble_sequences(user_ids, offsets, items, column("ts").astype(np.int64), types, ctx)
    dominant: dict[str, str | None] = dict.fromkeys(ids)
    cats = table.column("categories").to_pylist()
    for r, user in enumerate(seqs.user_ids):
        dominant[str(user)] = _dominant(cats[offsets[r] : offsets[r + 1]])
    return GroupRead(seqs, dominant)


def _dominant(categories) -> str | None:
    """The category with the largest summed weight (an item's weight split equally over its categories; ties: the
    name first in order) over the rows that carry categories; exact sums, so ties are ties."""
    weight: dict[str, Fraction] = defaultdict(Fraction)
    for cs in categories:
        if not cs:
            continue
        share = Fraction(1, len(cs))
        for c in cs:
            if c is not None:
                weight[str(c)] += share
    return min(weight, key=lambda c: (-weight[c], c)) if weight else None
