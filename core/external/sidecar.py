"""What an exported sequence model reads and writes: the JSON sidecar and the item map.

A sidecar (`model.json` beside `model.onnx` or `model.pt`) names the graph's inputs and output:

    {"inputs": {"items": "item_seq", "lengths": "item_seq_len", "times": null},
     "output": "scores", "max_len": 50, "padding": "right"}

- `items` (required): int64 `[B, L]` item indices of the model's own catalogue, 0 = padding.
- `lengths` (optional): int64 `[B]` events per row.
- `times` (optional): int64 `[B, L]` unix seconds of each event, 0 on padding.
- `output`: float `[B, n]` scores, column j = the model's item index j (column 0 padding, ignored).
- `padding`: "right" (events first, RecBole's layout) or "left" (events last).
- `items_file` (optional): the item map, unless `models add --items` gives one.

The item map is a CSV with columns `index,item_id`: the model's item index (>= 1) and the database's item id.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from core.errors import SettingError, UserInputError

__all__ = ["Sidecar", "read_sidecar", "read_item_map"]


@dataclass(frozen=True)
class Sidecar:
    """The inputs and output of an exported sequence model."""

    items: str = "items"  # name of the item-sequence input, int64 [B, L]
    lengths: str | None = None  # name of the lengths input, int64 [B]; None when the graph takes none
    times: str | None = None  # name of the event-times input, int64 [B, L] unix seconds; None when none
    output: str = "scores"  # name of the scores output, float [B, n]
    max_len: int = 50  # L: the latest events fed per history
    padding: Literal["left", "right"] = "right"  # where the padding goes in each row
    items_file: str | None = None  # the item map's file name beside the sidecar, if it ships one

    def __post_init__(self) -> None:
        if self.max_len < 1:
            raise UserInputError("The sidecar's max_len must be at least 1.")
        if self.padding not in ("left", "right"):
            raise UserInputError(f"The sidecar's padding must be 'left' or 'right', not {self.padding!r}.")

    def to_dict(self) -> dict:
        return {
            "inputs": {"items": self.items, "lengths": self.lengths, "times": self.times},
            "output": self.output,
            "max_len": self.max_len,
            "padding": self.padding,
            "items_file": self.items_file,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Sidecar:
        """A sidecar from its JSON; one sentence naming what is wrong."""
        if not isinstance(d, dict) or not isinstance(d.get("inputs", {}), dict):
            raise UserInputError("The sidecar must be a JSON object with an 'inputs' object.")
        inputs = d.get("inputs", {})
        try:
            return cls(
                items=str(inputs.get("items") or "items"),
                lengths=inputs.get("lengths") or None,
                times=inputs.get("times") or None,
                output=str(d.get("output") or "scores"),
                max_len=int(d.get("max_len", 50)),
                padding=d.get("padding", "right"),
                items_file=d.get("items_file") or None,
            )
        except (TypeError, ValueError) as exc:
            raise UserInputError(f"The sidecar has a bad value ({exc}).") from exc


def read_sidecar(path: Path) -> Sidecar:
    """The sidecar at `path`; a missing file gives the defaults (items in, scores out, right padding, 50)."""
    if not path.is_file():
        return Sidecar()
    try:
        return Sidecar.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except json.JSONDecodeError as exc:
        raise UserInputError(f"The sidecar {path} is not valid JSON ({exc.msg}, line {exc.lineno}).") from exc


def read_item_map(path: Path) -> dict[int, str]:
    """{model item index: database item id} from a CSV with columns index,item_id."""
    if not path.is_file():
        raise SettingError("There is no item map at {path}; give the {items} file (a CSV with columns index,item_id).", "items", path=path)
    out: dict[int, str] = {}
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"index", "item_id"} <= set(reader.fieldnames):
            raise UserInputError(f"The item map {path} needs the columns index and item_id.")
        for n, row in enumerate(reader, start=2):
            try:
                idx = int(row["index"])
            except (TypeError, ValueError):
                raise UserInputError(f"Line {n} of {path}: the index {row['index']!r} is not a whole number.") from None
            if idx < 1:
                raise UserInputError(f"Line {n} of {path}: indices start at 1 (0 is padding).")
            if idx in out:
                raise UserInputError(f"Line {n} of {path}: the index {idx} appears twice.")
            out[idx] = str(row["item_id"])
    if not out:
        raise UserInputError(f"The item map {path} has no rows.")
    return out
