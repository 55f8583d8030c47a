"""`interestlens build --dataset synthetic-social | synthetic-lastfm`: the synthetic log with a friend graph and
planted influence (`core.datasets.social`) in one ingest run, its truth saved beside the database."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from core.datasets.social import generate_social
from core.ingest.frames import ingest_frames
from core.ingest.result import IngestResult
from core.ingest.stage import Progress

__all__ = ["build_synthetic_social", "social_truth_dir"]


def social_truth_dir(db: str | os.PathLike) -> Path:
    """`<db>.social-truth/`: influence.parquet (user_id, step, ts, influencer, category), leaders.parquet, meta.json."""
    return Path(str(db) + ".social-truth")


def build_synthetic_social(
    db: str | os.PathLike, *, users: int = 400, items: int = 200, events: int = 16_000, seed: int = 0,
    degree: str = "poisson", progress: Progress | None = None,
) -> IngestResult:  # fmt: skip
    """Generate, ingest (events, users, items and undirected friend edges in one transaction), then save the truth."""
    ds = generate_social(users=users, items=items, events=events, degree=degree, seed=seed)  # type: ignore[arg-type]
    result = ingest_frames(db, ds.events, ds.users, ds.items, edges=ds.edges, source=f"synthetic-social:{degree}",
                           preset="synthetic-social", progress=progress)  # fmt: skip
    folder = social_truth_dir(db)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    ds.influence.to_parquet(tmp / "influence.parquet", index=False)
    ds.leaders.to_parquet(tmp / "leaders.parquet", index=False)
    (tmp / "meta.json").write_text(json.dumps({"categories": ds.categories, "params": ds.params}, indent=2))
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return result
