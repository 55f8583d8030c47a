"""Checkpoints: a directory with safetensors weights and JSON metadata (never pickle).

Layout of `data/models/<name>/`::

    model.safetensors   weights and buffers (the item→category weights, text vectors when used)
    config.json         {"model": ModelConfig, "sizes": ModelSizes, "format": 1}
    vocab.json          the Vocab (what every index means)
    fingerprint.json    the data the model was trained on (core.sequences.data_fingerprint)
    metrics.json        the model card: created, device, epochs, seconds, validation / test metrics

Derived results (drift summaries, recommendations, per-user evaluation, text vectors) are Parquet files in the
same folder; they are never written into the events database.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from core.contract import InterestScorer, RecModel
from core.errors import InterestLensError, NotFoundError, SettingError
from core.external import is_external, load_external
from core.model import InterestModel, ModelConfig, ModelSizes
from core.model.social import attach_branch, has_branch_weights, has_category_copy, has_copy_weights
from core.model_files import model_file
from core.sequences import Vocab

__all__ = [
    "CheckpointError",
    "LoadedModel",
    "DEFAULT_MODELS",
    "MODELS_ENV",
    "MODEL_ENV",
    "models_root",
    "save_checkpoint",
    "load_checkpoint",
    "recover_interrupted_save",
    "list_checkpoints",
    "newest_checkpoint",
    "resolve_model_dir",
    "model_for",
    "model_fits",
    "items_in_common",
    "WEIGHT_DERIVED",
    "read_json",
    "pick_device",
    "weights_fingerprint",
]

log = logging.getLogger(__name__)

DEFAULT_MODELS = Path("data") / "models"
MODELS_ENV = "INTERESTLENS_MODELS"  # names the folder of checkpoint folders
MODEL_ENV = "INTERESTLENS_MODEL"  # names one checkpoint folder, the model to use
FORMAT = 1
_REQUIRED = ("model.safetensors", "config.json", "vocab.json")


class CheckpointError(InterestLensError):
    """A checkpoint that is missing, damaged or does not match this version; one clear sentence."""


@dataclass
class LoadedModel:
    """A model ready for inference, with what its indices mean and its card.

    Analyses score through `scorer` (the model contract, `core.contract.RecModel`); `model` is our network, or
    None for an external model (whose `scorer` is its adapter and whose `config` holds only its window).
    """

    model: InterestModel | None
    vocab: Vocab
    config: ModelConfig
    sizes: ModelSizes
    path: Path
    card: dict = field(default_factory=dict)  # metrics.json
    fingerprint: dict = field(default_factory=dict)  # fingerprint.json
    external: RecModel | None = None  # the adapter of an external model (core.external), None for ours

    @cached_property
    def scorer(self) -> RecModel:
        """The model behind the contract: the external adapter, or ours wrapped in `InterestScorer`."""
        if self.external is not None:
            return self.external
        return InterestScorer(self.model, self.vocab.items, self.config.max_len)

    @property
    def kind(self) -> str:
        return self.scorer.kind

    @property
    def device(self) -> torch.device:
        return self.scorer.device

    @property
    def name(self) -> str:
        return self.path.name


def pick_device(device: str = "auto") -> torch.device:
    """`auto` picks CUDA, then Apple MPS, then the CPU; an explicit choice that is unavailable is an error."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise SettingError("A CUDA GPU was asked for ({device} cuda), but none is available; set {device} to auto or cpu.",
                           "device")
    if device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise SettingError("Apple MPS was asked for ({device} mps), but it is not available; set {device} to auto or cpu.",
                           "device")
    if device not in ("cpu", "cuda", "mps") and not device.startswith("cuda:"):
        raise InterestLensError(f"Unknown device {device!r}; expected auto, cpu, cuda or mps.")
    return torch.device(device)


def read_json(path: Path, default: dict | None = None) -> dict:
    """A JSON file as a dict; `default` when absent (None: raise CheckpointError)."""
    if not path.exists():
        if default is not None:
            return dict(default)
        raise CheckpointError(f"The checkpoint file {path} is missing.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"The checkpoint file {path} is damaged ({exc.__class__.__name__}).") from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"The checkpoint file {path} does not hold a JSON object.")
    return data


def save_checkpoint(
    out: str | os.PathLike,
    model: InterestModel,
    vocab: Vocab,
    fingerprint: dict | None = None,
    card: dict | None = None,
    extra_tensors: dict[str, torch.Tensor] | None = None,
    drop: tuple[str, ...] = (),
) -> Path:
    """Write the checkpoint atomically (into a temporary folder, then renamed over `out`).

    Derived Parquet files already in `out` are kept, except those named in `drop` (training passes
    `WEIGHT_DERIVED`: results of the weights it replaces). `extra_tensors` (e.g. optimizer state for resuming)
    are saved in `train_state.safetensors`.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(tmp / "model.safetensors"), metadata={"format": str(FORMAT)})
    config = {"format": FORMAT, "model": model.config.to_dict(), "sizes": model.sizes.to_dict()}
    (tmp / "config.json").write_text(json.dumps(config, indent=2))
    vocab.save(tmp / "vocab.json")
    (tmp / "fingerprint.json").write_text(json.dumps(fingerprint or {}, indent=2, default=str))
    card = {"created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), **(card or {})}
    (tmp / "metrics.json").write_text(json.dumps(card, indent=2, default=str))
    if extra_tensors:
        save_file({k: v.detach().cpu().contiguous() for k, v in extra_tensors.items()}, str(tmp / "train_state.safetensors"))
    if out.exists():
        for f in out.iterdir():
            if f.is_file() and f.name not in {p.name for p in tmp.iterdir()} and f.suffix == ".parquet":
                if f.name not in drop:
                    shutil.copy2(f, tmp / f.name)
        backup = out.with_name(out.name + ".old")
        shutil.rmtree(backup, ignore_errors=True)
        out.rename(backup)
        tmp.rename(out)
        shutil.rmtree(backup, ignore_errors=True)
    else:
        tmp.rename(out)
    return out


# Files beside a checkpoint computed from its weights (core.evaluate.EVAL_USERS_FILE, core.recommend.RECOMMENDATIONS_FILE,
# core.trajectory.DRIFT_FILE, core.trajectory.VIEWS_FILE): a new training drops them, since they describe the weights
# it replaces. Text vectors (core.semantic.VECTORS_FILE) depend on the item texts only and are kept.
WEIGHT_DERIVED = ("eval_users.parquet", "recommendations.parquet", "drift.parquet", "views.safetensors")


def recover_interrupted_save(path: str | os.PathLike) -> bool:
    """Put back the previous checkpoint when a save was killed between its two renames (`out` renamed to
    `out.old`, the new one not yet renamed to `out`). True when something was recovered."""
    path = Path(path)
    backup = path.with_name(path.name + ".old")
    if path.exists() or not (backup / "model.safetensors").is_file():
        return False
    backup.rename(path)
    log.warning("recovered the checkpoint %s from an interrupted save", path)
    return True


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> LoadedModel:
    """Load a checkpoint for inference (eval mode). Clear CheckpointError for anything missing or damaged."""
    path = Path(path)
    recover_interrupted_save(path)
    if not path.is_dir():
        raise NotFoundError(f"There is no model at {path}.", next_step="train")
    if is_external(path):
        return _load_external(path)
    for name in _REQUIRED:
        if not (path / name).exists():
            raise CheckpointError(f"The model at {path} is incomplete: {name} is missing; train it again.")
    config = read_json(path / "config.json")
    if int(config.get("format", 0)) > FORMAT:
        raise CheckpointError(f"The model at {path} was saved by a newer InterestLens; upgrade to load it.")
    try:
        cfg = ModelConfig.from_dict(config["model"])
        sizes = ModelSizes.from_dict(config["sizes"])
        vocab = Vocab.load(path / "vocab.json")
    except (KeyError, TypeError, ValueError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"The model at {path} has a damaged config.json or vocab.json ({exc}).") from exc
    if vocab.n_items != sizes.n_items or len(vocab.categories) != sizes.n_categories:
        raise CheckpointError(f"The model at {path} does not match its own vocabulary; train it again.")
    try:
        state = load_file(str(path / "model.safetensors"))
    except (SafetensorError, OSError, RuntimeError, ValueError) as exc:
        raise CheckpointError(f"The weights of the model at {path} are damaged or truncated ({exc}).") from exc
    weights = vocab.category_weights() if sizes.n_categories else None
    model = InterestModel(cfg, sizes, weights)
    if has_branch_weights(state):  # trained with friends (core.social)
        attach_branch(model, copy=has_copy_weights(state), by_category=has_category_copy(state))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise CheckpointError(f"The weights of the model at {path} do not fit its config ({first}).") from exc
    dev = torch.device(device) if not isinstance(device, torch.device) else device
    model.to(dev).eval()
    return LoadedModel(
        model=model,
        vocab=vocab,
        config=cfg,
        sizes=sizes,
        path=path,
        card=read_json(path / "metrics.json", default={}),
        fingerprint=read_json(path / "fingerprint.json", default={}),
    )


def models_root(model: str | os.PathLike | None = None) -> Path:
    """The folder of checkpoint folders: $INTERESTLENS_MODELS, else the folder holding `model` (default
    $INTERESTLENS_MODEL), else data/models.

    Every reader and writer of the models folder (training's default output, the model picked by default,
    `forget`, `serve`, the app) asks here, so a model named on its own keeps its siblings in view. The path is
    returned as given (relative paths stay relative to the working directory).
    """
    if os.environ.get(MODELS_ENV):
        return Path(os.environ[MODELS_ENV])
    named = model or os.environ.get(MODEL_ENV)
    return Path(named).parent if named else DEFAULT_MODELS


def weights_fingerprint(path: str | os.PathLike) -> str:
    """A content hash of a model folder's weights (an external model: of its registration), 32 hex characters.

    Equal for two folders whose weights are byte-for-byte equal, whatever their modification times: a copy or a
    `touch` keeps it, a retrain that rewrites the file with other values changes it. BLAKE2b reads the whole file
    (~1 GB/s, a few ms for an ML-100k checkpoint), so callers that ask on every page run memoise it by the file's
    (size, mtime) (`dashboard.cache.handles.model_ref`).
    """
    source = model_file(path)  # the weights, or an external model's registration (core.model_files)
    digest = hashlib.blake2b(digest_size=16)
    with open(source, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _load_external(path: Path) -> LoadedModel:
    """A registered external model (`core.external`) as a LoadedModel: its adapter, vocabulary and window."""
    adapter, vocab, fingerprint = load_external(path)
    sizes = ModelSizes(n_items=vocab.n_items, n_categories=len(vocab.categories), n_event_types=len(vocab.event_types))
    return LoadedModel(model=None, vocab=vocab, config=ModelConfig(max_len=adapter.max_len), sizes=sizes, path=path,
                       fingerprint=fingerprint, external=adapter)


def list_checkpoints(root: str | os.PathLike | None = None) -> list[Path]:
    """Checkpoint folders under `root` (default `models_root()`), newest first."""
    root = Path(root) if root else models_root()
    if not root.is_dir():
        return []
    dirs = [d for d in root.iterdir() if d.is_dir() and (d / "model.safetensors").exists() and not d.name.endswith((".tmp", ".old"))]
    return sorted(dirs, key=lambda d: (d / "model.safetensors").stat().st_mtime, reverse=True)


def newest_checkpoint(root: str | os.PathLike | None = None) -> Path | None:
    found = list_checkpoints(root)
    return found[0] if found else None


def resolve_model_dir(model: str | os.PathLike | None) -> Path:
    """The model folder: the argument, else $INTERESTLENS_MODEL, else the newest under `models_root()`."""
    if model:
        return Path(model)
    env = os.environ.get(MODEL_ENV)
    if env:
        return Path(env)
    newest = newest_checkpoint()
    if newest is None:
        raise NotFoundError(f"No trained model found under {models_root()}.", next_step="train")
    return newest


def items_in_common(vocab: Vocab, con) -> tuple[int, int]:
    """(found, checked): how many of (up to 2,000, evenly spread) model items the database's `items` holds."""
    from core.model_match import SAMPLE

    step = max(1, len(vocab.items) // SAMPLE)
    sample = [str(i) for i in vocab.items[::step][:SAMPLE]]
    if not sample:
        return 0, 0
    found = con.execute("SELECT count(*) FROM items WHERE item_id IN (SELECT unnest(?::VARCHAR[]))", [sample]).fetchone()
    return int(found[0]), len(sample)


def model_fits(path: str | os.PathLike, con) -> bool:
    """Whether the model at `path` can be used with the database on `con` (`core.model_match.match_model`): trained
    on a database of the same identity, or most of its items are there with the same titles and categories."""
    from core.model_match import match_model

    return match_model(path, con).fits


def model_for(
    db: str | os.PathLike | None, model: str | os.PathLike | None, root: str | os.PathLike | None = None
) -> Path:
    """The model folder to use with database `db`: `model`, else $INTERESTLENS_MODEL, else the newest under
    `root` (default `models_root()`) that was trained on this database's items.

    A model of another database would recommend items this database does not have (or, where item ids collide,
    other items under the same ids), and files written beside it would describe the wrong data. Whether it belongs
    is decided by `core.model_match.match_model`: the database identity recorded at training, else most of its
    items being here with the same titles and categories. A model that does not belong is refused with one
    sentence (when named) or passed over (when picking the newest); one accepted although its database identity
    differs is used with a warning saying why.
    """
    from core.model_match import match_model
    from core.store import connect_read, default_db_path  # the store does not import checkpoints

    named = Path(model) if model else (Path(os.environ[MODEL_ENV]) if os.environ.get(MODEL_ENV) else None)
    if named is not None and not named.exists():  # a bare name (`--model sasrec`) is a folder under the models root
        under = (Path(root) if root else models_root()) / named
        named = under if under.is_dir() else named
    candidates = [named] if named is not None else list_checkpoints(root)
    if not candidates:
        where = Path(root) if root else models_root()
        raise NotFoundError(f"No trained model found under {where}.", next_step="train", step_db=default_db_path(db))
    with connect_read(db) as con:
        for path in candidates:
            found = match_model(path, con)
            if found.fits:
                if found.note:
                    log.warning("%s", found.note)
                return path
            if named is not None:
                raise found.refusal(default_db_path(db))
    raise NotFoundError(
        f"None of the {len(candidates)} models under {candidates[0].parent} was trained on {default_db_path(db)} (none "
        f"knows its items under the same titles and categories).", next_step="train", step_db=default_db_path(db)
    )
