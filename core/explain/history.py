"""A user's history with the labels an analyst reads (title, categories, time), and the window the model reads.

The model reads the latest `max_len` events whose item it knows (`core.sequences.make_batch`); those events are
the features of an explanation. Every event keeps its step, its position in the user's stored history (the
store's canonical order), so an explanation can point back at the row an analyst sees; events added by a what-if
edit have step -1.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import numpy as np

from core.checkpoint import LoadedModel
from core.errors import NotFoundError
from core.sequences import History, Vocab, load_sequences
from core.store import user_history

__all__ = ["EventLabel", "LabelledHistory", "load_labelled_history"]


@dataclass(frozen=True)
class EventLabel:
    """What an analyst reads about one event."""

    step: int  # position in the user's stored history (canonical order); -1 for an event added by a what-if
    item_id: str
    title: str
    categories: tuple[str, ...]
    time: dt.datetime  # naive UTC
    n_events: int = 1  # more than 1: a period of older events explained as one (step..last_step, time..end)
    last_step: int | None = None  # a period's last step
    end: dt.datetime | None = None  # a period's last event time

    def text(self) -> str:
        """A short one-line label, e.g. "#12 Heat (1995) · 1997-10-01 12:00" or, for a period of older events,
        "#0–#149 150 earlier events · session 1997-09-20 22:05–23:10"."""
        if self.n_events > 1:
            return f"#{self.step}–#{self.last_step} {self.title}"
        step = f"#{self.step} " if self.step >= 0 else "+ "
        return f"{step}{self.title} · {self.time:%Y-%m-%d %H:%M}"

    @classmethod
    def period(cls, events: list[EventLabel], level: str, label: str) -> EventLabel:
        """The label of a period of older events explained as one (its three most frequent categories)."""
        counts: dict[str, int] = {}
        for e in events:
            for c in e.categories:
                counts[c] = counts.get(c, 0) + 1
        top = tuple(sorted(counts, key=lambda c: (-counts[c], c))[:3])
        where = label if level == "months" else f"{level} {label}"
        return cls(events[0].step, "", f"{len(events)} earlier events · {where}", top, events[0].time,
                   len(events), events[-1].step, events[-1].time)


@dataclass
class LabelledHistory:
    """One user's history in model indices with a label per event (`labels[i]` describes event i)."""

    user_id: str
    history: History
    labels: list[EventLabel]

    def __post_init__(self) -> None:
        if len(self.labels) != len(self.history):
            raise ValueError("a labelled history needs exactly one label per event")

    def __len__(self) -> int:
        return len(self.history)

    @classmethod
    def from_history(cls, user_id: str, history: History, vocab: Vocab) -> LabelledHistory:
        """Labels from the vocabulary alone (item ids as titles), for histories not read from a store."""
        labels = []
        for step, (item, ts) in enumerate(zip(history.items, history.ts, strict=True)):
            known = 0 < item <= vocab.n_items
            cats = tuple(vocab.categories[c] for c in vocab.item_categories[item - 1]) if known else ()
            item_id = vocab.item_id(item) if known else "?"
            labels.append(EventLabel(step, item_id, item_id, cats, _utc(ts)))
        return cls(str(user_id), history, labels)

    def window(self, max_len: int) -> np.ndarray:
        """Positions of the events the model reads: the latest `max_len` events with a known item."""
        return np.flatnonzero(self.history.items > 0)[-max_len:]

    def seen(self) -> np.ndarray:
        """Model indices of every known item in the history (what recommendations exclude)."""
        items = self.history.items
        return np.unique(items[items > 0])


def _utc(seconds: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1) + dt.timedelta(seconds=int(seconds))


def load_labelled_history(con: duckdb.DuckDBPyConnection, loaded: LoadedModel, user_id: str) -> LabelledHistory:
    """A user's history in the model's indices with titles, categories and times from the store.

    Raises NotFoundError for a user without events.
    """
    seqs = load_sequences(con, loaded.vocab, users=[str(user_id)])
    history = seqs.history(seqs.row(str(user_id)))
    df = user_history(con, str(user_id))
    if len(df) != len(history):
        raise NotFoundError(f"The history of user {user_id!r} changed while it was being read; try again.")
    labels = [
        EventLabel(
            step=int(step),
            item_id=str(item),
            title=str(title) if isinstance(title, str) else str(item),
            categories=tuple(str(c) for c in cats),
            time=_utc(ts),
        )
        for step, item, title, cats, ts in zip(
            df["step"], df["item_id"], df["title"], df["categories"], history.ts, strict=True
        )
    ]
    return LabelledHistory(str(user_id), history, labels)
