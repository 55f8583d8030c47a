import numpy as np
import torch

from core.checkpoint import CheckpointError, load_checkpoint
from core.sequences import History, build_vocab, load_sequences, make_batch
from core.store import connect_read


def test_sequences_follow_canonical_order_and_vocab(synthetic_db):
    with connect_read(synthetic_db) as con:
        vocab = build_vocab(con)
        seqs = load_sequences(con, vocab)
        uid = seqs.user_ids[3]
        hist = con.execute(
            "SELECT item_id, epoch(ts)::BIGINT FROM events WHERE user_id = ? ORDER BY ts, run_id, seq", [uid]
        ).fetchall()
    h = seqs.history(3)
    assert [vocab.item_id(i) for i in h.items] == [r[0] for r in hist]
    assert h.ts.tolist() == [r[1] for r in hist]
    assert h.gaps[0] == 0 and (h.gaps[1:] > 0).all()
    assert seqs.offsets[-1] == len(seqs.items) == 6000
    assert (np.diff(seqs.offsets) > 0).all()


def test_make_batch_left_pads_and_keeps_latest():
    h1 = History.from_arrays([1, 2, 3, 4, 5], [0, 10, 20, 30, 40])
    h2 = History.from_arrays([7, 0, 8], [0, 5, 9])  # an unknown item (0) is dropped
    b = make_batch([h1, h2], max_len=3)
    assert b.items.tolist() == [[3, 4, 5], [0, 7, 8]]
    assert b.mask.tolist() == [[True, True, True], [False, True, True]]
    assert b.gaps[0, 0].item() > 0  # the window's first event keeps its real gap
    assert b.gaps[1, 1].item() == 0  # the history's first event has bucket 0


def test_checkpoint_round_trip_gives_identical_scores(synthetic_db, untrained_model_dir):
    lm = load_checkpoint(untrained_model_dir)
    with connect_read(synthetic_db) as con:
        seqs = load_sequences(con, lm.vocab)
    batch = make_batch([seqs.history(r) for r in range(5)], lm.config.max_len)
    again = load_checkpoint(untrained_model_dir)
    with torch.no_grad():
        assert torch.equal(lm.model(batch), again.model(batch))


def test_damaged_checkpoint_gives_clear_error(untrained_model_dir, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(untrained_model_dir, bad)
    data = (bad / "model.safetensors").read_bytes()
    (bad / "model.safetensors").write_bytes(data[: len(data) // 2])
    try:
        load_checkpoint(bad)
    except CheckpointError as exc:
        assert "damaged or truncated" in str(exc)
    else:
        raise AssertionError("a truncated checkpoint loaded")
