"""What-if edits: the new scores are exactly the model's on the edited history, and nothing is written."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import torch

from core.checkpoint import load_checkpoint
from core.errors import NotFoundError, UserInputError
from core.explain import (
    HistoryExplainer,
    InsertItem,
    MoveEvent,
    RemoveEvents,
    apply_edits,
    load_labelled_history,
    what_if,
)
from core.model import gap_bucket
from core.sequences import History, make_batch
from core.store import connect_read


@pytest.fixture
def setup(synthetic_db, untrained_model_dir):
    loaded = load_checkpoint(untrained_model_dir)
    with connect_read(synthetic_db) as con:
        lh = load_labelled_history(con, loaded, "u003")
    return loaded, lh


def db_state(db) -> tuple:
    with connect_read(db) as con:
        return con.execute("SELECT count(*), sum(hash(user_id, item_id, ts)) FROM events").fetchone()


def test_removal_changes_scores_exactly_as_the_model_alone_would(setup, synthetic_db):
    loaded, lh = setup
    before_db = db_state(synthetic_db)
    h = lh.history
    steps = (lh.labels[-1].step, lh.labels[-4].step)
    result = what_if(HistoryExplainer(loaded, event_evals=150, window_evals=50), lh, [RemoveEvents(steps)], k=5)
    keep = np.array([lab.step not in steps for lab in lh.labels])
    by_hand = History.from_arrays(h.items[keep], h.ts[keep], h.event_types[keep], h.context[keep], k=h.context.shape[1])
    with torch.no_grad():
        scores = loaded.model(make_batch([by_hand], 50))[0]
    target = loaded.vocab.item_index(result.target)
    assert result.target == result.before[0].item_id  # default: follow the top-1 before the edit
    assert result.target_score_after == pytest.approx(scores[target].item(), abs=1e-6)
    ranked = scores.clone()
    ranked[torch.from_numpy(np.unique(by_hand.items))] = float("-inf")
    top = torch.topk(ranked, 5)
    assert [r.item_id for r in result.after] == [loaded.vocab.item_id(int(i)) for i in top.indices]
    np.testing.assert_allclose([r.score for r in result.after], top.values.numpy(), atol=1e-6)
    assert result.target_rank_after == 1 + int((ranked > scores[target]).sum())
    assert len(result.edited) == len(lh) - 2 and result.path_after.distribution.shape == (len(lh) - 2, 6)
    np.testing.assert_allclose(result.path_after.distribution.sum(1), 1.0, atol=1e-5)
    assert result.explanation is not None and result.explanation.target == result.target
    assert list(result.recommendations.columns) == ["rank", "item_id", "score"]
    assert db_state(synthetic_db) == before_db


def test_no_edit_reproduces_the_history_and_insert_move_reorder(setup):
    loaded, lh = setup
    same = apply_edits(lh, [], loaded.vocab)
    for field in ("items", "gaps", "event_types", "context", "ts"):
        np.testing.assert_array_equal(getattr(same.history, field), getattr(lh.history, field))
    t1, t2 = lh.labels[1].time, lh.labels[2].time
    middle = t1 + (t2 - t1) / 2
    first = lh.labels[0]
    edited = apply_edits(
        lh,
        [InsertItem("i001", middle.replace(microsecond=0)), MoveEvent(first.step, lh.labels[-1].time + dt.timedelta(hours=1))],
        loaded.vocab,
        titles={"i001": "Inserted title"},
    )
    steps = [lab.step for lab in edited.labels]
    assert steps[:3] == [lh.labels[1].step, -1, lh.labels[2].step] and steps[-1] == first.step
    assert edited.labels[1].title == "Inserted title" and edited.history.items[1] == loaded.vocab.item_index("i001")
    assert (np.diff(edited.history.ts) >= 0).all()
    expected_gaps = gap_bucket(np.diff(edited.history.ts, prepend=edited.history.ts[:1]), np.arange(len(edited)) == 0)
    np.testing.assert_array_equal(edited.history.gaps, expected_gaps)
    assert len(lh) == len(edited) - 1  # the input history is left as it was
    most = np.bincount(lh.history.event_types[lh.history.event_types > 0]).argmax()
    assert edited.history.event_types[1] == most


def test_bad_edits_say_what_is_wrong(setup):
    loaded, lh = setup
    with pytest.raises(UserInputError, match="no event at step 9999"):
        apply_edits(lh, [RemoveEvents((9999,))], loaded.vocab)
    with pytest.raises(NotFoundError, match="does not know item 'nope'"):
        apply_edits(lh, [InsertItem("nope", dt.datetime(2025, 1, 1))], loaded.vocab)
