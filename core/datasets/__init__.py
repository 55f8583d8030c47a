"""Built-in datasets: a synthetic log with planted interest changes, and MovieLens-100k."""

from core.datasets.catalog import DATASET_NAMES, DatasetInfo, available, build_dataset
from core.datasets.movielens import build_movielens_100k, find_movielens_100k
from core.datasets.synthetic import SyntheticDataset, generate
from core.datasets.truth import SyntheticTruth, load_truth, truth_dir

__all__ = [
    "DATASET_NAMES",
    "DatasetInfo",
    "SyntheticDataset",
    "SyntheticTruth",
    "available",
    "build_dataset",
    "build_movielens_100k",
    "find_movielens_100k",
    "generate",
    "load_truth",
    "truth_dir",
]
