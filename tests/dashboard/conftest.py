"""Fixtures for the dashboard tests: the app pointed at the shared tiny database and a private copy of the trained
model with its drift summaries, `interestlens serve` in a subprocess (for the browser and protocol tests), Debian's
Chromium, and a small log with a social graph and a model trained with friends (helpers to open pages are in
dashboard_helpers.py)."""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from dashboard_helpers import free_port, wait_healthy

CHROMIUM = "/usr/bin/chromium"
SERVER_START_S = 180  # a cold `interestlens serve` on a busy 2-core machine


@pytest.fixture(scope="session")
def dash_model(trained_model_dir, synthetic_db, tmp_path_factory) -> Path:
    """A private copy of the trained model with `drift.parquet` built beside it (the shared one stays untouched)."""
    from core.checkpoint import load_checkpoint
    from core.trajectory import build_drift

    out = tmp_path_factory.mktemp("dash_models") / "trained"
    shutil.copytree(trained_model_dir, out)
    build_drift(synthetic_db, load_checkpoint(out))
    return out


@pytest.fixture
def dash_env(monkeypatch, synthetic_db, dash_model) -> tuple[Path, Path]:
    """The app reads the tiny database and the private trained model."""
    monkeypatch.setenv("INTERESTLENS_DB", str(synthetic_db))
    monkeypatch.setenv("INTERESTLENS_MODEL", str(dash_model))
    monkeypatch.setenv("INTERESTLENS_MODELS", str(dash_model.parent))
    return synthetic_db, dash_model


@contextmanager
def _serving(db: Path, model: Path, log_path: Path) -> Iterator[str]:
    """`interestlens serve` on a free port, in its own process group (stopped afterwards), with this process's
    environment (so a test's INTERESTLENS_* settings reach it); yields the base URL once /_stcore/health answers."""
    port = free_port()
    log = open(log_path, "w")
    cli = Path(sys.executable).with_name("interestlens")
    proc = subprocess.Popen([str(cli), "serve", "--db", str(db), "--model", str(model), "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env={**os.environ})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, log_path, SERVER_START_S)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


@pytest.fixture
def serve(tmp_path) -> Iterator[Callable[[Path, Path], str]]:
    """`serve(db, model)` starts `interestlens serve` and returns its URL; every server started is stopped when the
    test ends. Set the environment (monkeypatch) before calling it."""
    started = itertools.count()
    with ExitStack() as stack:
        yield lambda db, model: stack.enter_context(_serving(db, model, tmp_path / f"server-{next(started)}.log"))


@pytest.fixture
def served(dash_env, serve) -> str:
    """`interestlens serve` on the tiny database and the private trained model; the base URL."""
    return serve(*dash_env)


@pytest.fixture
def chromium() -> str:
    """Debian's Chromium for Playwright. Missing: a failure on CI (which installs it), a skip elsewhere."""
    found = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if found is None:
        message = "CHROMIUM IS NOT INSTALLED: the browser tests need Debian's chromium (apt-get install -y chromium)"
        if os.environ.get("CI"):  # CI installs it (.ci/run): its absence there is a failure, never a silent skip
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture(scope="session")
def social_env(tmp_path_factory) -> tuple[Path, Path]:
    """A 30-user log with a social graph (two communities) and a model trained one epoch with the social branch."""
    from core.datasets.social import generate_social
    from core.ingest.frames import ingest_frames
    from core.model import ModelConfig
    from core.train import TrainConfig, train

    ds = generate_social(users=30, items=40, events=900, categories=4, communities=2, mean_degree=4, seed=5)
    root = tmp_path_factory.mktemp("friends")
    db = root / "s.duckdb"
    ingest_frames(db, ds.events, ds.users, ds.items, edges=ds.edges)
    model = root / "models" / "social"
    train(db, model, ModelConfig(max_len=10, d_model=16, n_heads=2, n_layers=1),
          TrainConfig(epochs=1, batch_size=16, device="cpu", social=True))
    return db, model


@pytest.fixture
def friends_env(monkeypatch, social_env) -> tuple[Path, Path]:
    """The app reads the social log and its model."""
    db, model = social_env
    monkeypatch.setenv("INTERESTLENS_DB", str(db))
    monkeypatch.setenv("INTERESTLENS_MODEL", str(model))
    monkeypatch.setenv("INTERESTLENS_MODELS", str(model.parent))
    return db, model


_POPULAR_ENTRY = '''
import duckdb, numpy as np, os

class Popular:
    max_len = 20

    def __init__(self):
        con = duckdb.connect(os.environ["INTERESTLENS_DB"], read_only=True)
        rows = con.execute("SELECT item_id, count(*) FROM events GROUP BY 1 ORDER BY 1").fetchall()
        con.close()
        self.item_ids = [r[0] for r in rows]
        self.counts = np.array([r[1] for r in rows], dtype=float)

    def score(self, histories):
        return np.tile(self.counts, (len(histories), 1))

def factory():
    return Popular()
'''


@pytest.fixture
def compare_env(monkeypatch, synthetic_db, dash_model, tmp_path) -> Path:
    """Two models for the Compare page: ours (`<root>/ours`, the active one) and a popularity entry point registered
    as `<root>/popular`; the models root, with the app reading it and the tiny database."""
    from core.external import add_model
    from core.store import connect_read

    root = tmp_path / "models"
    shutil.copytree(dash_model, root / "ours")
    code = tmp_path / "code"
    code.mkdir()
    (code / "il_pop_entry.py").write_text(_POPULAR_ENTRY)
    monkeypatch.syspath_prepend(str(code))
    monkeypatch.setenv("INTERESTLENS_DB", str(synthetic_db))
    with connect_read(synthetic_db) as con:
        add_model(con, root, "popular", "entry", "il_pop_entry:factory")
    monkeypatch.setenv("INTERESTLENS_MODELS", str(root))
    monkeypatch.setenv("INTERESTLENS_MODEL", str(root / "ours"))
    return root
