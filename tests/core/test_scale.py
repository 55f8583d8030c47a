"""What keeps the big paths cheap gives the same answers as the simple ones: top-K without a full sort, sequences
streamed in chunks with users mapped to rows in SQL, and the subset path for a few users."""

import numpy as np
import torch

from core.evaluate.ranking import top_k
from core.sequences import build_vocab, load_sequences
from core.store import connect_read


def _sorted_top(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    k = min(k, scores.shape[-1])
    values, idx = torch.sort(scores, dim=-1, descending=True, stable=True)
    return values[:, :k], idx[:, :k]


def test_top_k_breaks_ties_by_lower_index_on_a_hand_example():
    scores = torch.tensor([[float("-inf"), 5.0, 9.0, 5.0, 5.0, 1.0], [0.0, 1.0, 1.0, 1.0, 1.0, 2.0]])
    values, idx = top_k(scores, 3)
    assert idx.tolist() == [[2, 1, 3], [5, 1, 2]]
    assert values.tolist() == [[9.0, 5.0, 5.0], [2.0, 1.0, 1.0]]


def test_top_k_equals_a_stable_full_sort_with_ties_and_excluded_items():
    g = torch.Generator().manual_seed(0)
    for _ in range(500):
        b, n, k = (int(torch.randint(lo, hi, (1,), generator=g)) for lo, hi in ((1, 6), (1, 40), (1, 12)))
        scores = torch.randint(0, 4, (b, n), generator=g).float()  # few distinct values: many ties
        scores[torch.rand(b, n, generator=g) < 0.3] = float("-inf")  # seen items and padding
        got, want = top_k(scores, k), _sorted_top(scores, k)
        assert torch.equal(got[1], want[1]) and torch.equal(got[0], want[0])


def test_sequences_stream_in_chunks_with_the_same_result(synthetic_db):
    with connect_read(synthetic_db) as con:
        vocab = build_vocab(con)
        whole = load_sequences(con, vocab)
        chunked = load_sequences(con, vocab, chunk_rows=7)  # 6,000 events in 858 Arrow batches
        n_users, n_events = con.execute("SELECT count(DISTINCT user_id), count(*) FROM events").fetchone()
    assert whole.n_users == n_users == 120 and whole.offsets[-1] == n_events == 6000
    for name in ("user_ids", "offsets", "items", "ts", "gaps", "event_types", "context"):
        assert np.array_equal(getattr(whole, name), getattr(chunked, name)), name
    assert list(whole.user_ids) == sorted(whole.user_ids) and len(set(whole.user_ids)) == 120


def test_sequences_of_a_few_users_equal_their_rows_of_the_whole_log(synthetic_db):
    with connect_read(synthetic_db) as con:
        vocab = build_vocab(con)
        whole = load_sequences(con, vocab)
        picked = [str(whole.user_ids[r]) for r in (90, 3, 41)]
        some = load_sequences(con, vocab, users=[*picked, picked[0], "nobody"])  # a repeat and an unknown id
        one = load_sequences(con, vocab, users=[picked[1]])
    assert list(some.user_ids) == sorted(picked) and list(one.user_ids) == [picked[1]]
    for seqs in (some, one):
        for r, uid in enumerate(seqs.user_ids):
            a, b = seqs.history(r), whole.history(whole.row(uid))
            for name in ("items", "ts", "gaps", "event_types", "context"):
                assert np.array_equal(getattr(a, name), getattr(b, name)), (uid, name)
