"""What a training run remembers between epochs and across resumes: `ResumeState`, one `EpochRecord` per epoch,
and why it stopped (`StopReason`). Both dataclasses serialise with `asdict` into the model card's `resume` entry."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

__all__ = ["StopReason", "EpochRecord", "ResumeState"]

# Why `train` stopped; the model card says "running" instead while training goes on (or was killed).
StopReason = Literal["max_epochs", "early_stopping", "time_budget", "max_steps"]


@dataclass(frozen=True)
class EpochRecord:
    """One epoch in the card's `resume.history` (field order is the JSON key order)."""

    epoch: int  # 1-based, counted across resumes
    loss: float  # mean training loss of the epoch's optimiser steps (NaN when it took none)
    valid_ndcg10: float  # validation NDCG@10 of this epoch's model
    valid_hr10: float  # validation HR@10 of this epoch's model
    seconds: float  # training seconds so far, across resumes (the `clock` setting says which seconds)
    train_seconds: float  # wall seconds of this epoch's optimiser steps
    steps: int  # optimiser steps taken this epoch (fewer than epoch_steps when a budget stopped it)
    epoch_steps: int  # optimiser steps a whole epoch has (this process's share under torchrun)
    train_cpu_seconds: float  # CPU seconds of the optimiser steps (this process, all threads)
    valid_seconds: float  # wall seconds of this epoch's validation
    valid_ndcg10_exclude_seen: float = math.nan  # validation NDCG@10 with seen items removed from the ranking
    valid_ndcg10_all_items: float = math.nan  # validation NDCG@10 with nothing removed

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EpochRecord:
        """A record read back from a card; a field an older card lacks reads as NaN."""
        return cls(**{f.name: d.get(f.name, math.nan) for f in fields(cls)})


@dataclass
class ResumeState:
    """The counters a resumed run continues from (the card's `resume` entry; the tensors live beside it)."""

    epoch: int = 0  # epochs finished
    step: int = 0  # optimiser steps taken in all (drives the learning-rate warm-up and `max_steps`)
    best_epoch: int = 0  # epoch of the best validation NDCG@10 so far (0 = none yet)
    best_score: float = -1.0  # that NDCG@10
    bad_epochs: int = 0  # epochs since the best one (early stopping counts these against `patience`)
    seconds: float = 0.0  # training seconds of the runs before this one
    history: list[EpochRecord] = field(default_factory=list)  # one record per finished epoch, oldest first

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ResumeState:
        """The state a card saved (an empty dict gives a fresh run's state)."""
        return cls(
            epoch=int(d.get("epoch", 0)),
            step=int(d.get("step", 0)),
            best_epoch=int(d.get("best_epoch", 0)),
            best_score=float(d.get("best_score", -1.0)),
            bad_epochs=int(d.get("bad_epochs", 0)),
            seconds=float(d.get("seconds", 0.0)),
            history=[EpochRecord.from_dict(h) for h in d.get("history", [])],
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
