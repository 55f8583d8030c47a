"""The load benchmarks' data: the database (MovieLens-100k or a synthetic log) and a trained model with drift
summaries, built under a work folder when absent, and the users with their event counts."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

log = logging.getLogger("bench.load")

SYNTHETIC = dict(users=2_000, items=1_000, events=100_000, categories=12, seed=0)
LOADWS_WORK = Path(__file__).resolve().parents[1] / "data" / "cache" / "loadws"  # bench/load_ws.py's database and model

__all__ = ["LOADWS_WORK", "SYNTHETIC", "loadws_app", "prepare", "user_counts"]


def _fingerprint(db: Path) -> dict:
    from core.sequences import data_fingerprint
    from core.store import connect_read

    with connect_read(db) as con:
        return data_fingerprint(con)


def prepare(size: str, work: Path, model_from: Path | None, train_seconds: float) -> tuple[Path, Path]:
    """The benchmark's database and trained model (with drift summaries) under `work`, built when absent."""
    work.mkdir(parents=True, exist_ok=True)
    db = work / f"{size}.duckdb"
    if not db.exists():
        tmp = db.with_suffix(".building.duckdb")
        tmp.unlink(missing_ok=True)
        log.warning("building %s", db)
        if size == "ml100k":
            from core.datasets import build_movielens_100k

            build_movielens_100k(tmp)
        else:
            from core.datasets.build import build_synthetic

            build_synthetic(tmp, **SYNTHETIC)
        tmp.replace(db)
    model = work / "models" / size
    if not (model / "model.safetensors").exists():
        shutil.rmtree(model, ignore_errors=True)
        if model_from is not None:
            stored = json.loads((model_from / "fingerprint.json").read_text())
            if stored != _fingerprint(db):
                raise SystemExit(f"{model_from} was trained on other data than {db}; pass a matching --model or none.")
            shutil.copytree(model_from, model, ignore=shutil.ignore_patterns("drift.parquet", "train_state*"))
        else:
            log.warning("training %s for at most %.0f s", model, train_seconds)
            cli = Path(sys.executable).with_name("interestlens")
            subprocess.run([str(cli), "train", "--db", str(db), "--out", str(model), "--time-budget", str(train_seconds),
                            "--device", "cpu"], check=True)
    if not (model / "drift.parquet").exists():
        from core.checkpoint import load_checkpoint
        from core.trajectory import build_drift

        log.warning("building drift summaries for %s", model)
        build_drift(db, load_checkpoint(model))
    return db, model


def loadws_app(work: Path, **env: str) -> tuple[Path, Path]:
    """The ML-100k database and default model that `python bench/load_ws.py` keeps under `work`, named to the app in
    this process as `interestlens serve` names them (its environment variables; offline), plus `env`. Exits with
    the command to run when they are absent."""
    db, model = work / "ml100k.duckdb", work / "models" / "default"
    if not db.exists() or not (model / "model.safetensors").exists():
        raise SystemExit(f"No database and model under {work}: run `python bench/load_ws.py` once to make them.")
    os.environ.update({"INTERESTLENS_DB": str(db), "INTERESTLENS_MODEL": str(model),
                       "INTERESTLENS_MODELS": str(model.parent), "HF_HUB_OFFLINE": "1", **env})
    return db, model


def user_counts(db: Path) -> dict[str, int]:
    """Every user with events and their event count (what the explorer's Events metric shows)."""
    from core.store import connect_read

    with connect_read(db) as con:
        return {str(u): int(n) for u, n in con.execute("SELECT user_id, count(*) FROM events GROUP BY 1 ORDER BY 1").fetchall()}
