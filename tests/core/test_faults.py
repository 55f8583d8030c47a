"""Faults: a process killed with SIGKILL in the middle of an ingest or of training, and damaged checkpoints.

- ingest: killed inside its transaction at each stage (and at seeded random moments of a larger run), the database
  is exactly as before (every table compared, row by row through hashes) and the retry stores every row once;
- training: killed after its epoch-2 save, `resume` restores exactly the saved weights and optimizer moments and
  continues counting epochs from 3, ending with the same weights as a run that was never interrupted; a save
  killed between its two renames is recovered;
- a truncated, garbled, mismatched or incomplete checkpoint is one sentence from the CLI.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from cli import app
from cli.common import run_app
from core.ingest import ingest
from core.model import ModelConfig
from core.store import connect_read
from core.train import TrainConfig, train
from core.train.state import TRAIN_STATE_FILE, load_resume

ROOT = Path(__file__).resolve().parents[2]
TABLES = ("events", "users", "items", "rejects", "meta")

INGEST_CHILD = """
import sys, time
from core.ingest import ingest
def progress(stage):
    print(stage, flush=True)
    if stage == sys.argv[3]:
        time.sleep(600)
ingest(sys.argv[1], "generic", sys.argv[2], progress=progress)
print("committed", flush=True)
"""


def contents(db: Path) -> dict:
    """Every table's row count and order-independent hash; ingest_runs as (run_id, status, counts)."""
    with connect_read(db) as con:
        out = {t: con.execute(f"SELECT count(*), coalesce(bit_xor(hash(x)), 0) FROM {t} x").fetchall()[0] for t in TABLES}
        out["ingest_runs"] = con.execute(
            "SELECT run_id, status, accepted, rejected, duplicates FROM ingest_runs ORDER BY run_id").fetchall()
    return out


def _log(path: Path, rows: int, seed: int = 0) -> Path:
    rng = random.Random(seed)
    with open(path, "w") as f:
        f.write("user_id,item_id,timestamp\n")
        for n in range(rows):
            f.write(f"k{rng.randrange(5000)},i{rng.randrange(3000):03d},{1_700_000_000 + n}\n")
    return path


def _child(db: Path, source: Path, hang: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", INGEST_CHILD, str(db), str(source), hang], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _kill_at(proc: subprocess.Popen, stage: str) -> list[str]:
    seen = []
    for line in proc.stdout:
        seen.append(line.strip())
        if line.strip() == stage:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    return seen


@pytest.mark.parametrize("stage", ["validating", "inserting events", "updating users and items"])
def test_ingest_killed_mid_transaction_leaves_the_database_as_before(writable_db, tmp_path, stage):
    source = _log(tmp_path / "events.csv", 2000)
    before = contents(writable_db)
    seen = _kill_at(_child(writable_db, source, stage), stage)
    assert seen[-1] == stage and "committed" not in seen
    assert contents(writable_db) == before  # not one row of the killed run, not even its run record
    result = ingest(writable_db, "generic", source)  # the retry lands every row once
    assert result.accepted + result.duplicates == 2000 and result.rejected == 0
    with connect_read(writable_db) as con:
        assert con.execute("SELECT count(*) FROM events WHERE run_id = ?", [result.run_id]).fetchall()[0][0] == result.accepted


def test_ingest_killed_at_random_moments_never_lands_half_a_batch(writable_db, tmp_path):
    source = _log(tmp_path / "big.csv", 200_000, seed=1)
    reference = tmp_path / "reference.duckdb"
    shutil.copy2(writable_db, reference)
    t0 = time.perf_counter()
    ingest(reference, "generic", source)
    duration = time.perf_counter() - t0
    strip = lambda c: {k: v for k, v in c.items() if k != "ingest_runs"}  # noqa: E731
    before, landed = strip(contents(writable_db)), strip(contents(reference))
    rng = random.Random(0)
    for _ in range(3):
        proc = _child(writable_db, source, "never")
        proc.stdout.readline()  # the child is running its ingest ("reading")
        time.sleep(rng.uniform(0.0, duration))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        now = contents(writable_db)
        assert strip(now) in (before, landed), "a killed run left part of its batch"
        assert all(status == "ok" for _, status, *_ in now["ingest_runs"])  # a killed run leaves no record at all
    result = ingest(writable_db, "generic", source)
    assert strip(contents(writable_db)) == landed  # every row exactly once, whatever happened before
    assert result.rejected == 0 and result.accepted + result.duplicates == 200_000


TRAIN_CHILD = """
import sys, time
from core.model import ModelConfig
from core.train import TrainConfig, train
def progress(r):
    print(f"epoch {r.epoch}", flush=True)
    if r.epoch == 3:  # epoch 3 is trained but not yet saved: the last save is epoch 2's
        time.sleep(600)
train(sys.argv[1], sys.argv[2], ModelConfig(d_model=16, n_layers=1, n_heads=1, max_len=20, dropout=0.1),
      TrainConfig(epochs=6, batch_size=64, lr=3e-3, warmup=5, patience=100, seed=0, device="cpu", num_threads=1,
                  checkpoint_every=0), progress=progress)
"""
MODEL = ModelConfig(d_model=16, n_layers=1, n_heads=1, max_len=20, dropout=0.1)


def _config(epochs: int) -> TrainConfig:
    return TrainConfig(epochs=epochs, batch_size=64, lr=3e-3, warmup=5, patience=100, seed=0, device="cpu",
                       num_threads=1, checkpoint_every=0)


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_training_killed_resumes_from_its_last_checkpoint(synthetic_db, tmp_path, one_thread):
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", TRAIN_CHILD, str(synthetic_db), str(out)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = []
    for line in proc.stdout:
        seen.append(line.strip())
        if line.strip() == "epoch 3":
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert seen == ["epoch 1", "epoch 2", "epoch 3"]
    card = json.loads((out / "metrics.json").read_text())
    assert card["epochs"] == 2 and card["resume"]["epoch"] == 2 and card["stopped"] == "running"
    saved = load_file(str(out / TRAIN_STATE_FILE))

    # A save killed between its two renames (out -> out.old, tmp -> out) is recovered from out.old.
    torn = tmp_path / "torn"
    shutil.copytree(out, torn.with_name("torn.old"))
    (tmp_path / "torn.tmp").mkdir()
    (tmp_path / "torn.tmp" / "model.safetensors").write_bytes(b"half written")
    prior = load_resume(torn)
    assert prior is not None and prior[0].card["epochs"] == 2 and torn.is_dir()

    # Resuming restores exactly the saved weights and optimizer moments (no epoch left to run here).
    train(synthetic_db, out, MODEL, _config(2), resume=True)
    restored = load_file(str(out / TRAIN_STATE_FILE))
    assert restored.keys() == saved.keys()
    assert all(torch.equal(restored[k], saved[k]) for k in saved)

    # Resuming to 4 epochs counts on from 3 and ends where an uninterrupted run ends.
    result = train(synthetic_db, out, MODEL, _config(4), resume=True)
    card = json.loads((out / "metrics.json").read_text())
    assert result.epochs == 4 and [h["epoch"] for h in card["resume"]["history"]] == [1, 2, 3, 4]
    reference = tmp_path / "uninterrupted"
    train(synthetic_db, reference, MODEL, _config(4))
    ours, theirs = load_file(str(out / TRAIN_STATE_FILE)), load_file(str(reference / TRAIN_STATE_FILE))
    assert all(torch.allclose(ours[k].float(), theirs[k].float(), atol=1e-5) for k in theirs if k.startswith("model."))


def _cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["interestlens", *args])
    code = run_app(app)
    out = capsys.readouterr()
    return code, out.out, out.err


def damage(model: Path, how: str) -> None:
    """Damage a checkpoint folder in one of the ways disks, copies and version changes do."""
    weights = model / "model.safetensors"
    if how == "truncated":
        data = weights.read_bytes()
        weights.write_bytes(data[: len(data) // 2])
    elif how == "garbled":
        data = bytearray(weights.read_bytes())
        data[8:64] = bytes(range(56))
        weights.write_bytes(bytes(data))
    elif how == "empty":
        weights.write_bytes(b"")
    elif how == "config":
        (model / "config.json").write_text("{not json")
    elif how == "shapes":
        config = json.loads((model / "config.json").read_text())
        config["model"]["d_model"] = config["model"]["d_model"] * 2
        (model / "config.json").write_text(json.dumps(config))
    elif how == "vocab":
        vocab = json.loads((model / "vocab.json").read_text())
        vocab["items"] = vocab["items"][:-3]
        (model / "vocab.json").write_text(json.dumps(vocab))
    elif how == "missing":
        (model / "vocab.json").unlink()
    elif how == "newer":
        config = json.loads((model / "config.json").read_text())
        (model / "config.json").write_text(json.dumps({**config, "format": 99}))


DAMAGE = {
    "truncated": r"^error: The weights of the model at .* are damaged or truncated \(",
    "garbled": r"^error: The weights of the model at .* are damaged or truncated \(",
    "empty": r"^error: The weights of the model at .* are damaged or truncated \(",
    "config": r"^error: The checkpoint file .*config\.json is damaged \(JSONDecodeError\)\.",
    "shapes": r"^error: The weights of the model at .* do not fit its config \(",
    "vocab": r"^error: The model at .* does not match its own vocabulary; train it again\.",
    "missing": r"^error: The model at .* is incomplete: vocab\.json is missing; train it again\.",
    "newer": r"^error: The model at .* was saved by a newer InterestLens; upgrade to load it\.",
}


@pytest.mark.parametrize("how", list(DAMAGE))
def test_a_damaged_checkpoint_is_one_sentence_from_the_cli(monkeypatch, capsys, synthetic_db, untrained_model_dir, tmp_path, how):
    import re

    model = tmp_path / "model"
    shutil.copytree(untrained_model_dir, model)
    damage(model, how)
    for cmd in (["recommend", "--user", "u003"], ["trajectory", "--user", "u003"], ["explain", "--user", "u003"]):
        code, out, err = _cli(monkeypatch, capsys, *cmd, "--db", str(synthetic_db), "--model", str(model))
        assert code == 1 and out == "", (cmd, err)
        assert re.match(DAMAGE[how], err) and err.count("\n") == 1, (cmd, err)
        assert "Traceback" not in err
