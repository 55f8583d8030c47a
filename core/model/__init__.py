"""The sequential interest model."""

from core.model.batch import FEATURE_GROUPS, N_GAP_BUCKETS, Batch, gap_bucket
from core.model.config import ModelConfig, ModelSizes
from core.model.model import Encoding, InterestModel

__all__ = [
    "FEATURE_GROUPS",
    "N_GAP_BUCKETS",
    "Batch",
    "gap_bucket",
    "ModelConfig",
    "ModelSizes",
    "Encoding",
    "InterestModel",
]
