"""Training: `train(db, out, model_config, config, progress)`; `torchrun -m cli train` runs it in several processes."""

from core.train.config import EpochReport, TrainConfig, TrainResult
from core.train.data import TrainWindows, epoch_batches, train_batch, training_windows
from core.train.loop import train
from core.train.records import EpochRecord, ResumeState, StopReason
from core.train.setup import make_optimizer

__all__ = [
    "TrainConfig",
    "TrainResult",
    "EpochReport",
    "EpochRecord",
    "ResumeState",
    "StopReason",
    "train",
    "make_optimizer",
    "TrainWindows",
    "training_windows",
    "train_batch",
    "epoch_batches",
]
