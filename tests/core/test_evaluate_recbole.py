"""RecBole's sequential protocol (`core.evaluate.recbole`, `interestlens evaluate --recbole`) on a five-user log
whose every rank and metric is worked out by hand below."""

import math

import numpy as np
import pytest
import torch

from core.evaluate import leave_one_out, most_popular_scorer, rank_targets
from core.evaluate.recbole import evaluate_recbole, recbole_baselines, recbole_metrics, recbole_split
from core.model import Batch
from core.sequences import Sequences

# Items 1..5. Base scores; item 5 ties item 3 on purpose (column 0 is padding and never ranked).
BASE = torch.tensor([0.0, 5.0, 4.0, 3.0, 2.0, 3.0])

# u0 has 2 events (RecBole keeps both for training: no test), u3 one event (nothing), u1 three events (a test
# target, no validation), u2 and u4 four events (both). u4's test target (3) is an item it already had.
LOG = [[1, 2], [3, 4, 2], [5, 2, 4, 3], [4], [2, 3, 4, 3]]


def seqs_of(users: list[list[int]]) -> Sequences:
    """Users' item lists as Sequences, one event per second in list order."""
    lens = [len(u) for u in users]
    n = sum(lens)
    return Sequences(
        user_ids=np.array([f"u{k}" for k in range(len(users))], dtype=object),
        offsets=np.r_[0, np.cumsum(lens)].astype(np.int64),
        items=np.array([i for u in users for i in u], np.int64), ts=np.arange(n, dtype=np.int64),
        gaps=np.ones(n, np.int64), event_types=np.zeros(n, np.int64), context=np.zeros((n, 0), np.int64),
    )


def first_item_boost(batch: Batch) -> torch.Tensor:
    """Scores [B, 6]: BASE, plus 10 for the first (oldest) item of the window the model reads, so a wrong input
    window changes the ranks."""
    first = batch.items.gather(1, batch.mask.long().argmax(1, keepdim=True))  # [B,1] left-padded windows
    return BASE.repeat(len(first), 1).scatter_add(1, first, torch.full((len(first), 1), 10.0))


def test_recbole_split_tests_users_from_three_events_and_validates_from_four():
    seqs = seqs_of(LOG)  # offsets 0, 2, 5, 9, 10, 14
    split = recbole_split(seqs)
    assert split.test.tolist() == [-1, 4, 8, -1, 13]
    assert split.valid.tolist() == [-1, -1, 7, -1, 12]
    assert split.train_end.tolist() == [2, 4, 7, 10, 12]
    # the same target events as InterestLens's leave-one-out where both have one; loo also tests u0
    loo = leave_one_out(seqs)
    assert loo.test.tolist() == [1, 4, 8, -1, 13]
    assert loo.valid.tolist() == [-1, 3, 7, -1, 12]


def test_recbole_ranks_and_metrics_match_the_hand_computation():
    # max_len 2, so the model reads the last two earlier events:
    #   u1: input [3, 4] -> item 3 boosted to 13; target 2 (4.0): above it 3 (13), 1 (5)          -> rank 3
    #   u2: input [5, 2, 4], window [2, 4] -> item 2 boosted to 14; target 3 (3.0): above it 2, 1,
    #       and item 5 ties at 3.0, which counts against the target (pessimistic)              -> rank 4
    #       (seen items 5, 2, 4 stay in the ranking; under exclude_seen the rank would be 2)
    #   u4: input [2, 3, 4], window [3, 4] -> item 3 boosted to 13; target 3 (a repeat)          -> rank 1
    seqs = seqs_of(LOG)
    res = evaluate_recbole(first_item_boost, seqs, max_len=2, ks=(1, 3, 5))
    assert res.users == 3
    assert res.ranks.tolist() == [3, 4, 1]
    m = res.metrics
    assert m["hit@1"] == pytest.approx(1 / 3)
    assert m["hit@3"] == pytest.approx(2 / 3)
    assert m["hit@5"] == pytest.approx(1.0)
    assert m["ndcg@1"] == pytest.approx(1 / 3)
    assert m["ndcg@3"] == pytest.approx((1 / math.log2(4) + 0 + 1) / 3)  # = 0.5
    assert m["ndcg@5"] == pytest.approx((1 / math.log2(4) + 1 / math.log2(5) + 1) / 3)
    assert m["mrr@1"] == pytest.approx(1 / 3)
    assert m["mrr@3"] == pytest.approx((1 / 3 + 0 + 1) / 3)  # RecBole cuts MRR at K: u2's 1/4 is left out
    assert m["mrr@5"] == pytest.approx((1 / 3 + 1 / 4 + 1) / 3)
    d = res.to_dict()
    assert d["users"] == 3 and d["ndcg@3"] == pytest.approx(0.5) and "RecBole" in d["protocol"]
    # the input is the model's window, not the whole history: one user 3 5 2 4 | 3 reads [2, 4] at max_len 2
    # (2 -> 14; target 3 below 2 and 1, tied with 5 -> rank 4) and [3, 5, 2, 4] at max_len 50 (3 -> 13 -> rank 1)
    one = seqs_of([[3, 5, 2, 4, 3]])
    assert evaluate_recbole(first_item_boost, one, max_len=2, ks=(1,)).ranks.tolist() == [4]
    assert evaluate_recbole(first_item_boost, one, max_len=50, ks=(1,)).ranks.tolist() == [1]


def test_the_recbole_protocol_differs_from_all_items_on_loo_only_by_its_users():
    seqs = seqs_of(LOG)
    rows, targets = leave_one_out(seqs).targets("test")
    loo = rank_targets(first_item_boost, seqs, rows, targets, max_len=2, protocol="all_items")
    # u0 (input [1] -> 1 boosted to 15; target 2 at 4.0 -> rank 2) is ranked by loo, not by RecBole
    assert loo.ranks.tolist() == [2, 3, 4, 1]
    assert evaluate_recbole(first_item_boost, seqs, max_len=2).ranks.tolist() == loo.ranks[1:].tolist()


def test_recbole_metrics_of_no_users_are_zero():
    assert recbole_metrics(np.zeros(0, np.int64), (10,)) == {"hit@10": 0.0, "ndcg@10": 0.0, "mrr@10": 0.0}


# Items 1..4. u0 has 2 events: RecBole trains on both (its 1 -> 2 counts), loo would keep only the first.
# u1 tests 3 after [1, 2]; u2 tests 2 after [2, 3, 1]; u3 tests 4 after [3, 4, 4, 1] (u2's and u3's targets are
# items they already had: nothing is removed).
BASE_LOG = [[1, 2], [1, 2, 3], [2, 3, 1, 2], [3, 4, 4, 1, 4]]


def test_recbole_baselines_match_the_hand_computation():
    # RecBole's training events: u0 [1, 2], u1 [1, 2], u2 [2, 3], u3 [3, 4, 4]
    #   popularity: item 1: 2, item 2: 3, item 3: 2, item 4: 2
    #   transitions: 1 -> 2 (u0, u1), 2 -> 3 (u2), 3 -> 4 and 4 -> 4 (u3); tie-break popularity / (3 + 1)
    # most popular ranks every history [_, 2, 3, 2, 2]:
    #   u1 target 3 (2): 2 above, 1 and 4 tie (against it) -> 4; u2 target 2 (3) -> 1; u3 target 4 (2) -> 4
    # Markov, by the last input item:
    #   u1 last 2: [_, .5, .75, 1 + .5, .5]  -> target 3 first                      -> 1
    #   u2 last 1: [_, .5, 2 + .75, .5, .5]  -> target 2 first                      -> 1
    #   u3 last 1: the same row; target 4 (.5): 2 above, 1 and 3 tie                -> 4
    seqs = seqs_of(BASE_LOG)
    base = recbole_baselines(seqs, n_items=4, max_len=50, ks=(1, 3, 5))
    assert base["most_popular"].ranks.tolist() == [4, 1, 4]
    assert base["markov"].ranks.tolist() == [1, 1, 4]
    pop, mk = base["most_popular"].metrics, base["markov"].metrics
    assert base["most_popular"].users == base["markov"].users == 3
    assert pop["hit@1"] == pytest.approx(1 / 3) and pop["hit@3"] == pytest.approx(1 / 3)
    assert pop["hit@5"] == pytest.approx(1.0)
    assert pop["ndcg@5"] == pytest.approx((1 / math.log2(5) + 1 + 1 / math.log2(5)) / 3)
    assert pop["mrr@3"] == pytest.approx(1 / 3) and pop["mrr@5"] == pytest.approx((1 / 4 + 1 + 1 / 4) / 3)
    assert mk["hit@1"] == pytest.approx(2 / 3) and mk["ndcg@3"] == pytest.approx(2 / 3)
    assert mk["ndcg@5"] == pytest.approx((1 + 1 + 1 / math.log2(5)) / 3)
    assert mk["mrr@5"] == pytest.approx((1 + 1 + 1 / 4) / 3)
    # beside the model, with the same users, in the JSON section `recbole`
    res = evaluate_recbole(first_item_boost, seqs, max_len=50, ks=(1, 3, 5), n_items=4)
    assert res.users == 3 and set(res.baselines) == {"most_popular", "markov"}
    d = res.to_dict()
    assert d["baselines"]["markov"]["mrr@5"] == pytest.approx((1 + 1 + 1 / 4) / 3)
    assert d["baselines"]["most_popular"]["hit@1"] == pytest.approx(1 / 3)
    assert "baselines" not in evaluate_recbole(first_item_boost, seqs, max_len=50, ks=(1,)).to_dict()


def test_recbole_baselines_are_fitted_on_recbole_training_events_not_loo():
    # loo trains on u0 [1], u1 [1], u2 [2, 3], u3 [3, 4, 4]: popularity 1: 2, 2: 1, 3: 2, 4: 2. Fitted that way,
    # u1's target 3 ties 1 and 4 (rank 3), u2's target 2 is below 1, 3, 4 (rank 4), u3's target 4 ties 1 and 3
    # (rank 3). RecBole's split keeps u0's and u1's second events (item 2), so u2 ranks its target first.
    seqs = seqs_of(BASE_LOG)
    assert recbole_split(seqs).train_end.tolist()[:2] == [2, 4]  # offsets 0, 2, 5: u0 keeps 2 events, u1 2
    assert leave_one_out(seqs).train_end.tolist()[:2] == [1, 3]  # u0 1, u1 1
    rows, targets = recbole_split(seqs).targets("test")
    loo_fit = rank_targets(most_popular_scorer(seqs, leave_one_out(seqs), 4), seqs, rows, targets, 50,
                           protocol="all_items")
    assert loo_fit.ranks.tolist() == [3, 4, 3]
    assert recbole_baselines(seqs, n_items=4, max_len=50, ks=(1,))["most_popular"].ranks.tolist() == [4, 1, 4]
