"""`core.compare.protocols`: two models' ranks under one protocol paired by user, their NDCG@10 and the paired
difference worked out by hand on four users, one of whom model B cannot rank."""

import math

import numpy as np
import pytest

from core.compare.protocols import compare_protocol, paired_bootstrap, protocol_table
from core.evaluate import Ranked
from core.sequences import Sequences

D3 = 1 / math.log2(3)  # NDCG of a target at rank 2


def four_users() -> Sequences:
    """Users u0..u3 with two events each (the ranks below are given, so the events only name the users)."""
    n = 8
    return Sequences(
        user_ids=np.array([f"u{k}" for k in range(4)], dtype=object), offsets=np.arange(0, 10, 2, dtype=np.int64),
        items=np.ones(n, np.int64), ts=np.arange(n, dtype=np.int64), gaps=np.ones(n, np.int64),
        event_types=np.zeros(n, np.int64), context=np.zeros((n, 0), np.int64),
    )


def ranked(rows: list[int], ranks: list[int]) -> Ranked:
    rows_ = np.array(rows, np.int64)
    return Ranked(rows_, 2 * rows_ + 1, np.ones(len(rows), np.int64), np.array(ranks, np.int64),
                  np.zeros((len(rows), 10), np.int64))


def test_a_protocol_pairs_users_and_compares_them_by_hand():
    seqs = four_users()
    # A ranks u0..u3 at 1, 3, 12, 2; B does not know u1's target and ranks u0, u2, u3 at 2, 1, 2
    a, b = ranked([0, 1, 2, 3], [1, 3, 12, 2]), ranked([0, 2, 3], [2, 1, 2])
    pc = compare_protocol("exclude_seen", "loo", a, b, seqs, seqs, (20, 20), k=10, n_boot=500, seed=0)
    assert pc.users == 3  # u1 is left out of the pairs
    assert pc.ndcg_a == pytest.approx((1 + 0 + D3) / 3)  # u0 rank 1, u2 rank 12 (outside 10), u3 rank 2
    assert pc.ndcg_b == pytest.approx((D3 + 1 + D3) / 3)
    assert pc.ndcg_diff == pytest.approx(((1 - D3) + (0 - 1) + 0) / 3)
    assert pc.ndcg_diff_low <= pc.ndcg_diff <= pc.ndcg_diff_high
    # A's metrics on the paired users only: with u1 (rank 3) HR@10 would be 3/4, MRR (1 + 1/3 + 1/12 + 1/2) / 4
    assert pc.metrics_a["HR@10"] == pytest.approx(2 / 3) and pc.metrics_a["MRR"] == pytest.approx((1 + 1 / 12 + 1 / 2) / 3)
    assert pc.metrics_a["NDCG@10"] == pytest.approx(pc.ndcg_a) and pc.metrics_b["NDCG@10"] == pytest.approx(pc.ndcg_b)
    # RecBole's protocol names its metrics its own way and cuts MRR at 10 (u2's rank 12 counts 0)
    rb = compare_protocol("recbole", "recbole", a, b, seqs, seqs, (20, 20), k=10, n_boot=500, seed=0)
    assert rb.metrics_a["hit@10"] == pytest.approx(2 / 3) and rb.metrics_a["mrr@10"] == pytest.approx((1 + 0 + 1 / 2) / 3)
    assert rb.metrics_a["ndcg@10"] == pytest.approx(rb.ndcg_a) and "HR@10" not in rb.metrics_a
    d = rb.to_dict()
    assert d["protocol"] == "recbole" and d["split"] == "recbole" and d["users"] == 3
    assert d["NDCG@10_diff"] == pytest.approx(pc.ndcg_diff) and "RecBole" in d["description"]
    table = protocol_table({"exclude_seen": pc, "recbole": rb})
    assert table["protocol"].tolist() == ["exclude_seen", "recbole"] and table["users"].tolist() == [3, 3]
    assert table["A − B"].tolist() == pytest.approx([pc.ndcg_diff, rb.ndcg_diff])


def test_paired_bootstrap_of_equal_differences_is_that_difference_and_of_no_users_nan():
    assert paired_bootstrap(np.full(7, 0.25), 100, 0) == pytest.approx((0.25, 0.25, 0.25))
    assert all(math.isnan(x) for x in paired_bootstrap(np.zeros(0), 100, 0))
    mean, low, high = paired_bootstrap(np.array([0.0, 1.0]), 2000, 0)
    assert mean == 0.5 and 0.0 <= low < 0.5 < high <= 1.0
