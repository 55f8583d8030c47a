"""Registered external models: one folder beside ours, `<models>/<name>/`, described in JSON (never pickle).

    external.json     kind, the model file or entry point, the sidecar, when and from which database
    vocab.json        the database's vocabulary restricted to the items the model knows (what our indices mean)
    fingerprint.json  the database's data fingerprint at registration (`core.sequences.data_fingerprint`)
    model.onnx | model.pt, items.csv   copies of what was registered (none for an entry point)

`load_checkpoint` sees `external.json` and loads the folder through `load_external`, so every command that takes
`--model` takes an external model too.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import duckdb
import numpy as np

from core.errors import NotFoundError, SettingError, UserInputError
from core.external.adapters import EntryModel, ExternalModel, OnnxModel, TorchScriptModel, load_entry
from core.external.sidecar import Sidecar, read_item_map, read_sidecar
from core.model_files import EXTERNAL_FILE, is_model
from core.sequences import Vocab, build_vocab, data_fingerprint

__all__ = [
    "EXTERNAL_FILE", "ExternalKind", "ModelInfo", "add_model", "list_models", "model_folders", "load_external", "is_external",
]

log = logging.getLogger(__name__)

ExternalKind = Literal["onnx", "torchscript", "entry"]
_FILES = {"onnx": "model.onnx", "torchscript": "model.pt"}
_ITEMS = "items.csv"


@dataclass(frozen=True)
class ModelInfo:
    """One model under the models folder, ours or external."""

    name: str  # folder name
    kind: str  # "interestlens", "onnx", "torchscript" or "entry"
    path: Path  # the folder
    fingerprint: dict  # the data fingerprint it was trained or registered on ({} when unknown)
    items: int  # items it scores in its database's catalogue
    source: str = ""  # the registered file or entry point (external models)

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "path": str(self.path), "fingerprint": self.fingerprint,
                "items": self.items, "source": self.source}


def is_external(path: str | os.PathLike) -> bool:
    """Whether the folder holds a registered external model."""
    return (Path(path) / EXTERNAL_FILE).is_file()


def _build(kind: str, folder: Path, spec: dict, vocab: Vocab, item_map: dict[int, str] | None):
    """The adapter of a registered (or being registered) model with its index map onto `vocab`."""
    sidecar = Sidecar.from_dict(spec.get("sidecar", {}))
    if kind == "entry":
        obj = load_entry(spec["entry"])
        item_map = {n + 1: str(i) for n, i in enumerate(obj.item_ids)}
    inverse = {item: idx for idx, item in item_map.items()}
    to_model = np.array([0, *(inverse[i] for i in vocab.items)], np.int64)  # [I+1]
    if kind == "entry":
        return EntryModel(obj, spec["entry"], vocab.items, to_model, vocab.event_types)
    path = folder / _FILES[kind]
    cls = OnnxModel if kind == "onnx" else TorchScriptModel
    return cls(path, vocab.items, to_model, sidecar, vocab.event_types)


def add_model(
    con: duckdb.DuckDBPyConnection,
    root: str | os.PathLike,
    name: str,
    kind: ExternalKind,
    source: str,
    items: str | os.PathLike | None = None,
    sidecar: str | os.PathLike | None = None,
) -> ModelInfo:
    """Register an external model under `root/name` for the database on `con`; returns what was registered.

    `source` is the ONNX or TorchScript file, or `package.module:factory` (which is imported and called: it runs
    the user's code). The sidecar defaults to the file's name with `.json`; the item map to `--items`, else the
    sidecar's `items_file`. Items of the map that the database lacks are left out (logged); a model that knows
    none of the database's items is refused. One probe batch is scored before anything is written.
    """
    if not name or any(c in name for c in "/\\") or name.startswith("."):
        raise UserInputError(f"A model name is a plain folder name, not {name!r}.")
    folder = Path(root) / name
    if folder.exists():
        raise UserInputError(f"There is already a model called {name!r} at {folder}; pick another name.")
    spec: dict = {"format": 1, "kind": kind, "registered": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    item_map = None
    if kind in _FILES:
        src = Path(source)
        if not src.is_file():
            raise NotFoundError(f"There is no {kind} file at {src}.")
        car_path = Path(sidecar) if sidecar else src.with_suffix(".json")
        car = read_sidecar(car_path)
        map_path = Path(items) if items else (car_path.parent / car.items_file if car.items_file else None)
        if map_path is None:
            raise SettingError("Give the {items} file (a CSV with columns index,item_id) or name items_file in the sidecar.", "items")
        item_map = read_item_map(map_path)
        spec |= {"file": _FILES[kind], "source": str(src.resolve()), "sidecar": {**car.to_dict(), "items_file": _ITEMS}}
    else:
        spec |= {"entry": source, "source": source, "sidecar": {}}
    full = build_vocab(con)
    known_ids = set(item_map.values()) if item_map is not None else {str(i) for i in load_entry(source).item_ids}
    keep = [n for n, i in enumerate(full.items) if i in known_ids]
    if not keep:
        raise UserInputError(f"None of the model's {len(known_ids):,} items is in this database; is it the right one?")
    vocab = Vocab([full.items[n] for n in keep], full.categories, full.event_types, full.context,
                  [full.item_categories[n] for n in keep] if full.item_categories else [])
    missing = len(known_ids) - len(keep)
    if missing:
        log.warning("%s of the model's %s items are not in this database; they are left out", missing, len(known_ids))
    spec |= {"items_known": len(keep), "items_missing": missing}
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        if kind in _FILES:
            shutil.copyfile(source, tmp / _FILES[kind])
            with open(tmp / _ITEMS, "w", newline="", encoding="utf-8") as f:
                writer = csv.writer(f)
                writer.writerow(["index", "item_id"])
                writer.writerows(sorted(item_map.items()))
        model = _build(kind, tmp, spec, vocab, item_map)
        _probe(model)
        vocab.save(tmp / "vocab.json")
        (tmp / "fingerprint.json").write_text(json.dumps(data_fingerprint(con)))
        (tmp / EXTERNAL_FILE).write_text(json.dumps(spec, indent=2))
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return _info(folder)


def _probe(model: ExternalModel) -> None:
    """Score two tiny histories (one empty) so a wrong sidecar fails at registration, in one sentence."""
    from core.sequences import History, make_batch

    one = History.from_arrays([1], [0])
    try:
        scores = model.score(make_batch([one, History.from_arrays([], [])], model.max_len))
    except UserInputError:
        raise
    except Exception as exc:  # the user's runtime may raise anything; say what happened in one sentence
        raise UserInputError(f"The model failed on a test history ({type(exc).__name__}: {str(exc).splitlines()[0]}).") from exc
    if not np.isfinite(scores[:, 1:].numpy()).all():
        raise UserInputError("The model returned non-finite scores for a test history; check its inputs and output.")


def load_external(folder: str | os.PathLike) -> tuple[ExternalModel, Vocab, dict]:
    """The adapter, vocabulary and data fingerprint of a registered external model."""
    folder = Path(folder)
    try:
        spec = json.loads((folder / EXTERNAL_FILE).read_text(encoding="utf-8"))
        vocab = Vocab.load(folder / "vocab.json")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserInputError(f"The external model at {folder} is damaged ({exc}); register it again.") from exc
    kind = spec.get("kind")
    if kind not in ("onnx", "torchscript", "entry"):
        raise UserInputError(f"The external model at {folder} has an unknown kind {kind!r}.")
    item_map = read_item_map(folder / _ITEMS) if kind in _FILES else None
    missing = [i for i in vocab.items if item_map is not None and i not in set(item_map.values())]
    if missing:
        raise UserInputError(f"The item map of {folder} lacks {len(missing)} items of its vocabulary; register it again.")
    fp = json.loads((folder / "fingerprint.json").read_text()) if (folder / "fingerprint.json").is_file() else {}
    return _build(kind, folder, spec, vocab, item_map), vocab, fp


def _info(folder: Path) -> ModelInfo:
    fp_path = folder / "fingerprint.json"
    fp = json.loads(fp_path.read_text()) if fp_path.is_file() else {}
    try:
        n_items = len(Vocab.load(folder / "vocab.json").items)
    except (OSError, ValueError, KeyError, TypeError):
        n_items = 0
    if is_external(folder):
        spec = json.loads((folder / EXTERNAL_FILE).read_text(encoding="utf-8"))
        return ModelInfo(folder.name, spec.get("kind", "?"), folder, fp, n_items, spec.get("source", ""))
    return ModelInfo(folder.name, "interestlens", folder, fp, n_items)


def model_folders(root: str | os.PathLike) -> list[Path]:
    """The folders under `root` that hold a model, ours (a `model.safetensors`) or external (an `external.json`),
    by name; nothing in them is read (`list_models` describes them, reading each vocabulary)."""
    root = Path(root)
    if not root.is_dir():
        return []
    return [d for d in sorted(root.iterdir()) if d.is_dir() and not d.name.endswith((".tmp", ".old"))
            and is_model(d)]


def list_models(root: str | os.PathLike) -> list[ModelInfo]:
    """Every model under `root`, ours (a `model.safetensors`) and external (an `external.json`), by name."""
    return [_info(d) for d in model_folders(root)]
