"""Which file identifies a model folder: our checkpoint's weights, else an external model's registration.

One rule for every place that asks (the checkpoint's content hash, the registry's folder list, the dashboard's model
reference and its model check). It imports nothing heavy (no torch, no DuckDB), because the dashboard asks on every
page run before any model is loaded.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["WEIGHTS_FILE", "EXTERNAL_FILE", "model_file", "is_model"]

WEIGHTS_FILE = "model.safetensors"  # our checkpoint's weights and buffers (core.checkpoint)
EXTERNAL_FILE = "external.json"  # a registered external model's description (core.external.registry)


def model_file(folder: str | os.PathLike) -> Path:
    """The file that identifies the model in `folder`: `model.safetensors` when it is a file, else
    `external.json` (which may be missing: `is_model` says whether the folder holds a model at all).

    The weights win when both exist: a folder of ours never holds a registration, and a registration's files are
    copied next to it, never into a checkpoint."""
    weights = Path(folder) / WEIGHTS_FILE
    return weights if weights.is_file() else Path(folder) / EXTERNAL_FILE


def is_model(folder: str | os.PathLike) -> bool:
    """Whether `folder` holds a model: a checkpoint of ours or a registered external model."""
    return model_file(folder).is_file()
