"""What the model attends to at one step of a history: weights per layer and head, attention rollout, and the
same attention aggregated by category and by calendar window (day / week / month).

Attention weights are not attributions (see METRICS.md §4): they say where the model looked, not how much each
event changed the output. Use `core.explain` for attributions.

Shapes: L layers, H heads, T window steps, n events in the window, C categories.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import duckdb
import numpy as np
import pandas as pd
import torch

from core.checkpoint import LoadedModel
from core.contract import module_of, supports
from core.errors import NotFoundError, UserInputError
from core.sequences import History, load_sequences, make_batch
from core.store import user_history
from core.trajectory.cohort import period_start

__all__ = ["NO_CATEGORY", "StepAttention", "AttentionAnalyzer", "attention_rollout"]

log = logging.getLogger(__name__)

NO_CATEGORY = "(no category)"
Source = Literal["rollout", "mean"] | tuple[int, int]


def attention_rollout(attention: np.ndarray | torch.Tensor, residual: bool = True) -> np.ndarray:
    """Attention rollout (Abnar & Zuidema, 2020): how much each input position flows into each position.

    Each layer's attention is averaged over heads; with `residual`, the skip connection is added as
    ½·A + ½·I; each row is re-normalised to sum to one; the layers are then multiplied from the first up:
    R = Â_L · … · Â_1.

    Parameters
    ----------
    attention
        [L, H, T, T] per-layer weights, rows = queries.

    Returns
    -------
    [T, T]; row t is the rolled-out attention of position t over the input positions (it sums to one).
    """
    a = torch.as_tensor(attention, dtype=torch.float64)
    if a.ndim != 4 or a.shape[-1] != a.shape[-2]:
        raise ValueError("attention must be [L, H, T, T]")
    T = a.shape[-1]
    eye = torch.eye(T, dtype=torch.float64)
    out = eye
    for layer in a:
        m = layer.mean(dim=0)  # [T,T]
        if residual:
            m = 0.5 * m + 0.5 * eye
        m = m / m.sum(dim=-1, keepdim=True).clamp(min=1e-12)
        out = m @ out
    return out.numpy()


@dataclass
class StepAttention:
    """The model's attention from one step's query over the events in its window (oldest first)."""

    step: int  # the history step asked about
    steps: np.ndarray  # [n] history step of each event in the window (events the model knows, <= step)
    items: list[str]  # [n] item ids
    times: np.ndarray  # [n] datetime64[s]
    weights: np.ndarray  # [L, H, n] attention of the query over the window, per layer and head (rows sum to 1)
    rollout: np.ndarray  # [n] rolled-out attention of the query over the window (sums to 1)
    event_categories: np.ndarray  # [n, C] category weights of each event's item (rows sum to 1 or are 0)
    categories: list[str]  # [C]

    def values(self, source: Source = "rollout") -> np.ndarray:
        """[n] weights: "rollout", "mean" (over layers and heads) or (layer, head)."""
        if source == "rollout":
            return self.rollout
        if source == "mean":
            return self.weights.mean(axis=(0, 1))
        if isinstance(source, tuple) and len(source) == 2:
            layer, head = source
            L, H, _ = self.weights.shape
            if not (0 <= layer < L and 0 <= head < H):
                raise UserInputError(f"There is no layer {layer}, head {head}; the model has {L} layers of {H} heads.")
            return self.weights[layer, head]
        raise UserInputError("The attention source must be 'rollout', 'mean' or a (layer, head) pair.")

    def by_category(self, source: Source = "rollout") -> pd.DataFrame:
        """Attention summed by category (an item's weight split equally over its categories); columns category,
        weight, events; largest first. Items without a category count under "(no category)"."""
        v = self.values(source)
        cat = v @ self.event_categories  # [C]
        n_events = (self.event_categories > 0).sum(axis=0)
        rest = self.event_categories.sum(axis=1) == 0
        names = list(self.categories)
        weights, counts = list(cat), list(n_events)
        if rest.any():
            names.append(NO_CATEGORY)
            weights.append(float(v[rest].sum()))
            counts.append(int(rest.sum()))
        df = pd.DataFrame({"category": names, "weight": np.asarray(weights, float), "events": np.asarray(counts, int)})
        return df[df["events"] > 0].sort_values(["weight", "category"], ascending=[False, True]).reset_index(drop=True)

    def by_time(self, period: Literal["day", "week", "month"] = "week", source: Source = "rollout") -> pd.DataFrame:
        """Attention summed by calendar window (UTC; weeks start on Monday); columns period, weight, events,
        first_step, last_step (the history steps the window spans); oldest first."""
        if period not in ("day", "week", "month"):
            raise UserInputError(f"Unknown time window {period!r}; expected day, week or month.")
        v = self.values(source)
        df = pd.DataFrame({"period": period_start(self.times, period), "weight": v, "step": self.steps})
        g = df.groupby("period", sort=True)
        return pd.DataFrame(
            {
                "period": g.size().index.to_numpy(),
                "weight": g["weight"].sum().to_numpy(),
                "events": g.size().to_numpy(),
                "first_step": g["step"].min().to_numpy(),
                "last_step": g["step"].max().to_numpy(),
            }
        )

    def frame(self) -> pd.DataFrame:
        """Every weight in long form: layer, head, position, step, time, item, weight."""
        L, H, n = self.weights.shape
        return pd.DataFrame(
            {
                "layer": np.repeat(np.arange(L), H * n),
                "head": np.tile(np.repeat(np.arange(H), n), L),
                "position": np.tile(np.arange(n), L * H),
                "step": np.tile(self.steps, L * H),
                "time": np.tile(self.times, L * H),
                "item": np.tile(np.asarray(self.items, dtype=object), L * H),
                "weight": self.weights.reshape(-1),
            }
        )


class AttentionAnalyzer:
    """Attention at a chosen step of a user's history, for one model (built once, called per user)."""

    def __init__(self, loaded: LoadedModel):
        if not supports(loaded.scorer, "attention"):
            raise UserInputError(f"Attention is not available for this model (a {loaded.kind} model has no weights to show).")
        self.loaded = loaded
        self.categories = list(loaded.vocab.categories)
        self._w = loaded.vocab.category_weights().numpy().astype(np.float64)  # [I+1, C]

    def at_step(self, history: History, step: int | None = None) -> StepAttention:
        """Attention of the query at `step` (default the last) over the latest `max_len` known events up to it.

        The query is the model's read-out position for the step: the last event at or before it whose item the
        model knows (the masking rule of `core.model`).
        """
        n = len(history)
        if n == 0:
            raise UserInputError("This history has no events, so there is no attention to show.")
        step = n - 1 if step is None else int(step)
        if not 0 <= step < n:
            raise UserInputError(f"Step {step} is out of range; this history has steps 0 to {n - 1}.")
        L = self.loaded.config.max_len
        pos = np.flatnonzero(history.items[: step + 1] > 0)[-L:]  # history steps in the window
        if len(pos) == 0:
            raise UserInputError(f"The model knows none of the items up to step {step}, so it attends to nothing.")
        window = History(*(getattr(history, f)[pos] for f in ("items", "gaps", "event_types", "context", "ts")))
        model = module_of(self.loaded.scorer)
        batch = make_batch([window], L, n_context=window.context.shape[1]).to(self.loaded.device)
        with torch.inference_mode():
            enc = model.encode(batch, return_attention=True)
        att = torch.stack([a[0] for a in enc.attention]).double().cpu()  # [L,H,T,T], T = len(pos)
        return StepAttention(
            step=step,
            steps=pos,
            items=[self.loaded.vocab.item_id(i) for i in window.items],
            times=window.ts.astype("datetime64[s]"),
            weights=att[:, :, -1, :].numpy(),
            rollout=attention_rollout(att)[-1],
            event_categories=self._w[window.items],
            categories=self.categories,
        )

    def user(self, con: duckdb.DuckDBPyConnection, user_id: str, step: int | None = None) -> StepAttention:
        """Attention at `step` of a user's history (steps count every event, as in `user_history`)."""
        if user_history(con, str(user_id), limit=1).empty:
            raise NotFoundError(f"User {user_id!r} has no events, so there is no attention to show.")
        seqs = load_sequences(con, self.loaded.vocab, users=[str(user_id)])
        return self.at_step(seqs.history(0), step)
