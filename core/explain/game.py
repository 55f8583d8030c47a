"""The explained scalar as a function of which events (or feature groups) are present, and shap's maskers for it.

A *game* holds one history window and one target: `events(present)` maps presence rows `[N, n]` to the scalar
`[N]`, `groups(present)` maps feature-group rows `[N, G]` to it. Every row is one forward pass of the model, and
rows go through the model `batch_size` at a time on the model's device (the GPU when the model is on one).

Absence follows the model's documented rule (`core.model.model`): an absent event has `Batch.mask` False, so
nothing attends to it, nothing pools it, and the readout is taken at the last present event; positions and the
next event's time gap are unchanged. An absent feature group has `Batch.group_present` False: that group's
embedding (time gap, event type, categories or context) is the learned "unknown" one for every event.

The scalar is the target item's logit, or with a foil, the target's logit minus the foil's (the margin).
"""

from __future__ import annotations

import numpy as np
import torch

from core.model import FEATURE_GROUPS, Batch, InterestModel

__all__ = ["HistoryGame", "PresenceMasker"]


class PresenceMasker:
    """A shap callable masker whose masked sample is the presence row itself (True = feature present).

    shap calls `masker(mask, x)` for one sample `x` and a boolean `mask`; here the model function receives the
    presence rows and builds the masked batch, so the masker only reshapes. `clustering` (a scipy linkage matrix)
    turns a Partition explainer's game into the hierarchical (Owen) one; leave it None for Shapley values.
    """

    immutable_outputs = True  # every call returns a fresh array, so shap need not copy it

    def __init__(self, n_features: int, clustering: np.ndarray | None = None, batch_size: int = 512):
        self.shape = (1, n_features)
        self.clustering = clustering
        self.default_batch_size = batch_size

    def __call__(self, mask: np.ndarray, x: np.ndarray) -> np.ndarray:
        return np.array(mask, dtype=bool).reshape(1, -1)


class HistoryGame:
    """The target's logit (or margin over a foil) for one history window under any set of present events.

    Parameters
    ----------
    model
        The interest model (or any module with the same `encode`, `readout` and `item_vectors`), in eval mode.
    window
        A one-row batch holding the window's `n` events in its last `n` slots, all present.
    target
        Model index of the explained item.
    foil
        Model index of the item the margin is taken over, or None to explain the target's logit.
    batch_size
        Masked variants per forward pass.
    """

    def __init__(self, model: InterestModel, window: Batch, target: int, foil: int | None = None, batch_size: int = 512):
        if window.size != 1:
            raise ValueError("a game holds exactly one history window")
        self.model = model
        self.device = next(model.parameters()).device
        self.window = window.to(self.device)
        self.n = int(self.window.mask.sum())
        self.T = int(self.window.items.shape[1])
        self.target = int(target)
        self.foil = None if foil is None else int(foil)
        self.batch_size = max(1, int(batch_size))
        self.n_evals = 0  # masked variants evaluated so far (for benchmarks)
        ids = [self.target] + ([self.foil] if self.foil is not None else [])
        with torch.inference_mode():
            self._vectors = model.item_vectors()[torch.tensor(ids, device=self.device)]  # [1 or 2, D]

    # ------------------------------------------------------------------------------------------
    def batch(self, present: np.ndarray | None = None, groups: np.ndarray | None = None) -> Batch:
        """The masked batch for presence rows `[N, n]` (None = all present) and group rows `[N, G]`."""
        rows = len(present) if present is not None else len(groups) if groups is not None else 1
        b = self.window.repeat(rows)
        if present is not None:
            mask = b.mask.clone()
            mask[:, self.T - self.n :] = torch.as_tensor(np.asarray(present, bool), device=self.device)
            b.mask = mask
        if groups is not None:
            b.group_present = torch.as_tensor(np.asarray(groups, bool), device=self.device)
        return b

    def logits(self, batch: Batch) -> torch.Tensor:
        """Target (and foil) logits of every row of a masked batch. [N, 1 or 2]"""
        with torch.inference_mode():
            h = self.model.readout(self.model.encode(batch), batch)  # [N,D]
            return h @ self._vectors.t()  # [N,1|2]

    def _value(self, present: np.ndarray | None, groups: np.ndarray | None) -> np.ndarray:
        rows = len(present) if present is not None else len(groups)
        out = np.empty(rows, dtype=np.float64)
        for lo in range(0, rows, self.batch_size):
            hi = min(rows, lo + self.batch_size)
            z = self.logits(
                self.batch(None if present is None else present[lo:hi], None if groups is None else groups[lo:hi])
            ).double()
            v = z[:, 0] - z[:, 1] if self.foil is not None else z[:, 0]
            out[lo:hi] = v.cpu().numpy()
        self.n_evals += rows
        return out

    def events(self, present: np.ndarray) -> np.ndarray:
        """The scalar for presence rows over the window's events: `[N, n]` bool -> `[N]` float64."""
        present = np.asarray(present, dtype=bool).reshape(-1, self.n)
        return self._value(present, None)

    def groups(self, present: np.ndarray) -> np.ndarray:
        """The scalar for feature-group rows (order `FEATURE_GROUPS`): `[N, G]` bool -> `[N]` float64."""
        present = np.asarray(present, dtype=bool).reshape(-1, len(FEATURE_GROUPS))
        return self._value(None, present)

    def values_and_ranks(self, present: np.ndarray, exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The scalar `[N]` and the target's rank `[N]` (1 = best among all items) for presence rows `[N, n]`.

        Items in `exclude` (model indices, e.g. the user's seen items) are not counted, unless one is the target.
        """
        present = np.asarray(present, dtype=bool).reshape(-1, self.n)
        values = np.empty(len(present), dtype=np.float64)
        ranks = np.empty(len(present), dtype=np.int64)
        drop = None
        if exclude is not None and len(exclude):
            drop = torch.as_tensor(np.setdiff1d(exclude, [self.target]), device=self.device)
        with torch.inference_mode():
            for lo in range(0, len(present), self.batch_size):
                b = self.batch(present[lo : lo + self.batch_size])
                hi = lo + b.size
                h = self.model.readout(self.model.encode(b), b)  # [N,D]
                z = (h @ self._vectors.t()).double()  # [N,1|2]
                values[lo:hi] = (z[:, 0] - z[:, 1] if self.foil is not None else z[:, 0]).cpu().numpy()
                scores = self.model.score(h)  # [N,I+1]
                if drop is not None:
                    scores[:, drop] = float("-inf")
                ranks[lo:hi] = ((scores > scores[:, self.target : self.target + 1]).sum(dim=1) + 1).cpu().numpy()
        self.n_evals += len(present)
        return values, ranks

    def full(self) -> float:
        """The scalar with every event and feature group present, f(x)."""
        return float(self.events(np.ones((1, self.n), bool))[0])
