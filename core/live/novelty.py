"""What is new in a database relative to a trained model, and what changed since a reader last looked.

A sequential model needs no retraining to take in new events: items it has never seen map to index 0 and are
skipped (`core.sequences.make_batch`), unknown event types and context values get the "unknown" embedding.
These functions say what is new so the app and the CLI can mark it, and give readers a cheap way to notice
that a live writer has added a batch.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

import duckdb
import pandas as pd

from core.sequences import Vocab

__all__ = ["NewSinceModel", "DataVersion", "new_since_model", "data_version", "events_since", "trained_until_of"]


@dataclass(frozen=True)
class NewSinceModel:
    """Users, items, categories, event types and context values a model has not seen.

    Lists are sorted and hold at most `limit` names each; the `n_*` counts are exact.
    """

    trained_until: dt.datetime | None  # the latest event time the model was trained on (naive UTC)
    events_after: int  # events later than `trained_until` (0 when it is unknown)
    n_new_users: int  # users with no event at or before `trained_until`
    new_users: list[str]
    n_new_items: int  # items with events that are not in the model's vocabulary (the model skips them)
    new_items: list[str]
    new_categories: list[str]  # categories of items with events, unknown to the model
    new_event_types: list[str]  # event types unknown to the model (they get the "unknown" embedding)
    new_context: dict[str, list[str]] = field(default_factory=dict)  # per context key the model uses

    @property
    def anything_new(self) -> bool:
        return bool(self.events_after or self.n_new_items or self.new_categories or self.new_event_types
                    or any(self.new_context.values()))  # fmt: skip

    def as_dict(self) -> dict:
        return {
            "trained_until": self.trained_until, "events_after": self.events_after,
            "n_new_users": self.n_new_users, "new_users": self.new_users,
            "n_new_items": self.n_new_items, "new_items": self.new_items,
            "new_categories": self.new_categories, "new_event_types": self.new_event_types,
            "new_context": self.new_context,
        }  # fmt: skip


def trained_until_of(card: Mapping) -> dt.datetime | None:
    """The `trained_until` of a model card (`metrics.json`) as a naive UTC datetime, or None."""
    text = card.get("trained_until") if card else None
    if not text:
        return None
    t = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return t.astimezone(dt.UTC).replace(tzinfo=None) if t.tzinfo else t


def _unknown(con: duckdb.DuckDBPyConnection, values_sql: str, known: list[str], limit: int, params=()) -> tuple[int, list[str]]:
    """(count, first `limit` sorted) of the values of `values_sql` (one column `v`) that are not in `known`."""
    rows = con.execute(
        f"""WITH n AS (SELECT DISTINCT v FROM ({values_sql}) WHERE v IS NOT NULL
                       EXCEPT SELECT unnest(?::VARCHAR[]))
            SELECT (SELECT count(*) FROM n), (SELECT list(v ORDER BY v)[1:?] FROM n)""",
        [*params, [str(k) for k in known], int(limit)],
    ).fetchall()[0]
    return int(rows[0]), [str(v) for v in rows[1] or []]


def new_since_model(
    con: duckdb.DuckDBPyConnection, vocab: Vocab, trained_until: dt.datetime | None, limit: int = 50
) -> NewSinceModel:
    """Compare the database with a model's vocabulary and training cut-off.

    Parameters
    ----------
    vocab : the model's `Vocab` (`LoadedModel.vocab`).
    trained_until : the last event time it was trained on (`trained_until_of(loaded.card)`), or None.
    limit : at most this many names per list (counts are exact).
    """
    after = n_users = 0
    users: list[str] = []
    if trained_until is not None:
        after = int(con.execute("SELECT count(*) FROM events WHERE ts > ?", [trained_until]).fetchall()[0][0])
        n_users, users = _unknown(
            con,
            "SELECT user_id AS v FROM events GROUP BY user_id HAVING min(ts) > ?",
            [],
            limit,
            [trained_until],
        )
    n_items, items = _unknown(con, "SELECT item_id AS v FROM events", vocab.items, limit)
    _, cats = _unknown(
        con,
        "SELECT unnest(categories) AS v FROM items WHERE item_id IN (SELECT item_id FROM events)",
        vocab.categories,
        limit,
    )
    _, types = _unknown(con, "SELECT event_type AS v FROM events", vocab.event_types, limit)
    context = {
        key: _unknown(con, "SELECT context[?] AS v FROM events", values, limit, [key])[1]
        for key, values in vocab.context.items()
    }
    return NewSinceModel(trained_until, after, n_users, users, n_items, items, cats, types, context)


@dataclass(frozen=True)
class DataVersion:
    """A cheap fingerprint of what a database holds: compare two to see whether a writer added a batch."""

    last_run_id: int  # the latest successful ingest run (0 when none)
    events: int
    last_event: dt.datetime | None
    finished_at: dt.datetime | None  # when the latest successful run finished


def data_version(con: duckdb.DuckDBPyConnection) -> DataVersion:
    """The database's current `DataVersion` (two small queries; `count(*)` of a table is read from its metadata)."""
    run, finished = con.execute(
        "SELECT coalesce(max(run_id), 0), max(finished_at) FROM ingest_runs WHERE status = 'ok'"
    ).fetchall()[0]
    events, last = con.execute("SELECT count(*), max(ts) FROM events").fetchall()[0]
    return DataVersion(int(run), int(events), last, finished)


def events_since(con: duckdb.DuckDBPyConnection, run_id: int, user_id: str | None = None) -> pd.DataFrame:
    """Events written by runs after `run_id` (optionally one user's), in canonical order.

    Columns: user_id, item_id, ts, event_type, value, run_id, seq. A live view remembers the `last_run_id` of
    the `DataVersion` it last drew and marks these rows as new.
    """
    where, params = "run_id > ?", [int(run_id)]
    if user_id is not None:
        where += " AND user_id = ?"
        params.append(str(user_id))
    return con.execute(
        f"""SELECT user_id, item_id, ts, event_type, value, run_id, seq FROM events WHERE {where}
            ORDER BY ts, run_id, seq""",
        params,
    ).df()
