"""Users' event sequences in model indices, and batches of history windows for the model.

The order of a user's events is the store's canonical order (`ORDER BY ts, run_id, seq`), the same for training,
explanations and replay. Sequences are held in CSR layout (flat numpy arrays plus per-user `offsets`), never as
Python objects per event.

Index conventions (they match `core.model`): item index = position in `Vocab.items` + 1 (0 = padding / an item
the model has never seen), event type index = position in `Vocab.event_types` + 1 (0 = unknown), context value
index = position in `Vocab.context[key]` + 1 (0 = unknown), category index = position in `Vocab.categories`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import duckdb
import numpy as np
import pandas as pd
import torch

from core.errors import NotFoundError
from core.model.batch import Batch, gap_bucket
from core.store.connection import StoreError
from core.store.queries import EVENT_ORDER
from core.store.source import user_predicate

__all__ = ["Vocab", "History", "Sequences", "build_vocab", "load_sequences", "make_batch", "data_fingerprint"]

log = logging.getLogger(__name__)


@dataclass
class Vocab:
    """What model indices mean; saved in every checkpoint as `vocab.json`."""

    items: list[str]  # item ids; model index = position + 1
    categories: list[str]  # category names; index = position
    event_types: list[str]  # event type names; index = position + 1
    context: dict[str, list[str]] = field(default_factory=dict)  # context key -> values; index = position + 1
    item_categories: list[list[int]] = field(default_factory=list)  # per item position: category indices

    def __post_init__(self) -> None:
        self._item_index = {k: n + 1 for n, k in enumerate(self.items)}
        self._type_index = {k: n + 1 for n, k in enumerate(self.event_types)}

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def context_keys(self) -> list[str]:
        return list(self.context)

    def item_index(self, item_id: str) -> int:
        """Model index of an item id, 0 when the model has never seen it."""
        return self._item_index.get(str(item_id), 0)

    def item_indices(self, item_ids: Sequence[str]) -> np.ndarray:
        return np.array([self._item_index.get(str(i), 0) for i in item_ids], dtype=np.int64)

    def item_id(self, index: int) -> str:
        """Item id of a model index (1..n_items)."""
        return self.items[int(index) - 1]

    def event_type_index(self, name: str) -> int:
        return self._type_index.get(str(name), 0)

    def category_weights(self) -> torch.Tensor:
        """[I+1, C] float: row i splits item i's weight equally over its categories (row 0 and uncategorised: 0)."""
        w = torch.zeros(self.n_items + 1, len(self.categories))
        for pos, cats in enumerate(self.item_categories):
            if cats:
                w[pos + 1, cats] = 1.0 / len(cats)
        return w

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if not k.startswith("_")}

    @classmethod
    def from_dict(cls, d: dict) -> Vocab:
        return cls(
            items=[str(x) for x in d["items"]],
            categories=[str(x) for x in d.get("categories", [])],
            event_types=[str(x) for x in d.get("event_types", [])],
            context={str(k): [str(x) for x in v] for k, v in d.get("context", {}).items()},
            item_categories=[[int(c) for c in cs] for cs in d.get("item_categories", [])],
        )

    def save(self, path) -> None:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, ensure_ascii=False)

    @classmethod
    def load(cls, path) -> Vocab:
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))


def build_vocab(con: duckdb.DuckDBPyConnection, max_context_values: int = 1000) -> Vocab:
    """The vocabulary of a database: items with at least one event (by id), categories, event types, context.

    Context keys with more than `max_context_values` distinct values are left out (they are not categorical).
    """
    items = [r[0] for r in con.execute("SELECT DISTINCT item_id FROM events ORDER BY item_id").fetchall()]
    cats = [
        r[0]
        for r in con.execute(
            """SELECT DISTINCT c FROM (SELECT unnest(i.categories) AS c FROM items i
               WHERE i.item_id IN (SELECT DISTINCT item_id FROM events)) WHERE c IS NOT NULL ORDER BY c"""
        ).fetchall()
    ]
    cat_index = {c: n for n, c in enumerate(cats)}
    item_cats: dict[str, list[int]] = {}
    for item_id, categories in con.execute(
        "SELECT item_id, categories FROM items WHERE item_id IN (SELECT DISTINCT item_id FROM events)"
    ).fetchall():
        item_cats[item_id] = sorted({cat_index[c] for c in (categories or []) if c in cat_index})
    types = [r[0] for r in con.execute("SELECT DISTINCT event_type FROM events ORDER BY 1").fetchall()]
    row = con.execute("SELECT value FROM meta WHERE key = 'context_keys'").fetchone()
    context: dict[str, list[str]] = {}
    for key in json.loads(row[0]) if row and row[0] else []:
        n = con.execute("SELECT count(DISTINCT context[?]) FROM events", [key]).fetchone()[0]
        if not n or n > max_context_values:
            log.info("context %r left out of the vocabulary (%s distinct values)", key, n)
            continue
        vals = con.execute(
            "SELECT DISTINCT context[?] AS v FROM events WHERE context[?] IS NOT NULL ORDER BY 1", [key, key]
        ).fetchall()
        context[key] = [str(r[0]) for r in vals]
    return Vocab(items, cats, types, context, [item_cats.get(i, []) for i in items])


@dataclass
class History:
    """One history in model indices (a user's, a window of it, or an edited one). Arrays have length n."""

    items: np.ndarray  # [n] int64 model item index (0 = unknown item, skipped by the model)
    gaps: np.ndarray  # [n] int64 time-gap bucket to the previous event (0 = first event)
    event_types: np.ndarray  # [n] int64
    context: np.ndarray  # [n,K] int64
    ts: np.ndarray  # [n] int64 unix seconds

    def __len__(self) -> int:
        return len(self.items)

    def slice(self, lo: int, hi: int) -> History:
        return History(self.items[lo:hi], self.gaps[lo:hi], self.event_types[lo:hi], self.context[lo:hi], self.ts[lo:hi])

    @classmethod
    def from_arrays(cls, items, ts, event_types=None, context=None, k: int = 0) -> History:
        """A history from items and times (gaps recomputed from `ts`, the first event getting bucket 0)."""
        items = np.asarray(items, dtype=np.int64)
        ts = np.asarray(ts, dtype=np.int64)
        n = len(items)
        gaps = gap_bucket(np.diff(ts, prepend=ts[:1]), np.arange(n) == 0) if n else np.zeros(0, np.int64)
        et = np.zeros(n, np.int64) if event_types is None else np.asarray(event_types, dtype=np.int64)
        ctx = np.zeros((n, k), np.int64) if context is None else np.asarray(context, dtype=np.int64).reshape(n, -1)
        return cls(items, np.asarray(gaps, np.int64), et, ctx, ts)


@dataclass
class Sequences:
    """All users' events in model indices, CSR layout: user r's events are [offsets[r], offsets[r+1])."""

    user_ids: np.ndarray  # [U] object (str), sorted
    offsets: np.ndarray  # [U+1] int64
    items: np.ndarray  # [N] int64 (0 = not in the vocabulary)
    ts: np.ndarray  # [N] int64 unix seconds
    gaps: np.ndarray  # [N] int64 time-gap bucket to the user's previous event (0 = first)
    event_types: np.ndarray  # [N] int64
    context: np.ndarray  # [N,K] int64

    def __post_init__(self) -> None:
        self._row = {str(u): r for r, u in enumerate(self.user_ids)}

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def row(self, user_id: str) -> int:
        try:
            return self._row[str(user_id)]
        except KeyError:
            raise NotFoundError(f"There is no user {user_id!r} with events in this database.") from None

    def history(self, row: int, lo: int = 0, hi: int | None = None) -> History:
        """User `row`'s events lo..hi-1 (indices within the user's history; hi None = to the end)."""
        a = int(self.offsets[row])
        b = int(self.offsets[row + 1])
        hi_abs = b if hi is None else a + min(int(hi), b - a)
        lo_abs = a + max(0, int(lo))
        return History(
            self.items[lo_abs:hi_abs],
            self.gaps[lo_abs:hi_abs],
            self.event_types[lo_abs:hi_abs],
            self.context[lo_abs:hi_abs],
            self.ts[lo_abs:hi_abs],
        )


def load_sequences(
    con: duckdb.DuckDBPyConnection, vocab: Vocab, users: Sequence[str] | None = None, chunk_rows: int = 1 << 20
) -> Sequences:
    """Every user's events (or only `users`') in canonical order, mapped to the vocabulary's indices.

    Items, event types and context values the vocabulary does not know map to 0. Mapping happens in SQL against
    registered vocabulary tables. For the whole log, users are mapped to integer rows in SQL as well, so a user
    id string exists once per user, never per event, and the events stream from DuckDB `chunk_rows` at a time
    unsorted into preallocated int64 arrays and are put in order by one numpy lexsort: memory is the result, four
    int64 sort keys and a permutation.
    """
    con = con.cursor()  # registered tables live on this cursor only; it also has no unfinished result
    registered: list[str] = []

    def register(name: str, frame: pd.DataFrame) -> None:
        con.register(name, frame)
        registered.append(name)

    try:
        where, params = _user_filter(con, users, register)
        select, joins, ctx_params = _mapped_columns(vocab, register)
        order = ", ".join(f"e.{c.strip()}" for c in EVENT_ORDER.split(","))
        if users is not None:  # a few users: one query, the id fetched per event (their events only)
            rel = con.execute(
                f"SELECT e.user_id, {select} FROM events e {joins} {where} ORDER BY e.user_id, {order}",
                ctx_params + params,
            ).fetchnumpy()
            user_ids, offsets = user_runs(np.asarray(rel["user_id"], dtype=object))
            cols = {c: np.asarray(rel[c], np.int64) for c in rel if c != "user_id"}
        else:
            counts = con.execute("SELECT user_id, count(*) AS n FROM events GROUP BY 1 ORDER BY 1").fetchnumpy()
            user_ids = np.asarray(counts["user_id"], dtype=object)
            offsets = np.r_[0, np.cumsum(np.asarray(counts["n"], np.int64))].astype(np.int64)
            register("_il_rows", pd.DataFrame({"user_id": user_ids, "urow": np.arange(len(user_ids))}))
            # Streamed unsorted, then put in (user, canonical) order with one stable numpy lexsort: DuckDB's own
            # ORDER BY materialises and sorts the whole result first (~1.7 GB transient at 10M events, against
            # the arrays plus a permutation here).
            keys = "r.urow AS _k0, epoch_us(e.ts) AS _k1, e.run_id::BIGINT AS _k2, e.seq::BIGINT AS _k3"
            sql = f"SELECT {keys}, {select} FROM events e JOIN _il_rows r USING (user_id) {joins}"
            cols = _stream_columns(con, sql, ctx_params, int(offsets[-1]), chunk_rows)
            perm = np.lexsort((cols.pop("_k3"), cols.pop("_k2"), cols.pop("_k1"), cols.pop("_k0")))
            for name in list(cols):
                cols[name] = cols[name][perm]
    finally:
        for name in registered:
            con.unregister(name)
        con.close()
    k = len(vocab.context)
    n = int(offsets[-1])
    ctx = np.stack([cols[f"ctx{j}"] for j in range(k)], axis=1) if k else np.zeros((n, 0), np.int64)
    return assemble_sequences(user_ids, offsets, cols["item"], cols["ts"], cols["etype"], ctx)


def user_runs(user_col: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The users and their offsets of a per-event user column sorted by user (each user's events contiguous)."""
    n = len(user_col)
    starts = np.flatnonzero(np.r_[True, user_col[1:] != user_col[:-1]]) if n else np.zeros(0, np.int64)
    return user_col[starts], np.r_[starts, n].astype(np.int64)


def assemble_sequences(user_ids: np.ndarray, offsets: np.ndarray, items: np.ndarray, ts: np.ndarray,
                       etypes: np.ndarray, ctx: np.ndarray) -> Sequences:  # fmt: skip
    """`Sequences` from per-event columns in (user, canonical) order, already in model indices: the time-gap
    buckets are computed here (each user's first event in the first bucket)."""
    n = int(offsets[-1])
    first = np.zeros(n, bool)
    first[offsets[:-1]] = True
    gaps = gap_bucket(np.diff(ts, prepend=ts[:1]), first) if n else np.zeros(0, np.int64)
    return Sequences(user_ids, offsets, items, ts, np.asarray(gaps, np.int64), etypes, ctx)


def _mapped_columns(vocab: Vocab, register) -> tuple[str, str, list]:
    """The SELECT list (item, ts, etype, ctx0..) in model indices, its vocabulary joins and their parameters."""
    register("_il_vocab_items", pd.DataFrame({"item_id": vocab.items, "idx": np.arange(1, vocab.n_items + 1)}))
    register("_il_vocab_types", pd.DataFrame({"event_type": vocab.event_types,
                                              "tidx": np.arange(1, len(vocab.event_types) + 1)}))
    cols = ["coalesce(v.idx, 0) AS item", "epoch(e.ts)::BIGINT AS ts", "coalesce(t.tidx, 0) AS etype"]
    joins = ["LEFT JOIN _il_vocab_items v USING (item_id)", "LEFT JOIN _il_vocab_types t USING (event_type)"]
    params = []
    for n, (key, values) in enumerate(vocab.context.items()):
        register(f"_il_vocab_ctx{n}", pd.DataFrame({"v": values, "i": np.arange(1, len(values) + 1)}))
        cols.append(f"coalesce(c{n}.i, 0) AS ctx{n}")
        joins.append(f"LEFT JOIN _il_vocab_ctx{n} c{n} ON c{n}.v = e.context[?]")
        params.append(key)
    return ", ".join(cols), " ".join(joins), params


def _user_filter(con: duckdb.DuckDBPyConnection, users: Sequence[str] | None, register) -> tuple[str, list]:
    """The WHERE clause (and parameters) that keeps only `users`' events; none for every user.

    One user is an equality the scan checks against each row group's min/max (the app's most common case);
    several are a semi-join against a registered table, which DuckDB also pushes into the scan.
    """
    if users is None:
        return "", []
    ids = list(dict.fromkeys(str(u) for u in users))
    if len(ids) == 1:
        where, params = user_predicate(con, ids[0])  # on a Parquet store also the user's partition
        return f"WHERE {where}", params
    register("_il_wanted", pd.DataFrame({"user_id": pd.Series(ids, dtype=object)}))
    return "WHERE e.user_id IN (SELECT user_id FROM _il_wanted)", []


def _stream_columns(
    con: duckdb.DuckDBPyConnection, sql: str, params: list, n: int, chunk_rows: int
) -> dict[str, np.ndarray]:
    """Run `sql` and copy its int64 columns into arrays of length `n`, one Arrow batch at a time."""
    reader = con.sql(sql, params=params).to_arrow_reader(max(1, int(chunk_rows)))
    out = {name: np.empty(n, np.int64) for name in reader.schema.names}
    at = 0
    for batch in reader:
        m = batch.num_rows
        if at + m > n:
            at += m
            break
        for name, col in zip(batch.schema.names, batch.columns, strict=True):
            out[name][at : at + m] = col.to_numpy(zero_copy_only=False)
        at += m
    if at != n:
        raise StoreError("The events changed while they were being read; try again.")
    return out


def make_batch(histories: Sequence[History], max_len: int, n_context: int | None = None) -> Batch:
    """Left-padded batch of the latest ≤ `max_len` events of each history (T = the longest window).

    Unknown items (index 0) are dropped first: the model skips what it has never seen.
    """
    hs = [_known(h) for h in histories]
    T = max(1, min(max_len, max((len(h) for h in hs), default=1)))
    B = len(hs)
    K = n_context if n_context is not None else (hs[0].context.shape[1] if hs else 0)
    items = np.zeros((B, T), np.int64)
    gaps = np.zeros((B, T), np.int64)
    types = np.zeros((B, T), np.int64)
    ctx = np.zeros((B, T, K), np.int64)
    times = np.zeros((B, T), np.int64)
    for b, h in enumerate(hs):
        n = min(len(h), T)
        if n == 0:
            continue
        items[b, T - n :] = h.items[-n:]
        gaps[b, T - n :] = h.gaps[-n:]
        types[b, T - n :] = h.event_types[-n:]
        times[b, T - n :] = h.ts[-n:]
        if K:
            ctx[b, T - n :] = h.context[-n:, :K]
    items_t = torch.from_numpy(items)
    return Batch(
        items=items_t,
        gaps=torch.from_numpy(gaps),
        event_types=torch.from_numpy(types),
        context=torch.from_numpy(ctx),
        mask=items_t > 0,
        ts=torch.from_numpy(times),
    )


def _known(h: History) -> History:
    keep = h.items > 0
    if keep.all():
        return h
    return History(h.items[keep], h.gaps[keep], h.event_types[keep], h.context[keep], h.ts[keep])


def data_fingerprint(con: duckdb.DuckDBPyConnection) -> dict:
    """What a model was trained on: counts, the last event time and a hash of the item ids."""
    users, items, events, last = con.execute(
        "SELECT count(DISTINCT user_id), count(DISTINCT item_id), count(*), max(ts) FROM events"
    ).fetchone()
    digest = hashlib.sha256()
    for (item_id,) in con.execute("SELECT DISTINCT item_id FROM events ORDER BY 1").fetchall():
        digest.update(item_id.encode("utf-8", "surrogatepass") + b"\0")
    return {
        "users": int(users),
        "items": int(items),
        "events": int(events),
        "max_ts": last.isoformat() if last is not None else None,
        "items_sha256": digest.hexdigest()[:16],
    }
