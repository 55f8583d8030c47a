"""Fixtures for the dashboard tests: the app pointed at the shared tiny database and a private copy of the trained
model with its drift summaries (helpers to open pages are in dashboard_helpers.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


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
