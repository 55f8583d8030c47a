"""Shared fixtures: one tiny synthetic log (built once per test session) and models over it.

The database is written once and then only opened read-only, so tests never hold it read-write and read-only at
the same time (DuckDB's rule). A test that writes takes `writable_db`, its own copy.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

TINY = dict(users=120, items=150, events=6000, seed=7, categories=6)


@pytest.fixture(scope="session")
def synthetic_db(tmp_path_factory) -> Path:
    """A tiny synthetic database (120 users, 150 items, 6,000 events, 6 categories) with its truth beside it."""
    from core.datasets.build import build_synthetic

    path = tmp_path_factory.mktemp("synthetic") / "tiny.duckdb"
    build_synthetic(path, **TINY)
    return path


@pytest.fixture
def writable_db(synthetic_db, tmp_path) -> Path:
    """A private copy of the tiny database (and its truth) that a test may write to."""
    dst = tmp_path / "copy.duckdb"
    shutil.copy2(synthetic_db, dst)
    truth = Path(str(synthetic_db) + ".truth")
    if truth.exists():
        shutil.copytree(truth, Path(str(dst) + ".truth"))
    return dst


@pytest.fixture(scope="session")
def untrained_model_dir(synthetic_db, tmp_path_factory) -> Path:
    """A randomly initialised (seeded) model over the tiny database, saved as a checkpoint."""
    from core.checkpoint import save_checkpoint
    from core.model import InterestModel, ModelConfig, ModelSizes
    from core.sequences import build_vocab, data_fingerprint
    from core.store import connect_read

    with connect_read(synthetic_db) as con:
        vocab = build_vocab(con)
        fp = data_fingerprint(con)
    sizes = ModelSizes(
        vocab.n_items, len(vocab.categories), len(vocab.event_types), tuple(len(v) for v in vocab.context.values())
    )
    torch.manual_seed(0)
    model = InterestModel(ModelConfig(d_model=32, n_layers=2, n_heads=2, max_len=50), sizes, vocab.category_weights())
    out = tmp_path_factory.mktemp("models") / "untrained"
    return save_checkpoint(out, model.eval(), vocab, fp, {"epochs": 0, "note": "untrained test fixture"})


@pytest.fixture(scope="session")
def trained_model_dir(synthetic_db, tmp_path_factory) -> Path:
    """A small model trained for a few seconds on the tiny database (seeded; its metrics.json has test metrics)."""
    from core.model import ModelConfig
    from core.train import TrainConfig, train

    out = tmp_path_factory.mktemp("models") / "trained"
    train(
        synthetic_db,
        out,
        ModelConfig(d_model=32, n_layers=2, n_heads=2, max_len=50, dropout=0.1),
        TrainConfig(epochs=12, batch_size=16, lr=3e-3, warmup=10, patience=12, seed=0, device="cpu"),
    )
    return out
