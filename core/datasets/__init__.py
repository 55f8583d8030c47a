"""Built-in datasets: a synthetic log with planted interest changes, and MovieLens-100k."""

from core.datasets.synthetic import SyntheticDataset, generate
from core.datasets.truth import SyntheticTruth, load_truth, truth_dir

__all__ = ["SyntheticDataset", "SyntheticTruth", "generate", "load_truth", "truth_dir"]
