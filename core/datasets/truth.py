"""The planted truth behind a synthetic log: per user, the interest mixtures and change points that
generated every event, stored compactly and answered per event.

Event indices count a user's events in canonical order (`ORDER BY ts, run_id, seq`); synthetic
timestamps are strictly increasing per user, so index i is simply the user's i-th event in time.

On disk (`<db>.truth/`, written by `save`, read by `load_truth`):

- `truth.parquet`, one row per user: `user_id`, `archetype` (switch | gradual | periodic | stable),
  `n_events`, `mixtures` (list of [C] arrays), `change_points` (event indices), `change_ts`
  (timestamps of those events), `gradual_start`, `gradual_end` (event indices, −1 unless gradual),
  `weekend` (per event, True on Saturday/Sunday UTC; periodic users only, else empty).
- `meta.json`: categories (names, index = position), seed, generator parameters.

Mixture rule per archetype (M0, M1, … are the user's `mixtures` in order):
stable: M0. switch: M_k where k = number of change points ≤ i (a change point is the first event
under the new mixture). gradual: M0 up to `gradual_start`, M1 from `gradual_end`, linear between.
periodic: M1 on weekend events, M0 on weekday events.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from core.errors import NotFoundError

__all__ = ["ARCHETYPES", "SyntheticTruth", "load_truth", "truth_dir"]

ARCHETYPES = ("switch", "gradual", "periodic", "stable")
_VERSION = 1


def truth_dir(db: str | os.PathLike) -> Path:
    """Where the truth of a synthetic database lives: the folder `<db>.truth/` beside it."""
    return Path(str(db) + ".truth")


@dataclass
class SyntheticTruth:
    """Per-user planted mixtures and change points (CSR layout: offsets index flat arrays).

    Shapes: U users, C categories, M mixtures in all, P change points in all, W weekend flags in all.
    """

    categories: list[str]
    user_ids: np.ndarray  # [U] str
    archetypes: np.ndarray  # [U] str, one of ARCHETYPES
    n_events: np.ndarray  # [U] int64
    mix_offsets: np.ndarray  # [U+1] int64 into mixtures
    mixtures: np.ndarray  # [M, C] float64, rows sum to one
    cp_offsets: np.ndarray  # [U+1] int64 into change_points / change_ts
    change_points_flat: np.ndarray  # [P] int64 event indices
    change_ts_flat: np.ndarray  # [P] int64 unix seconds
    gradual_start: np.ndarray  # [U] int64, -1 unless gradual
    gradual_end: np.ndarray  # [U] int64, -1 unless gradual
    weekend_offsets: np.ndarray  # [U+1] int64 into weekend_flat (empty span unless periodic)
    weekend_flat: np.ndarray  # [W] bool
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._row = {str(u): i for i, u in enumerate(self.user_ids)}

    # ---- lookups -------------------------------------------------------------------------------
    def row(self, user_id: str) -> int:
        """The user's row; NotFoundError for a user the generator did not make."""
        try:
            return self._row[str(user_id)]
        except KeyError:
            raise NotFoundError(f"User {user_id!r} is not in the synthetic truth.") from None

    def archetype(self, user_id: str) -> str:
        """switch, gradual, periodic or stable."""
        return str(self.archetypes[self.row(user_id)])

    def change_points(self, user_id: str) -> list[int]:
        """The planted switch indices (first event under each new mixture); empty unless `switch`."""
        r = self.row(user_id)
        return [int(x) for x in self.change_points_flat[self.cp_offsets[r] : self.cp_offsets[r + 1]]]

    def change_times(self, user_id: str) -> list[np.datetime64]:
        """Timestamps (UTC) of the events at `change_points(user_id)`."""
        r = self.row(user_id)
        secs = self.change_ts_flat[self.cp_offsets[r] : self.cp_offsets[r + 1]]
        return [np.datetime64(int(s), "s") for s in secs]

    def user_mixtures(self, user_id: str) -> np.ndarray:
        """The true mixture at every event of the user, [n_events, C]."""
        r = self.row(user_id)
        n = int(self.n_events[r])
        return self.mixtures_at(np.full(n, r), np.arange(n))

    def mixtures_at(self, rows: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """Vectorised: the mixture for events (user row, event index), [N, C]; used by the generator."""
        a, b, w = self._spec(np.asarray(rows, np.int64), np.asarray(idx, np.int64))
        if not np.any(w):
            return self.mixtures[a]
        return (1.0 - w)[:, None] * self.mixtures[a] + w[:, None] * self.mixtures[b]  # [N, C]

    def _spec(self, rows: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each event's mixture as (1 − w)·M[a] + w·M[b] with global mixture rows a, b."""
        arch = self.archetypes[rows]
        base = self.mix_offsets[rows]
        a = base.copy()
        b = base.copy()
        w = np.zeros(len(rows))
        sw = arch == "switch"
        if sw.any():
            # number of the user's change points ≤ i, via one sorted key space (row, index)
            big = int(self.n_events.max()) + 1
            cp_rows = np.repeat(np.arange(len(self.user_ids)), np.diff(self.cp_offsets))
            keys = cp_rows * big + self.change_points_flat
            k = np.searchsorted(keys, rows[sw] * big + idx[sw], side="right") - self.cp_offsets[rows[sw]]
            a[sw] = base[sw] + k
            b[sw] = a[sw]
        gr = arch == "gradual"
        if gr.any():
            s, e = self.gradual_start[rows[gr]], self.gradual_end[rows[gr]]
            w[gr] = np.clip((idx[gr] - s) / np.maximum(e - s, 1), 0.0, 1.0)
            b[gr] = base[gr] + 1
        pe = arch == "periodic"
        if pe.any():
            weekend = self.weekend_flat[self.weekend_offsets[rows[pe]] + idx[pe]]
            a[pe] = base[pe] + weekend.astype(np.int64)
            b[pe] = a[pe]
        return a, b, w

    # ---- storage -------------------------------------------------------------------------------
    def save(self, folder: str | os.PathLike) -> Path:
        """Write `truth.parquet` and `meta.json` into `folder` (created if absent)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        c = len(self.categories)
        inner = pa.FixedSizeListArray.from_arrays(pa.array(self.mixtures.reshape(-1), pa.float64()), c)
        table = pa.table(
            {
                "user_id": pa.array(self.user_ids.astype(str), pa.string()),
                "archetype": pa.array(self.archetypes.astype(str), pa.string()),
                "n_events": pa.array(self.n_events, pa.int64()),
                "mixtures": pa.ListArray.from_arrays(pa.array(self.mix_offsets, pa.int32()), inner),
                "change_points": _lists(self.cp_offsets, pa.array(self.change_points_flat, pa.int64())),
                "change_ts": _lists(self.cp_offsets, pa.array(self.change_ts_flat.astype("datetime64[s]"))),
                "gradual_start": pa.array(self.gradual_start, pa.int64()),
                "gradual_end": pa.array(self.gradual_end, pa.int64()),
                "weekend": _lists(self.weekend_offsets, pa.array(self.weekend_flat, pa.bool_())),
            }
        )
        pq.write_table(table, folder / "truth.parquet", compression="zstd")
        meta = {"version": _VERSION, "categories": self.categories, **self.meta}
        (folder / "meta.json").write_text(json.dumps(meta, indent=2))
        return folder


def _lists(offsets: np.ndarray, values: pa.Array) -> pa.ListArray:
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values)


def load_truth(path: str | os.PathLike) -> SyntheticTruth:
    """Read the truth saved beside a synthetic database.

    `path` is the truth folder, or the database file itself (its `<db>.truth/` folder is used).
    """
    path = Path(path)
    folder = path if (path / "truth.parquet").exists() else truth_dir(path)
    if not (folder / "truth.parquet").exists():
        raise NotFoundError(f"No synthetic truth at {folder}.", next_step="build_synthetic")
    meta = json.loads((folder / "meta.json").read_text())
    t = pq.read_table(folder / "truth.parquet")
    c = len(meta["categories"])
    mix = t.column("mixtures").combine_chunks()
    cps = t.column("change_points").combine_chunks()
    cts = t.column("change_ts").combine_chunks()
    wk = t.column("weekend").combine_chunks()
    return SyntheticTruth(
        categories=list(meta.pop("categories")),
        user_ids=np.asarray(t.column("user_id").to_pylist(), dtype=object),
        archetypes=np.asarray(t.column("archetype").to_pylist(), dtype=object),
        n_events=t.column("n_events").to_numpy().astype(np.int64),
        mix_offsets=_offsets(mix),
        mixtures=mix.flatten().flatten().to_numpy().reshape(-1, c),
        cp_offsets=_offsets(cps),
        change_points_flat=cps.flatten().to_numpy().astype(np.int64),
        change_ts_flat=cts.flatten().cast(pa.int64()).to_numpy(),
        gradual_start=t.column("gradual_start").to_numpy().astype(np.int64),
        gradual_end=t.column("gradual_end").to_numpy().astype(np.int64),
        weekend_offsets=_offsets(wk),
        weekend_flat=wk.flatten().to_numpy(zero_copy_only=False).astype(bool),
        meta=meta,
    )


def _offsets(arr: pa.ListArray) -> np.ndarray:
    off = arr.offsets.to_numpy().astype(np.int64)
    return off - off[0]
