"""Training: windows and batches from the CSR arrays, the model card, resume, and a time split."""

import json

import numpy as np
import pytest

from core.checkpoint import load_checkpoint
from core.errors import UserInputError
from core.evaluate import leave_one_out
from core.model import ModelConfig
from core.sequences import Sequences
from core.train import ResumeState, TrainConfig, epoch_batches, train, train_batch, training_windows

SMALL = ModelConfig(d_model=16, n_layers=1, n_heads=2, max_len=20, dropout=0.1)


def seqs_of(users: list[list[int]]) -> Sequences:
    lens = [len(u) for u in users]
    n = sum(lens)
    return Sequences(
        user_ids=np.array([f"u{k}" for k in range(len(users))], dtype=object),
        offsets=np.r_[0, np.cumsum(lens)].astype(np.int64),
        items=np.array([i for u in users for i in u], np.int64),
        ts=np.arange(n, dtype=np.int64),
        gaps=np.ones(n, np.int64),
        event_types=np.zeros(n, np.int64),
        context=np.zeros((n, 0), np.int64),
    )


def test_windows_make_every_training_event_a_target_exactly_once():
    s = seqs_of([list(range(1, 13)), [5, 6, 7], [9, 9]])
    sp = leave_one_out(s)
    w = training_windows(s, sp, max_len=4)
    # user 0 trains on events 1..10 (11, 12 held out): inputs 1..9 -> windows of 4 from the end: [6..9] [2..5] [1]
    batch, targets = train_batch(s, w.lo, w.hi, T=4)
    got = sorted(int(t) for t in targets[targets > 0])
    assert got == list(range(2, 11))  # user 1 (one training event) and user 2 (none) add no targets
    # alignment: the target of each slot is the next event of the same user
    assert batch.items[0].tolist() == [6, 7, 8, 9] and targets[0].tolist() == [7, 8, 9, 10]
    assert batch.items[2].tolist() == [0, 0, 0, 1] and targets[2].tolist() == [0, 0, 0, 2]
    assert w.n_targets == 9


def test_epoch_batches_cover_all_windows_and_split_between_processes():
    s = seqs_of([list(range(1, 30))] * 10)
    w = training_windows(s, leave_one_out(s), max_len=5)
    one = np.concatenate(epoch_batches(w, 7, np.random.default_rng(0)))
    assert sorted(one.tolist()) == list(range(len(w)))
    a = epoch_batches(w, 7, np.random.default_rng(0), rank=0, world=2)
    b = epoch_batches(w, 7, np.random.default_rng(0), rank=1, world=2)
    assert len(a) == len(b) and not set(np.concatenate(a)) & set(np.concatenate(b))


def test_trained_fixture_has_a_model_card(trained_model_dir):
    card = json.loads((trained_model_dir / "metrics.json").read_text())
    for key in ("created", "device", "epochs", "seconds", "valid", "test", "split", "trained_until", "best_epoch"):
        assert key in card, key
    assert card["split"]["kind"] == "loo" and card["device"] == "cpu"
    assert 0 < card["test"]["NDCG@10"] <= 1 and card["epochs"] >= card["best_epoch"] >= 1
    fp = json.loads((trained_model_dir / "fingerprint.json").read_text())
    assert fp["users"] == 120 and fp["events"] > 0
    assert (trained_model_dir / "train_state.safetensors").exists()


def test_resume_state_reads_back_the_card_it_wrote(trained_model_dir):
    saved = json.loads((trained_model_dir / "metrics.json").read_text())["resume"]
    state = ResumeState.from_dict(saved)
    assert state.to_dict() == saved  # every key and value, in the same order
    assert list(saved) == ["epoch", "step", "best_epoch", "best_score", "bad_epochs", "seconds", "history"]
    assert [r.epoch for r in state.history] == list(range(1, state.epoch + 1))
    assert state.best_score == state.history[state.best_epoch - 1].valid_ndcg10
    assert ResumeState.from_dict({}) == ResumeState()  # a fresh run starts at epoch 0 with no best


def test_resume_continues_where_training_stopped(synthetic_db, tmp_path):
    out = tmp_path / "m"
    cfg = TrainConfig(epochs=2, batch_size=32, seed=1, device="cpu", patience=50)
    first = train(synthetic_db, out, SMALL, cfg)
    assert first.epochs == 2
    seen: list[int] = []
    more = train(synthetic_db, out, None, TrainConfig(epochs=3, batch_size=32, seed=1, device="cpu", patience=50),
                 progress=lambda e: seen.append(e.epoch), resume=True)
    assert seen == [3] and more.epochs == 3 and more.seconds >= first.seconds
    card = load_checkpoint(out).card
    assert [h["epoch"] for h in card["resume"]["history"]] == [1, 2, 3]
    assert load_checkpoint(out).config == SMALL  # the checkpoint's model config wins on resume


def test_max_steps_stops_mid_epoch_and_records_the_steps_of_a_whole_epoch(synthetic_db, tmp_path):
    out = tmp_path / "m"
    r = train(synthetic_db, out, SMALL, TrainConfig(epochs=3, batch_size=8, seed=1, device="cpu", max_steps=5))
    h = load_checkpoint(out).card["resume"]["history"]
    assert r.stopped == "max_steps" and r.epochs == 1 and len(h) == 1
    assert h[0]["steps"] == 5 < h[0]["epoch_steps"]  # the checkpoint of the partial epoch is still written
    assert (out / "model.safetensors").exists()


def test_time_split_training_and_a_clear_error_for_too_little_data(synthetic_db, tmp_path):
    r = train(synthetic_db, tmp_path / "t", SMALL, TrainConfig(epochs=1, split="time", device="cpu"))
    card = load_checkpoint(tmp_path / "t").card
    assert r.epochs == 1 and card["split"]["kind"] == "time" and "test_from" in card["split"]
    with pytest.raises(UserInputError):
        train(synthetic_db, tmp_path / "x", SMALL, TrainConfig(epochs=1, split="bogus", device="cpu"))  # type: ignore[arg-type]


def test_save_load_gives_identical_scores(synthetic_db, trained_model_dir, tmp_path):
    import torch

    from core.checkpoint import save_checkpoint
    from core.sequences import load_sequences, make_batch
    from core.store import connect_read

    a = load_checkpoint(trained_model_dir)
    with connect_read(synthetic_db) as con:
        seqs = load_sequences(con, a.vocab)
    batch = make_batch([seqs.history(r) for r in range(5)], a.config.max_len, n_context=len(a.vocab.context))
    b = load_checkpoint(save_checkpoint(tmp_path / "copy", a.model, a.vocab, a.fingerprint, a.card))
    with torch.no_grad():
        assert torch.equal(a.model(batch), b.model(batch))


def test_lr_decay_counts_the_epochs_that_did_not_improve():
    """Known answer: validation NDCG@10 0.10, 0.12, 0.11, 0.12005, 0.13 with min_delta 1e-4 misses epochs 3 and 4
    (epoch 4 improves by less than min_delta), so epoch 6 runs at lr * lr_decay ** 2."""
    from core.train.loop import missed_epochs
    from core.train.records import EpochRecord

    recs = [EpochRecord(e, 1.0, v, 0.0, 0.0, 0.0, 1, 1, 0.0, 0.0) for e, v in
            enumerate([0.10, 0.12, 0.11, 0.12005, 0.13], start=1)]
    assert [missed_epochs(recs[:k], 1e-4) for k in range(6)] == [0, 0, 0, 1, 2, 2]
    assert TrainConfig().lr_decay == 1.0  # constant rate unless asked: the behaviour before the option
    with pytest.raises(UserInputError):
        TrainConfig(lr_decay=1.5)
    with pytest.raises(UserInputError):
        TrainConfig(lr_decay=0)
