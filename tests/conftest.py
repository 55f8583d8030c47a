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
# Explanations in the test process (no worker processes per test); tests/dashboard/test_explain_pool.py starts its own
os.environ.setdefault("INTERESTLENS_EXPLAIN_WORKERS", "0")
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


class TinyTextEncoder(torch.nn.Module):
    """A real, tiny text encoder for tests of core.semantic (the `semantic` extra may not be installed).

    Words (lower-cased \\w+ tokens) are hashed into 4,096 buckets, embedded by a seeded EmbeddingBag (mean), mixed by
    a seeded linear layer and normalised: texts that share words get similar vectors, deterministically.
    `texts_encoded` counts every text it has encoded, so tests can see whether a cache called it.
    """

    name = "tiny-test-encoder"
    dim = 32

    def __init__(self, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.emb = torch.nn.EmbeddingBag(4096, self.dim, mode="mean")
        self.mix = torch.nn.Linear(self.dim, self.dim, bias=False)
        with torch.no_grad():
            self.emb.weight.copy_(torch.randn(4096, self.dim, generator=g))
            self.mix.weight.copy_(torch.eye(self.dim) + 0.1 * torch.randn(self.dim, self.dim, generator=g))
        self.texts_encoded = 0

    @staticmethod
    def _tokens(text: str) -> list[int]:
        import re
        import zlib

        return [zlib.crc32(w.encode()) % 4096 for w in re.findall(r"\w+", text.lower())] or [0]

    def encode(self, texts, batch_size: int = 64):
        import numpy as np

        out = []
        for b0 in range(0, len(texts), batch_size):
            chunk = [self._tokens(t) for t in texts[b0 : b0 + batch_size]]
            flat = torch.tensor([i for toks in chunk for i in toks])
            offsets = torch.tensor([0, *np.cumsum([len(t) for t in chunk])[:-1].tolist()])
            with torch.no_grad():
                v = self.mix(self.emb(flat, offsets))  # [b, dim]
            out.append(torch.nn.functional.normalize(v, dim=-1))
        self.texts_encoded += len(texts)
        return torch.cat(out).numpy().astype(np.float32) if out else np.zeros((0, self.dim), np.float32)


@pytest.fixture
def tiny_text_encoder() -> TinyTextEncoder:
    """A fresh deterministic TinyTextEncoder (its `texts_encoded` counter starts at 0)."""
    return TinyTextEncoder(seed=0)


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


@pytest.fixture(scope="session")
def semantic_db(synthetic_db, tmp_path_factory) -> Path:
    """A read-only copy of the tiny database with item text vectors cached beside it by TinyTextEncoder(seed=0)."""
    from core.semantic import encode_items

    db = tmp_path_factory.mktemp("semantic") / "text.duckdb"
    shutil.copy2(synthetic_db, db)
    encode_items(db, TinyTextEncoder(seed=0))
    return db


@pytest.fixture(scope="session")
def text_model_dir(semantic_db, tmp_path_factory) -> Path:
    """A small model trained with text features (`TrainConfig(text=True)`) on `semantic_db` (seeded, 3 epochs)."""
    from core.model import ModelConfig
    from core.train import TrainConfig, train

    out = tmp_path_factory.mktemp("models") / "text"
    train(
        semantic_db,
        out,
        ModelConfig(d_model=32, n_layers=2, n_heads=2, max_len=50, dropout=0.1),
        TrainConfig(epochs=3, batch_size=32, lr=3e-3, warmup=10, patience=12, seed=0, device="cpu", text=True),
    )
    return out


@pytest.fixture
def cli(monkeypatch, capsys):
    """Run the console command on its arguments, as `interestlens ARGS` would: (exit code, stdout, stderr)."""
    import sys

    from cli import app
    from cli.common import run_app

    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["interestlens", *args])
        code = run_app(app)
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


@pytest.fixture
def torchrun_train():
    """Run `interestlens train ARGS` under `torchrun --standalone --nproc_per_node 2` on the CPU (gloo), as the README
    says, and return the command's last JSON line. Fails the test with the end of stderr if torchrun fails."""
    import json
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]

    def run(*args: str) -> dict:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(root)}
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "cli",
               "train", *args, "--device", "cpu", "--json"]
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, cwd=root)
        assert p.returncode == 0, p.stderr[-2000:]
        return json.loads(p.stdout.strip().splitlines()[-1])

    return run
