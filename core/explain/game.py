"""The explained scalar as a function of which events (or feature groups) are present, and shap's maskers for it.

A *game* holds one history window and one target. Its players are the window's events, or (long histories) the
latest events one by one and the older events in a few groups (`core.explain.hierarchy.explained_features`):
`events(present)` maps presence rows over the players `[N, n]` to the scalar `[N]`, `event_values(present)` does
the same for rows over the single events `[N, n_events]`, and `groups(present)` for feature-group rows `[N, G]`.
Every row is one forward pass of the model.

Absence follows the model's documented rule (`core.model.model`): an absent event has `Batch.mask` False, so
nothing attends to it, nothing pools it, and the readout is taken at the last present event; positions and the
next event's time gap are unchanged. Because nothing reads an absent event, a row needs slots only for its present
events: the window is embedded once (`InterestModel.embed`: an event's embedding, position and time gap included,
does not depend on which others are present) and each row encodes just its present events' embeddings
(`InterestModel.encode_embedded`), rows with similar counts together so that little is padded. That is the same
computation on fewer slots (equal to the masked full window up to float rounding, tested), about three times
cheaper on average than encoding the whole window for every row. Models without `encode_embedded` (test toys) are
evaluated on the masked full window. An absent feature group has `Batch.group_present` False: that group's
embedding (time gap, event type, categories or context) is the learned "unknown" one for every event.

The scalar is the target item's logit, or with a foil, the target's logit minus the foil's (the margin).

A model without per-step states (an external model behind `core.contract`) is a black box: each row is one
`RecModel.score` call on the masked window, and its adapter drops absent events from the sequence
(`core.external.adapters`). Feature groups are our model's inputs and are not played for such a model.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from core.contract import RecModel, module_of, supports
from core.errors import UserInputError
from core.model import FEATURE_GROUPS, Batch, repeat

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
        The model behind the contract (`LoadedModel.scorer`). With the "states" capability its network (or any
        module with the same `encode`, `readout` and `item_vectors`) is read directly; otherwise every row is one
        `score` call.
    window
        A one-row batch holding the window's `n_events` events in its last slots, all present.
    target
        Model index of the explained item.
    foil
        Model index of the item the margin is taken over, or None to explain the target's logit.
    batch_size
        At most this many masked variants per forward pass.
    features
        The players: for each, the window positions (0..n_events-1) of its events; every event in exactly one.
        None: one player per event.
    tokens
        At most this many event slots (rows × longest row) per forward pass of the present-events path.
    """

    def __init__(
        self,
        model: RecModel,
        window: Batch,
        target: int,
        foil: int | None = None,
        batch_size: int = 512,
        features: Sequence[Sequence[int]] | None = None,
        tokens: int = 2048,
    ):
        if window.size != 1:
            raise ValueError("a game holds exactly one history window")
        self.scorer = model
        self.model = module_of(model) if supports(model, "states") else None  # the network, when we may read it
        self.device = model.device
        self.window = window.to(self.device)
        self.n_events = int(self.window.mask.sum())
        self.T = int(self.window.items.shape[1])
        members = [np.asarray(f, dtype=np.int64) for f in features] if features is not None else None
        self.members = members if members is not None else [np.array([i]) for i in range(self.n_events)]
        owner = np.full(self.n_events, -1, np.int64)
        for j, m in enumerate(self.members):
            owner[m] = j
        if (owner < 0).any() or sum(len(m) for m in self.members) != self.n_events:
            raise ValueError("every event of the window must belong to exactly one feature")
        self.owner = owner  # [n_events] the player each event belongs to
        self.n = len(self.members)  # players of the events game
        self.target = int(target)
        self.foil = None if foil is None else int(foil)
        self.batch_size = max(1, int(batch_size))
        self.tokens = max(1, int(tokens))
        self.n_evals = 0  # masked variants evaluated so far (for benchmarks)
        ids = [self.target] + ([self.foil] if self.foil is not None else [])
        self._ids = ids
        net = self.model
        self._compact = net is not None and hasattr(net, "encode_embedded") and hasattr(net, "embed")
        self._vectors = self._x = None
        if net is not None:
            with torch.inference_mode():
                self._vectors = net.item_vectors()[torch.tensor(ids, device=self.device)]  # [1 or 2, D]
                # [n_events, D] each event's embedding (position and time gap included), shared by every subset
                self._x = net.embed(self.window)[0, self.T - self.n_events :] if self._compact else None
        # the window's event items, for the repeat term (core.model.repeat) of a model that has one
        has_term = net is not None and getattr(net, "repeat", None) is not None
        self._ev_items = self.window.items[0, self.T - self.n_events :] if has_term else None  # [n_events]

    # ------------------------------------------------------------------------------------------
    def batch(self, present: np.ndarray | None = None, groups: np.ndarray | None = None) -> Batch:
        """The masked full-window batch for event rows `[N, n_events]` (None = all present) and group rows `[N, G]`."""
        rows = len(present) if present is not None else len(groups) if groups is not None else 1
        b = self.window.repeat(rows)
        if present is not None:
            mask = b.mask.clone()
            mask[:, self.T - self.n_events :] = torch.as_tensor(np.asarray(present, bool), device=self.device)
            b.mask = mask
        if groups is not None:
            b.group_present = torch.as_tensor(np.asarray(groups, bool), device=self.device)
        return b

    def expand(self, present: np.ndarray) -> np.ndarray:
        """Presence rows over the players `[N, n]` as rows over the window's events `[N, n_events]`."""
        return np.asarray(present, dtype=bool).reshape(-1, self.n)[:, self.owner]

    def _readouts(self, present: np.ndarray | None, groups: np.ndarray | None) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
        """(rows, interest after the last present event [len(rows), D]) for every chunk of the rows (callers run
        it under `torch.inference_mode`)."""
        rows = len(present) if present is not None else len(groups)
        if self._compact and groups is None:
            yield from self._compact_readouts(present)
            return
        for lo in range(0, rows, self.batch_size):
            hi = min(rows, lo + self.batch_size)
            b = self.batch(None if present is None else present[lo:hi], None if groups is None else groups[lo:hi])
            yield np.arange(lo, hi), self.model.readout(self.model.encode(b), b)  # [n,D]

    def _compact_readouts(self, present: np.ndarray) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
        """The present-events path: each row encodes only its present events (see the module docstring)."""
        counts = present.sum(axis=1)
        order = np.argsort(counts, kind="stable")  # similar lengths together: little padding
        lo = 0
        while lo < len(order):
            hi = lo + 1
            while hi < len(order) and hi - lo < self.batch_size and (hi + 1 - lo) * max(1, counts[order[hi]]) <= self.tokens:
                hi += 1
            idx = order[lo:hi]
            P = max(1, int(counts[idx].max()))  # slots: the longest row of the chunk
            pres = torch.as_tensor(present[idx], device=self.device)  # [B,n_events]
            r, e = pres.nonzero(as_tuple=True)
            slot = P - pres.sum(1, keepdim=True) + pres.cumsum(1) - 1  # [B,n_events] left-padded slot per event
            x = self._x.new_zeros(len(idx), P, self._x.shape[1])  # [B,P,D]
            x[r, slot[r, e]] = self._x[e]
            mask = torch.zeros(len(idx), P, dtype=torch.bool, device=self.device)  # [B,P]
            mask[r, slot[r, e]] = True
            states = self.model.encode_embedded(x, mask).states[:, -1]  # [B,D] the last slot is the last present event
            empty = self.model.empty.expand_as(states)
            yield idx, torch.where(mask[:, -1:], states, empty)  # no event present: the learned empty state
            lo = hi

    def _scalar(self, h: torch.Tensor, present: np.ndarray | None = None) -> np.ndarray:
        """Target logit (or margin) from readouts h [n,D] of rows with present events `present` [n, n_events]
        (None: all present), the repeat term included."""
        z = (h @ self._vectors.t()).double()  # [n,1|2]
        rep = self._repeat(len(h), present)
        if rep is not None:
            ids = torch.tensor(self._ids, device=h.device)
            z = z + ((rep[0][:, :, None] == ids) * rep[1][:, :, None]).sum(1).double()  # [n,1|2]
        return (z[:, 0] - z[:, 1] if self.foil is not None else z[:, 0]).cpu().numpy()

    def _repeat(self, n: int, present: np.ndarray | None) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The repeat term's (items, offsets) after the last present event of each row ([n, n_events] each), or
        None for a model without the term. Exactly `InterestModel.repeat_offsets` on the masked window's last step:
        only present events count."""
        if self._ev_items is None:
            return None
        items = self._ev_items.expand(n, -1)  # [n,E]
        pres = (torch.ones_like(items, dtype=torch.bool) if present is None
                else torch.as_tensor(np.asarray(present, bool), device=items.device))
        ar = torch.arange(items.shape[1], device=items.device).expand_as(items)
        last = torch.where(pres, ar, torch.full_like(ar, -1)).cummax(1).values.clamp(min=0)  # [n,E]
        idx, off = repeat.history_offsets(items, pres, last, self.model.repeat)
        return idx[:, -1], off[:, -1]

    def _black_box(self, present: np.ndarray) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
        """(rows, full scores [len(rows), I+1]) of a model without states: one `score` call per chunk."""
        for lo in range(0, len(present), self.batch_size):
            hi = min(len(present), lo + self.batch_size)
            yield np.arange(lo, hi), self.scorer.score(self.batch(present[lo:hi])).double()

    def _scalar_of_scores(self, scores: torch.Tensor) -> np.ndarray:
        z = scores[:, self._ids]  # [n,1|2]
        return (z[:, 0] - z[:, 1] if self.foil is not None else z[:, 0]).cpu().numpy()

    def _value(self, present: np.ndarray | None, groups: np.ndarray | None) -> np.ndarray:
        rows = len(present) if present is not None else len(groups)
        out = np.empty(rows, dtype=np.float64)
        if self.model is None:
            if groups is not None:
                raise UserInputError(f"Feature groups are our model's inputs; a {self.scorer.kind} model has none.")
            with torch.inference_mode():
                for idx, scores in self._black_box(present):
                    out[idx] = self._scalar_of_scores(scores)
            self.n_evals += rows
            return out
        with torch.inference_mode():
            for idx, h in self._readouts(present, groups):
                out[idx] = self._scalar(h, None if present is None else present[idx])
        self.n_evals += rows
        return out

    def logits(self, batch: Batch) -> torch.Tensor:
        """Target (and foil) logits of every row of a masked full-window batch. [N, 1 or 2]"""
        with torch.inference_mode():
            h = self.model.readout(self.model.encode(batch), batch)  # [N,D]
            z = h @ self._vectors.t()  # [N,1|2]
            ro = self.model.repeat_offsets(batch)  # the repeat term, if the model has one
            if ro is not None:
                ids = torch.tensor(self._ids, device=z.device)
                z = z + ((ro[0][:, -1, :, None] == ids) * ro[1][:, -1, :, None]).sum(1).to(z.dtype)
            return z

    def events(self, present: np.ndarray) -> np.ndarray:
        """The scalar for presence rows over the players: `[N, n]` bool -> `[N]` float64."""
        return self._value(self.expand(present), None)

    def event_values(self, present: np.ndarray) -> np.ndarray:
        """The scalar for presence rows over the window's single events: `[N, n_events]` bool -> `[N]` float64."""
        return self._value(np.asarray(present, dtype=bool).reshape(-1, self.n_events), None)

    def groups(self, present: np.ndarray) -> np.ndarray:
        """The scalar for feature-group rows (order `FEATURE_GROUPS`): `[N, G]` bool -> `[N]` float64."""
        present = np.asarray(present, dtype=bool).reshape(-1, len(FEATURE_GROUPS))
        return self._value(None, present)

    def values_and_ranks(self, present: np.ndarray, exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The scalar `[N]` and the target's rank `[N]` (1 = best among all items) for player rows `[N, n]`.

        Items in `exclude` (model indices, e.g. the user's seen items) are not counted, unless one is the target.
        """
        rows = self.expand(present)
        values = np.empty(len(rows), dtype=np.float64)
        ranks = np.empty(len(rows), dtype=np.int64)
        drop = None
        if exclude is not None and len(exclude):
            drop = torch.as_tensor(np.setdiff1d(exclude, [self.target]), device=self.device)
        with torch.inference_mode():
            for idx, scalar, scores in self._values_and_scores(rows):  # scores [n,I+1]
                values[idx] = scalar
                if drop is not None:
                    scores[:, drop] = float("-inf")
                ranks[idx] = ((scores > scores[:, self.target : self.target + 1]).sum(dim=1) + 1).cpu().numpy()
        self.n_evals += len(rows)
        return values, ranks

    def _values_and_scores(self, rows: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray, torch.Tensor]]:
        """(rows, scalar [n], full scores [n, I+1]) for every chunk of event rows (under inference mode)."""
        if self.model is None:
            for idx, scores in self._black_box(rows):
                yield idx, self._scalar_of_scores(scores), scores
            return
        for idx, h in self._readouts(rows, None):
            scores, rep = self.model.score(h), self._repeat(len(idx), rows[idx])
            yield idx, self._scalar(h, rows[idx]), scores if rep is None else repeat.add_full(scores, *rep)

    def full(self) -> float:
        """The scalar with every event and feature group present, f(x)."""
        return float(self.events(np.ones((1, self.n), bool))[0])
