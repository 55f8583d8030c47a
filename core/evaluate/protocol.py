"""Which items a ranking may show: the one `--seen auto|exclude|include` rule for evaluation's headline protocol,
`recommend`, the dashboard and the fairness inputs (../shared/METRICS.md §1).

`auto` includes seen items when the log repeats items — at least `REPEAT_THRESHOLD` (5 %) of events re-consume an
item already in the same user's earlier history (listening, groceries, page views) — and excludes them otherwise
(ratings, purchases of durable goods). `exclude` and `include` force the choice. The decision is made once, from
the training data, and written to the model card with its reason.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from core.errors import SettingError
from core.sequences import Sequences

__all__ = ["SeenRule", "SEEN_RULES", "REPEAT_THRESHOLD", "SeenDecision", "repeat_share", "decide_seen",
           "seen_from_card"]

SeenRule = Literal["auto", "exclude", "include"]
SEEN_RULES: tuple[SeenRule, ...] = ("auto", "exclude", "include")
REPEAT_THRESHOLD = 0.05  # share of re-consumption events from which `auto` keeps seen items in rankings


@dataclass(frozen=True)
class SeenDecision:
    """The outcome of the seen rule for one model and log."""

    rule: SeenRule  # what was asked: auto, exclude or include
    exclude: bool  # True: items already in the user's history are removed from rankings
    repeat_share: float | None  # share of events re-consuming an item already in the user's history (None: unknown)
    reason: str  # one sentence saying why, for the model card and the CLI

    @property
    def protocol(self) -> str:
        """The evaluation protocol that matches: `exclude_seen` or `all_items`."""
        return "exclude_seen" if self.exclude else "all_items"

    def to_dict(self) -> dict:
        return {**asdict(self), "protocol": self.protocol}


def repeat_share(seqs: Sequences, ends: np.ndarray | None = None) -> float:
    """Share of events whose item already occurs earlier in the same user's sequence.

    `ends` [U] (optional): absolute event index where each user's counted events stop (e.g. the training part of a
    split), so the decision never looks at validation or test targets. 0.0 for an empty log.
    """
    n = np.diff(seqs.offsets)
    row = np.repeat(np.arange(len(n)), n)  # [E] user row of each event
    keep = np.ones(len(row), bool)
    if ends is not None:
        keep = np.arange(len(row)) < np.repeat(np.asarray(ends, np.int64), n)
    items = seqs.items[keep]
    row = row[keep]
    known = items > 0  # unknown items (index 0) cannot be compared
    items, row = items[known], row[known]
    if not len(items):
        return 0.0
    pairs = row.astype(np.int64) * (int(items.max()) + 1) + items
    return float(1.0 - len(np.unique(pairs)) / len(pairs))


def decide_seen(rule: str, share: float | None) -> SeenDecision:
    """Apply the seen rule. `share` = `repeat_share` of the training data (None when unknown: auto excludes)."""
    if rule not in SEEN_RULES:
        raise SettingError("{seen} must be one of " + ", ".join(SEEN_RULES) + ", not {value!r}.", "seen", value=rule)
    if rule == "exclude":
        return SeenDecision("exclude", True, share, "Seen items are excluded because --seen exclude was given.")
    if rule == "include":
        return SeenDecision("include", False, share, "Seen items are included because --seen include was given.")
    if share is None:
        return SeenDecision("auto", True, None, "Seen items are excluded: the log's repeat share is unknown.")
    pct = f"{100 * share:.1f} %"
    if share >= REPEAT_THRESHOLD:
        return SeenDecision("auto", False, share, f"Seen items are included: {pct} of training events re-consume an "
                            f"item already in the user's history (at least {100 * REPEAT_THRESHOLD:.0f} %).")
    return SeenDecision("auto", True, share, f"Seen items are excluded: only {pct} of training events re-consume an "
                        f"item already in the user's history (below {100 * REPEAT_THRESHOLD:.0f} %).")


def seen_from_card(card: dict | None, rule: str = "auto") -> SeenDecision:
    """The decision for a trained model: the card's repeat share under `rule` (an old card without one: None)."""
    stored = (card or {}).get("seen") or {}
    share = stored.get("repeat_share")
    return decide_seen(rule, None if share is None else float(share))
