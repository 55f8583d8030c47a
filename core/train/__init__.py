"""Training: `train(db, out, model_config, config, progress)`; `python -m core.train` is the torchrun entry."""

from core.train.config import EpochReport, TrainConfig, TrainResult
from core.train.data import TrainWindows, epoch_batches, train_batch, training_windows
from core.train.loop import make_optimizer, train

__all__ = [
    "TrainConfig",
    "TrainResult",
    "EpochReport",
    "train",
    "make_optimizer",
    "TrainWindows",
    "training_windows",
    "train_batch",
    "epoch_batches",
]
