"""What-if: edit a history (remove events, insert an item at a time, move an event) and see what the model does.

Edits make a new history in memory; nothing is written to the database. Unlike masking an event for an explanation
("this event is unseen"), a what-if edit changes the history itself ("this event never happened", "it happened
then"): events are re-sorted by time (stable, so an inserted event goes after existing events at the same second)
and every time gap is recomputed (`History.from_arrays`). Events are named by their step in the stored history;
inserted events have step -1. An inserted event takes the given event type, else the user's most frequent one,
and unknown context.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from core.errors import NotFoundError, UserInputError
from core.explain.explainer import HistoryExplainer, HistoryExplanation
from core.explain.history import EventLabel, LabelledHistory
from core.recommend import recommend
from core.sequences import History, Vocab, make_batch

__all__ = [
    "RemoveEvents",
    "InsertItem",
    "MoveEvent",
    "Edit",
    "Recommendation",
    "InterestPath",
    "WhatIfResult",
    "apply_edits",
    "interest_path",
    "what_if",
]


@dataclass(frozen=True)
class RemoveEvents:
    """Remove the events at these steps of the stored history."""

    steps: tuple[int, ...]


@dataclass(frozen=True)
class InsertItem:
    """Insert an event with `item_id` at `time` (naive UTC, or aware and converted)."""

    item_id: str
    time: dt.datetime
    event_type: str | None = None  # default: the user's most frequent event type


@dataclass(frozen=True)
class MoveEvent:
    """Move the event at `step` of the stored history to `time`."""

    step: int
    time: dt.datetime


Edit = RemoveEvents | InsertItem | MoveEvent


def _seconds(t: dt.datetime) -> int:
    if t.tzinfo is not None:
        t = t.astimezone(dt.UTC).replace(tzinfo=None)
    return int((t - dt.datetime(1970, 1, 1)).total_seconds())


def _position(labels: Sequence[EventLabel], step: int) -> int:
    for i, lab in enumerate(labels):
        if lab.step == int(step):
            return i
    raise UserInputError(f"There is no event at step {step} in this history.")


def apply_edits(
    lh: LabelledHistory, edits: Sequence[Edit], vocab: Vocab, titles: Mapping[str, str] | None = None
) -> LabelledHistory:
    """The history with `edits` applied in order (see the module docstring); `lh` is left unchanged.

    `titles` names inserted items (default: their ids). Raises UserInputError for a step that is not in the
    history and NotFoundError for an item the model does not know.
    """
    h = lh.history
    items, ts, types = list(h.items), list(h.ts), list(h.event_types)
    ctx, labels = list(h.context), list(lh.labels)
    known_types = h.event_types[h.event_types > 0]
    default_type = int(np.bincount(known_types).argmax()) if len(known_types) else 0
    for edit in edits:
        if isinstance(edit, RemoveEvents):
            drop = {_position(labels, s) for s in edit.steps}
            keep = [i for i in range(len(items)) if i not in drop]
            items, ts, types, ctx, labels = ([seq[i] for i in keep] for seq in (items, ts, types, ctx, labels))
        elif isinstance(edit, InsertItem):
            idx = vocab.item_index(edit.item_id)
            if idx == 0:
                raise NotFoundError(f"The model does not know item {edit.item_id!r}, so it cannot be inserted.")
            etype = vocab.event_type_index(edit.event_type) if edit.event_type else default_type
            cats = tuple(vocab.categories[c] for c in vocab.item_categories[idx - 1])
            title = (titles or {}).get(str(edit.item_id), str(edit.item_id))
            items.append(idx)
            ts.append(_seconds(edit.time))
            types.append(etype)
            ctx.append(np.zeros(h.context.shape[1], np.int64))
            labels.append(EventLabel(-1, str(edit.item_id), title, cats, edit.time.replace(tzinfo=None)))
        elif isinstance(edit, MoveEvent):
            i = _position(labels, edit.step)
            ts[i] = _seconds(edit.time)
            labels[i] = EventLabel(labels[i].step, labels[i].item_id, labels[i].title, labels[i].categories, edit.time.replace(tzinfo=None))
        else:
            raise UserInputError(f"Unknown edit {edit!r}; expected RemoveEvents, InsertItem or MoveEvent.")
    order = np.argsort(np.asarray(ts, dtype=np.int64), kind="stable")
    k = h.context.shape[1]
    new = History.from_arrays(
        np.asarray(items, np.int64)[order],
        np.asarray(ts, np.int64)[order],
        np.asarray(types, np.int64)[order],
        np.asarray(ctx, np.int64).reshape(len(items), k)[order],
        k=k,
    )
    return LabelledHistory(lh.user_id, new, [labels[i] for i in order])


@dataclass(frozen=True)
class Recommendation:
    rank: int  # 1 = best
    item_id: str
    score: float


@dataclass
class InterestPath:
    """The model's interest after every event: p_t(c) over categories (METRICS.md §2)."""

    steps: np.ndarray  # [n] step of each event (-1 = inserted)
    times: np.ndarray  # [n] datetime64[s]
    categories: list[str]  # [C]
    distribution: np.ndarray  # [n, C]; row t = interest after the first t+1 events


def interest_path(explainer: HistoryExplainer, lh: LabelledHistory) -> InterestPath:
    """Per-step interest of a history through `core.trajectory.encode_steps`."""
    from core.trajectory import encode_steps

    loaded = explainer.loaded
    out = encode_steps(loaded.scorer, [lh.history], loaded.vocab.category_weights())[0]
    return InterestPath(
        steps=np.array([lab.step for lab in lh.labels], dtype=np.int64),
        times=lh.history.ts.astype("datetime64[s]"),
        categories=list(loaded.vocab.categories),
        distribution=out.distribution,
    )


@dataclass
class WhatIfResult:
    """A history before and after edits: top-K, the target's score and rank, interest paths, explanation."""

    edited: LabelledHistory
    target: str  # the item followed through the edit (default: the top-1 before it)
    before: list[Recommendation]
    after: list[Recommendation]
    target_score_before: float
    target_score_after: float
    target_rank_before: int
    target_rank_after: int
    path_before: InterestPath
    path_after: InterestPath
    explanation: HistoryExplanation | None  # of the target on the edited history

    @property
    def recommendations(self) -> pd.DataFrame:
        """The top-K after the edits. Columns: rank, item_id, score."""
        return pd.DataFrame([vars(r) for r in self.after], columns=["rank", "item_id", "score"])


def _score_and_rank(explainer: HistoryExplainer, history: History, target: int) -> tuple[float, int]:
    loaded = explainer.loaded
    batch = make_batch([history], loaded.config.max_len, len(loaded.vocab.context)).to(loaded.device)
    seen = np.setdiff1d(np.unique(history.items[history.items > 0]), [target])
    with torch.inference_mode():
        scores = loaded.scorer.score(batch)[0]  # [I+1]
        s = float(scores[target])
        scores[torch.as_tensor(seen, device=scores.device)] = float("-inf")
        return s, int((scores > scores[target]).sum()) + 1


def _recs(explainer: HistoryExplainer, history: History, k: int) -> list[Recommendation]:
    vocab = explainer.loaded.vocab
    return [Recommendation(r + 1, vocab.item_id(i), s) for r, (i, s) in enumerate(recommend(explainer.loaded, [history], k)[0])]


def what_if(
    explainer: HistoryExplainer,
    lh: LabelledHistory,
    edits: Sequence[Edit],
    k: int = 10,
    target: str | None = None,
    margin: bool = False,
    explain: bool = True,
    titles: Mapping[str, str] | None = None,
) -> WhatIfResult:
    """Apply `edits` to a copy of `lh` and compare the model's output before and after (nothing is written)."""
    vocab = explainer.loaded.vocab
    edited = apply_edits(lh, edits, vocab, titles)
    before = _recs(explainer, lh.history, k)
    if target is None:
        if not before:
            raise NotFoundError(f"There is no recommendation for user {lh.user_id!r} to follow through the edit.")
        target = before[0].item_id
    t = vocab.item_index(target)
    if t == 0:
        raise NotFoundError(f"The model does not know item {target!r}.")
    s0, r0 = _score_and_rank(explainer, lh.history, t)
    s1, r1 = _score_and_rank(explainer, edited.history, t)
    expl = None
    if explain and len(edited.window(explainer.loaded.config.max_len)):
        expl = explainer.explain(edited, target=target, margin=margin, k=k)
    return WhatIfResult(
        edited=edited,
        target=str(target),
        before=before,
        after=_recs(explainer, edited.history, k),
        target_score_before=s0,
        target_score_after=s1,
        target_rank_before=r0,
        target_rank_after=r1,
        path_before=interest_path(explainer, lh),
        path_after=interest_path(explainer, edited),
        explanation=expl,
    )
