"""What a training run is told (TrainConfig) and what it reports (EpochReport, TrainResult)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

from core.errors import SettingError, require_at_least, require_positive
from core.train.records import StopReason

__all__ = ["TrainConfig", "EpochReport", "TrainResult"]


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 200  # most passes over the training windows; early stopping usually ends sooner
    batch_size: int = 32  # history windows per optimiser step (per process under torchrun)
    lr: float = 2e-3  # peak AdamW learning rate, reached after the warm-up
    weight_decay: float = 0.1  # AdamW decoupled weight decay on matrices and embeddings (not biases / norms)
    warmup: int = 50  # optimiser steps of linear learning-rate warm-up from 0
    # the learning rate is multiplied by this after every epoch whose validation NDCG@10 does not improve on the best
    # (so it adapts to the log: a log that still improves keeps its rate); 1 = constant, the behaviour before
    # 2026-12-07
    lr_decay: float = 1.0
    patience: int = 10  # epochs without a better validation NDCG@10 before stopping
    min_delta: float = 1e-4  # an improvement smaller than this does not reset the patience
    grad_clip: float = 1.0  # clip the global gradient norm (0 = off)
    seed: int = 0  # seeds weights, shuffling and dropout; a run is repeatable on the same device
    split: Literal["loo", "time"] = "loo"  # leave-one-out (comparable with published numbers) or global time cuts
    valid_share: float = 0.1  # time split only: share of events (by time) in the validation window
    test_share: float = 0.1  # time split only: share of events (by time) in the test window
    device: str = "auto"  # auto = CUDA, then Apple MPS, then CPU
    bf16: bool = True  # bf16 autocast on CUDA (ignored elsewhere)
    # catalogue size above which a sampled softmax replaces the full one: about 2.5x n_negatives, below which the
    # sample saves little time and costs accuracy (step times of both in bench/results/scale-*.json, train)
    sampled_softmax_above: int = 20_000
    n_negatives: int = 8192  # negatives per step of the sampled softmax
    max_valid_users: int = 20_000  # validate on at most this many users (a fixed random sample) per epoch
    time_budget: float | None = None  # stop after this many seconds of training (None = no limit)
    # stop after this many optimiser steps in all (None = no limit), mid-epoch if need be: benchmarks time part of an
    # epoch this way (the history records the steps taken and the steps a whole epoch has)
    max_steps: int | None = None
    clock: Literal["wall", "process"] = "wall"  # what seconds measure; process = this process's CPU time (shared machines)
    checkpoint_every: float = 30.0  # seconds between saves of the resume state (the best model saves on improving)
    num_threads: int | None = None  # CPU threads for torch (None = torch's default)
    text: bool = False  # fuse pretrained item text vectors into item embeddings (core.semantic; sets text_dim)
    # the social branch (core.social): each step also attends over the user's friends' states strictly before it;
    # needs social edges between users with events. A resumed run follows its checkpoint instead
    social: bool = False
    # after training, fit the calibrated category forecast on the validation targets and score it on the test
    # targets (core.trajectory.interest); both go into the model card's `interest` section
    fit_interest: bool = True
    # seen items in validation / test rankings: auto = include them when >= 5 % of training events re-consume an
    # item (core.evaluate.protocol), else exclude; the decision and its reason go to the model card
    seen: Literal["auto", "exclude", "include"] = "auto"
    # apply the rule of core.train.defaults (window, dropout, patience from the log) before training; what
    # `interestlens train` does. Settings named in `explicit` (given by the user) are left alone
    adapt_defaults: bool = False
    # among max_len, dropout, n_layers, repeat_term, lr_decay, patience: kept from the rule
    explicit: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """Refuse settings that would train nothing or fail deep inside torch (SettingError naming the field)."""
        require_at_least("epochs", self.epochs, 1)
        require_at_least("batch_size", self.batch_size, 1)
        require_positive("lr", self.lr, finite=True)
        require_at_least("weight_decay", self.weight_decay, 0)
        require_at_least("warmup", self.warmup, 0)
        require_positive("lr_decay", self.lr_decay, finite=True)
        if self.lr_decay > 1:
            raise SettingError("{lr_decay} must be above 0 and at most 1, not {value!r}.", "lr_decay",
                               value=self.lr_decay)
        require_at_least("patience", self.patience, 1)
        require_at_least("min_delta", self.min_delta, 0)
        require_at_least("grad_clip", self.grad_clip, 0)
        if self.split not in ("loo", "time"):
            raise SettingError("{split} must be loo or time, not {value!r}.", "split", value=self.split)
        require_at_least("sampled_softmax_above", self.sampled_softmax_above, 0)
        require_at_least("n_negatives", self.n_negatives, 1)
        require_at_least("max_valid_users", self.max_valid_users, 1)
        if self.time_budget is not None:
            require_positive("time_budget", self.time_budget)
        if self.max_steps is not None:
            require_at_least("max_steps", self.max_steps, 1)
        if self.clock not in ("wall", "process"):
            raise SettingError("{clock} must be wall or process, not {value!r}.", "clock", value=self.clock)
        require_at_least("checkpoint_every", self.checkpoint_every, 0)
        if self.num_threads is not None:
            require_at_least("num_threads", self.num_threads, 1)
        if self.seen not in ("auto", "exclude", "include"):
            raise SettingError("{seen} must be auto, exclude or include, not {value!r}.", "seen", value=self.seen)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        d = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        if "explicit" in d:
            d["explicit"] = tuple(d["explicit"])  # JSON lists come back as lists
        return cls(**d)


@dataclass
class EpochReport:
    """Sent to the `progress` callback after every epoch."""

    epoch: int  # 1-based
    epochs: int  # the most epochs this run may take
    loss: float  # mean training loss of the epoch
    valid: dict[str, float]  # validation metrics of this epoch's model
    seconds: float  # training seconds so far (including validation, excluding the final test)
    improved: bool  # this epoch's model is the new best
    best_epoch: int
    model: object | None = None  # the live (unwrapped) model, for callbacks that snapshot it; do not modify
    # validation metrics under each protocol (exclude_seen, all_items) from the same scoring pass; `valid` is the
    # entry of the seen rule's protocol, which alone picks the epoch
    valid_protocols: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass
class TrainResult:
    """What `train` returns and `interestlens train --json` prints (keys epochs, seconds, best_epoch, valid, device)."""

    epochs: int  # epochs run (in total, across resumes)
    seconds: float  # training seconds (in total, across resumes)
    best_epoch: int
    valid: dict[str, float]  # validation metrics of the best epoch
    device: str
    test: dict[str, float] = field(default_factory=dict)  # test metrics of the best model (touched once, at the end)
    path: str = ""  # the checkpoint folder
    stopped: StopReason = "max_epochs"  # why training stopped
    social: bool = False  # the model has the social branch (friends' states fused in)

    def to_dict(self) -> dict:
        return asdict(self)
