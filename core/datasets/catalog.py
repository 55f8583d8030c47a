"""The built-in datasets: what each is, whether it can be built here, and building one by name."""

from __future__ import annotations

import os
from dataclasses import dataclass

from core.datasets.build import build_synthetic
from core.datasets.movielens import INSTALL_HINT, build_movielens_100k, find_movielens_100k
from core.errors import SettingError, UserInputError
from core.ingest.result import IngestResult
from core.ingest.stage import Progress

__all__ = ["DatasetInfo", "DATASET_NAMES", "available", "build_dataset"]

DATASET_NAMES = ("synthetic", "movielens-100k", "synthetic-social", "synthetic-lastfm")
_SOCIAL_DEFAULTS = {"users": 400, "items": 200, "events": 16_000, "seed": 0}
_SYNTHETIC_DEFAULTS = {"users": 2000, "items": 1000, "events": 100_000, "seed": 0}


@dataclass(frozen=True)
class DatasetInfo:
    """One built-in dataset as `interestlens datasets` lists it."""

    name: str
    description: str
    available: bool
    detail: str  # where its data comes from, or what to install

    def as_dict(self) -> dict:
        return {"name": self.name, "description": self.description, "available": self.available, "detail": self.detail}


def available() -> list[DatasetInfo]:
    """Every built-in dataset, with whether it can be built on this machine now."""
    ml = find_movielens_100k()
    return [
        DatasetInfo(
            "synthetic",
            "Generated log with planted interest changes (switches, drift, periodic, stable users), skewed item "
            "popularity, event types, a device context and user attributes; the truth is saved beside the database.",
            True,
            "generated here; its size is set by the number of users, items and events, and its seed",
        ),
        DatasetInfo(
            "movielens-100k",
            "MovieLens 100k: 100,000 ratings (1-5 stars) by 943 users of 1,682 movies, 1997-98, with genres and "
            "user age, gender, occupation and zip code.",
            ml is not None,
            str(ml) if ml is not None else f"not installed; run `{INSTALL_HINT}`",
        ),
        DatasetInfo(
            "synthetic-social",
            "Generated log with a friend graph (communities, homophily, ~8 friends each) and planted influence: "
            "friends adopt a leader's new category after a delay; the truth is saved beside the database.",
            True,
            "generated here (core.datasets.social); --users, --items, --events and --seed set its size",
        ),
        DatasetInfo(
            "synthetic-lastfm",
            "synthetic-social with a Last.fm-shaped graph: ~13 friends per user, long-tailed, all symmetric.",
            True,
            "generated here (core.datasets.social); --users, --items, --events and --seed set its size",
        ),
    ]


def build_dataset(
    name: str,
    db: str | os.PathLike | None,
    *,
    users: int | None = None,
    items: int | None = None,
    events: int | None = None,
    seed: int | None = None,
    progress: Progress | None = None,
) -> IngestResult:
    """Build the named dataset into `db` (one ingest run); size options apply to `synthetic` only."""
    if name == "synthetic":
        given = {"users": users, "items": items, "events": events, "seed": seed}
        params = {k: (v if v is not None else _SYNTHETIC_DEFAULTS[k]) for k, v in given.items()}
        return build_synthetic(db, progress=progress, **params)
    if name in ("synthetic-social", "synthetic-lastfm"):
        from core.datasets.social_build import build_synthetic_social

        given = {"users": users, "items": items, "events": events, "seed": seed}
        params = {k: (v if v is not None else _SOCIAL_DEFAULTS[k]) for k, v in given.items()}
        degree = "lastfm" if name == "synthetic-lastfm" else "poisson"
        return build_synthetic_social(db, degree=degree, progress=progress, **params)
    if name == "movielens-100k":
        if any(v is not None for v in (users, items, events, seed)):
            raise SettingError("{users}, {items}, {events} and {seed} apply only when {dataset} is synthetic.",
                               ("users", "items", "events", "seed", "dataset"))
        return build_movielens_100k(db, progress=progress)
    raise UserInputError(f"Unknown dataset {name!r}; expected one of {', '.join(DATASET_NAMES)}.")
