"""Evaluation protocol: metrics on a hand-computed example, splits, full ranking with seen items excluded,
baselines, and evaluate_model on the trained fixture."""

import math
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from core.evaluate import (
    EVAL_USERS_FILE,
    METRIC_KEYS,
    coverage,
    evaluate_model,
    hit_rate,
    leave_one_out,
    markov_scorer,
    most_popular_scorer,
    mrr,
    ndcg,
    popularity,
    rank_targets,
    summarize,
    time_split,
)
from core.evaluate.ranking import rank_batch
from core.sequences import Sequences


def seqs_of(users: list[list[int]], ts: list[list[int]] | None = None) -> Sequences:
    lens = [len(u) for u in users]
    items = np.array([i for u in users for i in u], np.int64)
    t = np.array([x for u in (ts or [list(range(n)) for n in lens]) for x in u], np.int64)
    n = len(items)
    return Sequences(
        user_ids=np.array([f"u{k}" for k in range(len(users))], dtype=object),
        offsets=np.r_[0, np.cumsum(lens)].astype(np.int64),
        items=items,
        ts=t,
        gaps=np.ones(n, np.int64),
        event_types=np.zeros(n, np.int64),
        context=np.zeros((n, 0), np.int64),
    )


def test_metrics_on_a_hand_computed_three_user_example():
    ranks = np.array([1, 3, 12])
    assert hit_rate(ranks, 1) == pytest.approx(1 / 3)
    assert hit_rate(ranks, 10) == pytest.approx(2 / 3)
    # NDCG@10 = (1/log2(2) + 1/log2(4) + 0) / 3 = (1 + 0.5) / 3
    assert ndcg(ranks, 10) == pytest.approx(0.5)
    assert ndcg(ranks, 20) == pytest.approx((1 + 0.5 + 1 / math.log2(13)) / 3)
    assert mrr(ranks) == pytest.approx((1 + 1 / 3 + 1 / 12) / 3)
    top = np.array([[1, 2], [2, 3], [3, 0]])  # 0 = empty slot, not an item
    assert coverage(top, n_items=10) == pytest.approx(0.3)
    s = summarize(ranks, top, 10)
    assert tuple(s) == METRIC_KEYS and s["NDCG@10"] == pytest.approx(0.5)
    with pytest.raises(ValueError):
        hit_rate(np.array([0]), 10)


def test_leave_one_out_split_holds_out_the_last_two_events():
    s = seqs_of([[1, 2, 3, 4], [5, 6], [7]])
    sp = leave_one_out(s)
    assert sp.test.tolist() == [3, 5, -1]
    assert sp.valid.tolist() == [2, -1, -1]
    assert sp.train_end.tolist() == [2, 5, 7]
    assert sp.targets("valid")[0].tolist() == [0]


def test_time_split_uses_global_cut_points():
    s = seqs_of([[1, 2, 3, 4], [5, 6, 7]], ts=[[0, 10, 20, 30], [5, 15, 25]])
    sp = time_split(s, cutoffs=(12, 22))
    # user 0: trains on events at 0 and 10, validates on 20, tests on 30; user 1: 5 | 15 | 25
    assert sp.train_end.tolist() == [2, 5] and sp.valid.tolist() == [2, 5] and sp.test.tolist() == [3, 6]
    assert sp.describe()["kind"] == "time"


def test_rank_excludes_seen_items_but_never_the_target_and_counts_ties_pessimistically():
    s = seqs_of([[4, 2, 4]])  # the target (item 4) was also seen before: it stays rankable
    scores = torch.tensor([[0.0, 5.0, 9.0, 5.0, 5.0, 1.0]])  # item 2 (seen) would be first
    ranks, top = rank_batch(scores, s, np.array([0]), np.array([2]), np.array([4]), k=3)
    # item 2 excluded; items 1, 3, 4 tie at 5.0: both others count above the target, so its rank is 3
    assert ranks.tolist() == [3]
    assert top.tolist() == [[1, 3, 4]]  # lists still show tied items lower index first


def test_tied_target_ranks_last_among_its_ties_whatever_its_index():
    s = seqs_of([[5, 1]])
    # target item 1 ties with items 3 and 4 at 2.0; item 2 scores higher; item 5 lower
    scores = torch.tensor([[0.0, 2.0, 7.0, 2.0, 2.0, -1.0]])
    ranks, _ = rank_batch(scores.clone(), s, np.array([0]), np.array([1]), np.array([1]), k=3, exclude=False)
    assert ranks.tolist() == [4]  # 1 + item 2 + two ties (a lower-index rule would have said 2)
    # a constant model gets the worst rank, not the best: 5 items, all tied -> rank 5, NDCG@10 = 1/log2(6)
    flat = torch.zeros(1, 6)
    ranks, _ = rank_batch(flat, s, np.array([0]), np.array([1]), np.array([1]), k=3, exclude=False)
    assert ranks.tolist() == [5]
    assert ndcg(ranks, 10) == pytest.approx(1 / math.log2(6))


def test_all_items_protocol_keeps_seen_items_in_the_ranking():
    s = seqs_of([[4, 2, 4]])
    scores = torch.tensor([[0.0, 5.0, 9.0, 3.0, 6.0, 1.0]])
    excl, _ = rank_batch(scores.clone(), s, np.array([0]), np.array([2]), np.array([4]), k=3, exclude=True)
    incl, top = rank_batch(scores.clone(), s, np.array([0]), np.array([2]), np.array([4]), k=3, exclude=False)
    assert excl.tolist() == [1]  # item 2 (seen) removed
    assert incl.tolist() == [2]  # item 2 stays and scores higher
    assert top.tolist() == [[2, 4, 1]]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_scores_are_refused_never_ranked(bad):
    s = seqs_of([[1, 2]])
    scores = torch.tensor([[0.0, 1.0, bad, 0.5]])
    with pytest.raises(ValueError, match="non-finite scores"):
        rank_batch(scores, s, np.array([0]), np.array([1]), np.array([2]), k=2)
    nan = torch.full((1, 4), float("nan"))  # all-NaN used to rank the target first (NDCG 1.0)
    with pytest.raises(ValueError, match="non-finite scores"):
        rank_batch(nan, s, np.array([0]), np.array([1]), np.array([2]), k=2, exclude=False)


def test_baselines_fit_training_events_only():
    s = seqs_of([[1, 2, 1, 3, 3], [2, 1, 2, 4, 5]])
    sp = leave_one_out(s)
    # training events: user 0 -> 1, 2, 1 ; user 1 -> 2, 1, 2
    assert popularity(s, sp, 5).tolist() == [0, 3, 3, 0, 0, 0]
    pop = most_popular_scorer(s, sp, 5)
    mk = markov_scorer(s, sp, 5)
    r = rank_targets(mk, s, np.array([0, 1]), sp.test[[0, 1]], max_len=10, k=2)
    # user 0's input ends with item 3 (never followed in training): popularity only, 1 and 2 seen; the target 3
    # ties with 4 and 5 (never in training) and ties count pessimistically -> rank 3
    assert r.ranks[0] == 3
    # user 1's input ends with 4: no transitions; 1, 2, 4 seen -> the target 5 ties with 3 -> rank 2
    assert r.ranks[1] == 2
    r = rank_targets(pop, s, np.array([0]), sp.valid[[0]], max_len=10)
    assert r.ranks.tolist() == [3]  # target 3; items 1 and 2 are seen; 3, 4, 5 tie at 0


def test_markov_counts_transitions():
    s = seqs_of([[1, 2, 1, 2, 1, 3, 9, 9], [1, 3, 3, 3, 4, 5]])
    sp = leave_one_out(s)
    score = mk_scores = markov_scorer(s, sp, 9)
    from core.model import Batch

    items = torch.tensor([[1]])
    b = Batch(items=items, gaps=items, event_types=items, context=torch.zeros(1, 1, 0, dtype=torch.long), mask=items > 0)
    row = score(b)[0]
    # after item 1: 2 (twice), 3 (twice); ties broken by popularity (< 1)
    assert int(row[2]) == 2 and int(row[3]) == 2 and int(row[4]) == 0
    assert mk_scores is score


def test_evaluate_model_writes_per_user_table_and_beats_most_popular(synthetic_db, trained_model_dir, tmp_path):
    model_dir = tmp_path / "model"  # a copy: the session's model folder stays as training left it
    shutil.copytree(trained_model_dir, model_dir)
    result = evaluate_model(synthetic_db, model_dir, device="cpu")
    d = result.to_dict()
    assert set(METRIC_KEYS) <= set(d) and set(d["baselines"]) == {"most_popular", "markov"}
    assert d["users"] == 120 and result.unknown_targets == 0
    assert result.metrics["NDCG@10"] > result.baselines["most_popular"]["NDCG@10"]
    df = pd.read_parquet(model_dir / EVAL_USERS_FILE)
    assert list(df.columns) == ["user_id", "item_id", "ts", "rank"] and len(df) == 120
    assert (df["rank"] >= 1).all()
    assert np.mean(df["rank"] <= 10) == pytest.approx(result.metrics["HR@10"])
