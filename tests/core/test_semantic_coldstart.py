"""Cold-start evaluation helpers: expected hit rates with ties, held-out items, the training copy, target ranks."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from core.checkpoint import load_checkpoint
from core.semantic import extend_catalogue, interest_states
from core.semantic.coldstart import (
    ColdStartRanks,
    cold_start_ranks,
    cold_start_targets,
    held_out_items,
    without_items,
)
from core.sequences import load_sequences
from core.store import connect_read


def test_expected_hit_rate_and_ndcg_with_random_tie_breaking_by_hand():
    r = ColdStartRanks(np.arange(4), greater=np.array([0, 9, 12, 5]), equal=np.array([0, 0, 0, 9]))
    # P(hit@10): 1, 1, 0, and 5 of the 10 equally likely positions 6..15
    assert r.hit_rate(10) == pytest.approx((1 + 1 + 0 + 0.5) / 4)
    tied = sum(1 / np.log2(p + 1) for p in range(6, 11)) / 10
    assert r.ndcg(10) == pytest.approx((1.0 + 1 / np.log2(11) + 0 + tied) / 4)
    assert ColdStartRanks(np.zeros(0), np.zeros(0), np.zeros(0)).hit_rate(10) == 0.0


def test_held_out_items_are_a_seeded_share():
    ids = [f"i{n:03d}" for n in range(200)]
    a = held_out_items(ids, 0.2, seed=3)
    assert len(a) == 40 and a == sorted(a) and set(a) <= set(ids)
    assert a == held_out_items(ids, 0.2, seed=3) and a != held_out_items(ids, 0.2, seed=4)


def test_without_items_drops_their_events_only_in_the_copy(synthetic_db, tmp_path):
    with connect_read(synthetic_db) as con:
        top = [r[0] for r in con.execute("SELECT item_id FROM events GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 3").fetchall()]
        n_events, n_items = con.execute("SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM items)").fetchall()[0]
        n_top = con.execute("SELECT count(*) FROM events WHERE list_contains(?, item_id)", [top]).fetchall()[0][0]
    out = without_items(synthetic_db, tmp_path / "train.duckdb", top)
    with connect_read(out) as con:
        left, items = con.execute("SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM items)").fetchall()[0]
        on_top = con.execute("SELECT count(*) FROM events WHERE list_contains(?, item_id)", [top]).fetchall()[0][0]
    assert on_top == 0 and left == n_events - n_top and items == n_items
    with connect_read(synthetic_db) as con:
        assert con.execute("SELECT count(*) FROM events").fetchall()[0][0] == n_events


def test_cold_start_ranks_count_the_items_above_and_level_with_a_new_target(synthetic_db, untrained_model_dir):
    loaded = load_checkpoint(untrained_model_dir)
    n = loaded.vocab.n_items
    grown = extend_catalogue(loaded, ["new-a", "new-b"])  # no text: both new items score 0 for everyone
    with connect_read(synthetic_db) as con:
        seqs = load_sequences(con, grown.vocab)
    items = seqs.items.copy()
    last = seqs.offsets[1:] - 1
    items[last[:5]] = n + 1  # make five users' last event a new item
    seqs = dataclasses.replace(seqs, items=items)
    rows, targets = cold_start_targets(seqs, first_new=n + 1)
    assert rows.tolist() == [0, 1, 2, 3, 4] and targets.tolist() == last[:5].tolist()
    ranks = cold_start_ranks(grown, seqs, rows, targets)
    for r, t, g, e in zip(rows, targets, ranks.greater, ranks.equal, strict=True):
        h = seqs.history(int(r), 0, int(t - seqs.offsets[r]))
        with torch.no_grad():
            s = grown.model.score(interest_states(grown, [h]))[0]  # [I+1]
        s[np.unique(h.items)] = float("-inf")
        s[0] = float("-inf")
        assert g == int((s > 0).sum()) and e == int((s == 0).sum()) - 1 == 1  # "new-b" ties with "new-a"
