"""Train / validation / test splits of the users' sequences (../shared/METRICS.md §1).

Events keep the store's canonical order (`ORDER BY ts, run_id, seq`: ties in time keep the order of the source
file), so every model compared sees the same sequences.

- `loo` (leave-one-out, the default): a user's last event is the test target, the second-last the validation
  target, the rest are training events. A user with two events has only a test target; with one, nothing.
- `time`: two global cut points at the (1 - valid_share - test_share) and (1 - test_share) quantiles of event
  time. Training events are those before the first cut; a user's validation target is their first event between
  the cuts and their test target their first event after the second cut (each with every earlier event as input).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

import numpy as np

from core.errors import UserInputError
from core.sequences import Sequences

__all__ = ["Split", "SplitKind", "leave_one_out", "time_split", "make_split", "split_from_card"]

SplitKind = Literal["loo", "time"]


@dataclass(frozen=True)
class Split:
    """Where each user's training events end and which events are held out, as absolute CSR indices."""

    kind: SplitKind
    train_end: np.ndarray  # [U] events offsets[r] .. train_end[r]-1 are user r's training events
    valid: np.ndarray  # [U] absolute index of the validation target, -1 = none
    test: np.ndarray  # [U] absolute index of the test target, -1 = none
    trained_until: int | None  # unix seconds of the last training event (None when there is none)
    cutoffs: tuple[int, int] | None = None  # time split: (validation from, test from), unix seconds

    def targets(self, which: Literal["valid", "test"]) -> tuple[np.ndarray, np.ndarray]:
        """(user rows, absolute target indices) of the users that have a `which` target."""
        idx = self.valid if which == "valid" else self.test
        rows = np.flatnonzero(idx >= 0)
        return rows, idx[rows]

    def describe(self) -> dict:
        """JSON-ready description for the model card."""
        out: dict = {"kind": self.kind}
        if self.trained_until is not None:
            out["trained_until"] = _iso(self.trained_until)
        if self.cutoffs is not None:
            out["valid_from"], out["test_from"] = (_iso(c) for c in self.cutoffs)
        return out


def split_from_card(seqs: Sequences, card_split: dict | None) -> Split:
    """Rebuild the split a model card describes (`metrics.json["split"]`) on these sequences."""
    card_split = card_split or {"kind": "loo"}
    if card_split.get("kind") == "time" and card_split.get("valid_from") and card_split.get("test_from"):
        cut = tuple(_unix(card_split[k]) for k in ("valid_from", "test_from"))
        return time_split(seqs, cutoffs=cut)  # type: ignore[arg-type]
    return make_split(seqs, str(card_split.get("kind", "loo")))


def _unix(text: str) -> int:
    t = dt.datetime.fromisoformat(text.rstrip("Z"))
    return int(t.replace(tzinfo=dt.UTC).timestamp())


def _iso(t: int) -> str:
    return dt.datetime.fromtimestamp(int(t), dt.UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def _trained_until(seqs: Sequences, train_end: np.ndarray) -> int | None:
    starts = seqs.offsets[:-1]
    has = train_end > starts
    return int(seqs.ts[train_end[has] - 1].max()) if has.any() else None


def leave_one_out(seqs: Sequences) -> Split:
    """Last event = test, second-last = validation, the rest = training."""
    starts, ends = seqs.offsets[:-1], seqs.offsets[1:]
    n = ends - starts
    test = np.where(n >= 2, ends - 1, -1)
    valid = np.where(n >= 3, ends - 2, -1)
    train_end = np.where(n >= 3, ends - 2, np.minimum(starts + 1, ends))
    return Split("loo", train_end, valid, test, _trained_until(seqs, train_end))


def _first_at_or_after(seqs: Sequences, cut: int) -> np.ndarray:
    """Per user: absolute index of the first event with ts >= cut (the user's end when none)."""
    starts, ends = seqs.offsets[:-1], seqs.offsets[1:]
    if len(seqs.ts) == 0:
        return ends.copy()
    cand = np.where(seqs.ts >= cut, np.arange(len(seqs.ts)), np.iinfo(np.int64).max)
    nonempty = ends > starts
    first = np.full(len(starts), np.iinfo(np.int64).max)
    first[nonempty] = np.minimum.reduceat(cand, starts[nonempty])
    return np.minimum(first, ends)


def time_split(
    seqs: Sequences, valid_share: float = 0.1, test_share: float = 0.1, cutoffs: tuple[int, int] | None = None
) -> Split:
    """Global time cut points (given, or from the shares); see the module docstring."""
    if cutoffs is not None:
        return _time_split_at(seqs, int(cutoffs[0]), int(cutoffs[1]))
    if not (0 < valid_share < 1 and 0 < test_share < 1 and valid_share + test_share < 1):
        raise UserInputError("The validation and test shares of a time split must be in (0, 1) and sum below 1.")
    if len(seqs.ts) == 0:
        raise UserInputError("The database has no events to split.")
    c_valid = int(np.quantile(seqs.ts, 1 - valid_share - test_share))
    c_test = int(np.quantile(seqs.ts, 1 - test_share))
    return _time_split_at(seqs, c_valid, max(c_test, c_valid + 1))


def _time_split_at(seqs: Sequences, c_valid: int, c_test: int) -> Split:
    ends = seqs.offsets[1:]
    first_valid = _first_at_or_after(seqs, c_valid)
    first_test = _first_at_or_after(seqs, c_test)
    valid = np.where((first_valid < ends) & (first_valid < first_test), first_valid, -1)
    test = np.where(first_test < ends, first_test, -1)
    # a held-out target needs at least one earlier event as input
    starts = seqs.offsets[:-1]
    valid = np.where(valid > starts, valid, -1)
    test = np.where(test > starts, test, -1)
    return Split("time", first_valid, valid, test, _trained_until(seqs, first_valid), (c_valid, c_test))


def make_split(
    seqs: Sequences,
    kind: str,
    valid_share: float = 0.1,
    test_share: float = 0.1,
    cutoffs: tuple[int, int] | None = None,
) -> Split:
    """The split named `kind` ("loo" or "time"; a time split at fixed `cutoffs` when given)."""
    if kind == "loo":
        return leave_one_out(seqs)
    if kind == "time":
        return time_split(seqs, valid_share, test_share, cutoffs)
    raise UserInputError(f"Unknown split {kind!r}; expected loo or time.")
