"""Friends' interest-state timelines and the per-step lookup "each friend's last state strictly before t".

Timelines are computed with the model's own encoder (without the social branch, so a state never depends on
anyone else's) in fixed, half-overlapping windows: a user's events are cut at multiples of L/2 (L = the model's
window); the state after event j is read from the window that starts L/2 before j's block (the first block from
the window starting at 0). The window that serves event j therefore depends only on events <= j, so a friend's
later events never change an earlier state (causality), and every state sees at least L/2 events of context
when the history has them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from core.evaluate.windows import window_batch
from core.friends.graph import FriendGraph
from core.model import InterestModel
from core.model.social import SocialInputs
from core.sequences import Sequences

__all__ = ["StateTimelines", "compute_timelines", "social_inputs", "RECENT_ITEMS"]

RECENT_ITEMS = 10  # friends' latest items (strictly before a step) the copy path reads, per friend


@dataclass
class StateTimelines:
    """States after every event of every user, in `Sequences`' CSR order."""

    states: torch.Tensor  # [N,D] float, state after event n (no gradient)
    keys: np.ndarray  # [N] int64 sortable (row, time) key: row * 2^33 + (ts - t0)
    offsets: np.ndarray  # [U+1] int64
    t0: int  # the earliest event time (seconds)
    items: np.ndarray | None = None  # [N] int64 the events' items (model indices), for friends' recent items

    def key(self, rows: np.ndarray, ts: np.ndarray) -> np.ndarray:
        return np.asarray(rows, np.int64) * (1 << 33) + (np.asarray(ts, np.int64) - self.t0).clip(0, (1 << 33) - 1)


@torch.no_grad()
def compute_timelines(model: InterestModel, seqs: Sequences, batch_size: int = 256, device="cpu") -> StateTimelines:
    """Every event's state from the model's own encoder (eval mode, no social branch)."""
    L = model.config.max_len
    half = max(1, L // 2)
    N, U = len(seqs.items), seqs.n_users
    D = model.config.d_model
    out = torch.zeros(N, D)
    a, b = seqs.offsets[:-1], seqs.offsets[1:]
    n_blocks = -(-(b - a) // half)  # per user
    owner = np.repeat(np.arange(U), n_blocks)
    blk = np.arange(int(n_blocks.sum())) - np.repeat(np.cumsum(n_blocks) - n_blocks, n_blocks)
    start = a[owner] + blk * half  # block start (absolute)
    stop = np.minimum(start + half, b[owner])  # block end (exclusive)
    lo = np.maximum(a[owner], start - half)  # window start: half a window before the block (or the history's start)
    was = model.training
    model.eval()
    try:
        for s in range(0, len(start), batch_size):
            sl = slice(s, s + batch_size)
            T = int((stop[sl] - lo[sl]).max())
            batch = window_batch(seqs, lo[sl], stop[sl], T).to(device)
            enc = model.encode(batch)
            states = model.readout(enc, batch, per_step=True).float().cpu()  # [B,T,D]
            for r in range(len(start[sl])):
                n = int(stop[sl][r] - start[sl][r])
                out[start[sl][r] : stop[sl][r]] = states[r, T - n :]
    finally:
        model.train(was)
    t0 = int(seqs.ts.min()) if N else 0
    rows = np.repeat(np.arange(U), b - a)
    tl = StateTimelines(out, np.zeros(0, np.int64), seqs.offsets, t0, seqs.items)
    tl.keys = tl.key(rows, seqs.ts)
    return tl


def social_inputs(tl: StateTimelines, graph: FriendGraph, rows: np.ndarray, ts: np.ndarray, real: np.ndarray) -> SocialInputs:
    """Friends' states for a batch: rows [B] (users), ts [B,T] step times, real [B,T] which slots are events.

    Friend k's state at step t is its state after its last event with time < ts[b,t] (strictly before); with the
    timelines' items, `recent` [B,T,K,RECENT_ITEMS] holds that event's item and the ones before it (latest first).
    """
    f, fh = graph.padded(rows)  # [B,K] friend rows, [B,K] present
    B, T = ts.shape
    K = f.shape[1]
    q = tl.key(np.broadcast_to(np.where(fh, f, 0)[:, None, :], (B, T, K)), np.broadcast_to(ts[:, :, None], (B, T, K)))
    idx = np.searchsorted(tl.keys, q.ravel(), side="left").reshape(B, T, K) - 1  # last event strictly before
    fsafe = np.where(fh, f, 0)
    start = tl.offsets[fsafe][:, None, :]  # [B,1,K]
    ok = (idx >= start) & fh[:, None, :] & real[:, :, None]  # [B,T,K]
    idx = np.where(ok, idx, 0)
    states = tl.states[torch.from_numpy(idx.ravel())].view(B, T, K, -1) * torch.from_numpy(ok).unsqueeze(-1)
    recent = None
    if tl.items is not None:
        back = idx[..., None] - np.arange(RECENT_ITEMS)  # [B,T,K,M] the last event and the ones before it
        live = ok[..., None] & (back >= start[..., None])
        recent = torch.from_numpy(np.where(live, tl.items[np.where(live, back, 0)], 0))
    return SocialInputs(states, torch.from_numpy(ok), torch.from_numpy(np.where(fh, f, -1)), recent)
