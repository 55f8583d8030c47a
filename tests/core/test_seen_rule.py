"""The one seen rule (`--seen auto|exclude|include`): repeat share on hand-counted logs and the decisions."""

import numpy as np
import pytest

from core.errors import UserInputError
from core.evaluate import REPEAT_THRESHOLD, decide_seen, repeat_share, seen_from_card
from core.sequences import Sequences


def seqs_of(users: list[list[int]]) -> Sequences:
    lens = [len(u) for u in users]
    items = np.array([i for u in users for i in u], np.int64)
    n = len(items)
    return Sequences(
        user_ids=np.array([f"u{k}" for k in range(len(users))], dtype=object),
        offsets=np.r_[0, np.cumsum(lens)].astype(np.int64),
        items=items, ts=np.arange(n, dtype=np.int64), gaps=np.ones(n, np.int64),
        event_types=np.zeros(n, np.int64), context=np.zeros((n, 0), np.int64),
    )


def test_repeat_share_counts_re_consumption_within_a_user_only():
    # user 0: 1 2 1 1 -> two repeats; user 1: 2 3 -> item 2 again but for another user, no repeat
    s = seqs_of([[1, 2, 1, 1], [2, 3]])
    assert repeat_share(s) == pytest.approx(2 / 6)
    # counting training events only (first 2 of user 0, first 1 of user 1): no repeat among 1 2 | 2
    assert repeat_share(s, ends=np.array([2, 5])) == 0.0
    assert repeat_share(seqs_of([[0, 0, 1]])) == 0.0  # unknown items (0) are never a repeat


def test_auto_includes_seen_items_from_five_percent_repeats_and_says_why():
    assert REPEAT_THRESHOLD == 0.05
    low = decide_seen("auto", 0.049)
    assert low.exclude and low.protocol == "exclude_seen" and "4.9 %" in low.reason
    high = decide_seen("auto", 0.05)
    assert not high.exclude and high.protocol == "all_items" and "5.0 %" in high.reason
    assert decide_seen("include", 0.0).protocol == "all_items"
    assert decide_seen("exclude", 0.9).protocol == "exclude_seen"
    assert seen_from_card({"seen": {"repeat_share": 0.2}}).protocol == "all_items"
    assert seen_from_card({}).exclude  # an old card without a share: excluded, and the reason says so
    assert seen_from_card({"seen": {"repeat_share": 0.2}}, "exclude").to_dict()["rule"] == "exclude"
    with pytest.raises(UserInputError, match="Seen must be one of auto, exclude, include"):
        decide_seen("sometimes", 0.1)
