"""External sequence models behind the model contract: ONNX (onnxruntime), TorchScript and a Python entry point.

Every adapter turns a `Batch` (our item indices, left-padded, absent events masked) into the model's own input:
each row's present events, mapped to the model's item indices, the latest `max_len` of them, padded as the sidecar
says. Absence therefore means *the event is dropped from the sequence* — the next event moves into its place and
the sequence is one shorter — unlike our model, which keeps the event's slot and masks it (positions and the next
event's time gap unchanged). Both are "the model never saw it"; SHAP values of the two kinds of model answer
slightly different questions and are not comparable event by event.

Scores come back as `[B, I+1]` in our item indices (column 0 and items the model does not know: -inf). Rows are
scored in chunks so that at most `SCORE_CELLS` scores are held at once, as `core.recommend` does for our model.

Shapes: B rows, T our window, L the model's window, n the model's output columns, I our catalogue.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.errors import UserInputError
from core.external.sidecar import Sidecar
from core.model import Batch

__all__ = ["SCORE_CELLS", "HistoryInput", "ExternalModel", "OnnxModel", "TorchScriptModel", "EntryModel", "load_entry"]

SCORE_CELLS = 1 << 22  # rows x output columns scored at a time (16 MB of float32), the cap core.recommend uses


@dataclass
class HistoryInput:
    """One history as an entry-point model receives it (database ids, oldest first)."""

    items: list[str]  # database item ids
    times: np.ndarray  # [n] int64 unix seconds
    event_types: list[str]  # event type names ("" when unknown)


class ExternalModel(ABC):
    """Shared part of the adapters: compact, map and pad each row, run the model in chunks, map the scores back.

    Parameters
    ----------
    kind
        "onnx", "torchscript" or "entry".
    item_ids
        Our catalogue (`Vocab.items`): score column j is item_ids[j-1].
    to_model
        [I+1] int64: the model's item index of each of our indices (entry 0 unused; every item known).
    sidecar
        The model's inputs, output, window and padding.
    event_types
        Our event type names (`Vocab.event_types`), index = position + 1.
    """

    capabilities: frozenset[str] = frozenset()
    device = torch.device("cpu")

    def __init__(self, kind: str, item_ids: Sequence[str], to_model: np.ndarray, sidecar: Sidecar,
                 event_types: Sequence[str] = ()):
        self.kind = kind
        self.item_ids = list(item_ids)
        self.to_model = np.asarray(to_model, np.int64)
        self.sidecar = sidecar
        self.max_len = sidecar.max_len
        self.event_types = ["", *event_types]
        self.n_evals = 0  # rows scored so far (benchmarks read it)
        self._cols = torch.from_numpy(self.to_model[1:])  # [I] the model's column of each of our items
        self._need = int(self.to_model.max(initial=0)) + 1  # output columns the item map needs at least

    def score(self, batch: Batch) -> torch.Tensor:
        """Scores `[B, I+1]` of each row's present events (absent ones dropped from the sequence)."""
        items = batch.items.cpu().numpy()  # [B,T]
        present = (batch.mask & (batch.items > 0)).cpu().numpy()  # [B,T]
        ts = batch.ts.cpu().numpy() if batch.ts is not None else np.zeros_like(items)
        types = batch.event_types.cpu().numpy()
        B, n_ours = len(items), len(self.item_ids) + 1
        out = torch.full((B, n_ours), float("-inf"))
        step = max(1, SCORE_CELLS // max(n_ours, self._need))
        for lo in range(0, B, step):
            sl = slice(lo, min(B, lo + step))
            raw = self._run(*self._compact(items[sl], present[sl], ts[sl], types[sl]))
            raw = torch.as_tensor(np.asarray(raw), dtype=torch.float32)  # [b,n]
            if raw.ndim != 2 or raw.shape[0] != sl.stop - lo or raw.shape[1] < self._need:
                raise UserInputError(
                    f"The {self.kind} model returned scores of shape {tuple(raw.shape)}; expected [{sl.stop - lo}, "
                    f"{self._need}] or more columns (its item map's largest index + 1)."
                )
            out[sl, 1:] = raw[:, self._cols]
        self.n_evals += B
        return out

    def _compact(self, items: np.ndarray, present: np.ndarray, ts: np.ndarray, types: np.ndarray):
        """Each row's latest ≤ L present events, right-aligned from slot 0 and mapped to the model's indices:
        items [B,L], lengths [B], times [B,L], our event types [B,L] (0 after a row's events)."""
        B, L = len(items), self.max_len
        n = present.sum(1)  # [B]
        rank = present.cumsum(1) - 1 - np.maximum(n - L, 0)[:, None]  # [B,T] slot of each kept event
        r, t = np.nonzero(present & (rank >= 0))
        slot = rank[r, t]
        mapped, times, kinds = (np.zeros((B, L), np.int64) for _ in range(3))
        mapped[r, slot] = self.to_model[items[r, t]]
        times[r, slot] = ts[r, t]
        kinds[r, slot] = types[r, t]
        return mapped, np.minimum(n, L).astype(np.int64), times, kinds

    def _pack(self, items: np.ndarray, lengths: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Items and times padded as the sidecar says (they come right-padded)."""
        if self.sidecar.padding == "right":
            return items, times
        L = self.max_len
        shift = (np.arange(L)[None, :] - (L - lengths)[:, None]) % L  # [B,L] source slot of each left-padded slot
        rows = np.arange(len(items))[:, None]
        return items[rows, shift], times[rows, shift]

    @abstractmethod
    def _run(self, items: np.ndarray, lengths: np.ndarray, times: np.ndarray, types: np.ndarray) -> np.ndarray:
        """Raw scores [B, n] of right-padded model-index items [B,L], lengths [B], times [B,L], our types [B,L]."""


class OnnxModel(ExternalModel):
    """An ONNX graph run by onnxruntime on the CPU (threads: torch's setting, so `OMP_NUM_THREADS=1` holds)."""

    def __init__(self, path: Path, item_ids: Sequence[str], to_model: np.ndarray, sidecar: Sidecar,
                 event_types: Sequence[str] = ()):
        super().__init__("onnx", item_ids, to_model, sidecar, event_types)
        import onnxruntime as ort  # an optional dependency (the `external` extra)

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = torch.get_num_threads()
        opts.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for unreadable graphs
            raise UserInputError(f"onnxruntime cannot load {path} ({str(exc).splitlines()[0]}).") from exc
        names = {i.name for i in self.session.get_inputs()}
        wanted = [n for n in (sidecar.items, sidecar.lengths, sidecar.times) if n]
        missing = [n for n in wanted if n not in names]
        if missing:
            raise UserInputError(f"The ONNX model has no input {missing[0]!r}; its inputs are {sorted(names)}.")
        outputs = {o.name for o in self.session.get_outputs()}
        if sidecar.output not in outputs:
            raise UserInputError(f"The ONNX model has no output {sidecar.output!r}; its outputs are {sorted(outputs)}.")

    def _run(self, items, lengths, times, types):
        items, tt = self._pack(items, lengths, times)
        feeds = {self.sidecar.items: items}
        if self.sidecar.lengths:
            feeds[self.sidecar.lengths] = lengths
        if self.sidecar.times:
            feeds[self.sidecar.times] = tt
        return self.session.run([self.sidecar.output], feeds)[0]


class TorchScriptModel(ExternalModel):
    """A TorchScript module called as `module(items[, lengths][, times])` in the sidecar's input order."""

    def __init__(self, path: Path, item_ids: Sequence[str], to_model: np.ndarray, sidecar: Sidecar,
                 event_types: Sequence[str] = ()):
        super().__init__("torchscript", item_ids, to_model, sidecar, event_types)
        try:
            self.module = torch.jit.load(str(path), map_location="cpu").eval()
        except (RuntimeError, ValueError, OSError) as exc:
            raise UserInputError(f"torch cannot load the TorchScript file {path} ({str(exc).splitlines()[0]}).") from exc

    def _run(self, items, lengths, times, types):
        items, tt = self._pack(items, lengths, times)
        args = [torch.from_numpy(items)]
        if self.sidecar.lengths:
            args.append(torch.from_numpy(lengths))
        if self.sidecar.times:
            args.append(torch.from_numpy(tt))
        with torch.inference_mode():
            return self.module(*args).float().numpy()


def load_entry(entry: str):
    """Import `package.module:factory` and call the factory: this runs the user's own code."""
    mod_name, _, fn_name = entry.partition(":")
    if not mod_name or not fn_name:
        raise UserInputError(f"An entry point is written package.module:factory, not {entry!r}.")
    try:
        factory = getattr(importlib.import_module(mod_name), fn_name)
    except (ImportError, AttributeError) as exc:
        raise UserInputError(f"Cannot import the entry point {entry!r} ({exc}).") from exc
    obj = factory()
    if not isinstance(getattr(obj, "item_ids", None), Sequence) or not callable(getattr(obj, "score", None)):
        raise UserInputError(f"The entry point {entry!r} must return an object with item_ids and score(histories).")
    return obj


class EntryModel(ExternalModel):
    """A Python object from `package.module:factory` with `item_ids` (database ids) and `score(histories)`.

    `score` receives a list of `HistoryInput` (database ids, oldest first, the latest `max_len`) and returns
    `[B, len(item_ids)]` scores, column j being item_ids[j]. Its `max_len` attribute (default 50) is the window.
    """

    def __init__(self, obj, entry: str, item_ids: Sequence[str], to_model: np.ndarray, event_types: Sequence[str] = ()):
        super().__init__("entry", item_ids, to_model, Sidecar(max_len=int(getattr(obj, "max_len", 50))), event_types)
        self.obj = obj
        self.entry = entry
        self._ids = np.asarray(["", *obj.item_ids], dtype=object)

    def _run(self, items, lengths, times, types):
        hs = [HistoryInput([str(x) for x in self._ids[items[b, :n]]], times[b, :n].copy(),
                           [self.event_types[int(e)] if 0 <= e < len(self.event_types) else "" for e in types[b, :n]])
              for b, n in enumerate(lengths)]
        raw = np.asarray(self.obj.score(hs), dtype=np.float32)  # [B, len(item_ids)]
        return np.concatenate([np.full((len(hs), 1), -np.inf, np.float32), raw.reshape(len(hs), -1)], axis=1)
