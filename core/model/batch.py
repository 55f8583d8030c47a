"""The model's input: a left-padded batch of history windows.

Letters used in shape comments across core/model: B batch, T steps, D hidden, I items (+1 for padding),
H heads, C categories, K context columns, G feature groups.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from core.model.social import SocialInputs

__all__ = ["FEATURE_GROUPS", "Batch", "gap_bucket", "N_GAP_BUCKETS"]

# Feature groups that can be switched to "unknown" one by one (explanations attribute to them).
FEATURE_GROUPS: tuple[str, ...] = ("time_gap", "event_type", "category", "context")

# Log-spaced time-gap buckets: bucket 0 = first event / unknown, 1 = gap under 1 s, then one bucket per
# doubling of the gap, capped at the last (about 2^30 s, i.e. decades).
N_GAP_BUCKETS = 33


def gap_bucket(gaps_seconds: np.ndarray | torch.Tensor, first: np.ndarray | torch.Tensor | None = None):
    """Map time gaps (seconds, >= 0) to log2-spaced bucket ids in [1, N_GAP_BUCKETS - 1].

    Positions flagged in `first` (the first event of a history, which has no previous event) get bucket 0.
    Works on numpy arrays and torch tensors alike.
    """
    is_torch = isinstance(gaps_seconds, torch.Tensor)
    g = gaps_seconds.double() if is_torch else np.asarray(gaps_seconds, dtype=np.float64)
    lib = torch if is_torch else np
    g = lib.clip(g, 0, None) if not is_torch else g.clamp(min=0)
    b = lib.floor(lib.log2(g + 1.0)) + 1
    b = b.clamp(1, N_GAP_BUCKETS - 1).long() if is_torch else np.clip(b, 1, N_GAP_BUCKETS - 1).astype(np.int64)
    if first is not None:
        b = lib.where(first if is_torch else np.asarray(first, bool), 0, b)
    return b


@dataclass
class Batch:
    """A left-padded batch of history windows (the latest event of each history sits at T-1).

    `mask` marks present events: padding and events made absent for explanations are False. An absent event is
    attended by nothing and pooled by nothing (see `InterestModel.encode`). `group_present[b, g]` False replaces
    feature group FEATURE_GROUPS[g] of every step of row b with the learned "unknown" embedding.
    """

    items: torch.Tensor  # [B,T] long, 0 = padding
    gaps: torch.Tensor  # [B,T] long, gap bucket to the previous event, 0 = first/unknown
    event_types: torch.Tensor  # [B,T] long, 0 = unknown
    context: torch.Tensor  # [B,T,K] long, 0 = unknown (K may be 0)
    mask: torch.Tensor  # [B,T] bool, True = event present
    group_present: torch.Tensor | None = None  # [B,G] bool, None = all groups present
    social: SocialInputs | None = None  # friends' states per step (core.social); None = no social input
    ts: torch.Tensor | None = None  # [B,T] long unix seconds (0 = padding); for external models that read times

    def to(self, device: torch.device | str) -> Batch:
        return replace(self, **{f.name: getattr(self, f.name).to(device) for f in fields(self) if getattr(self, f.name) is not None})

    @property
    def size(self) -> int:
        return int(self.items.shape[0])

    def index(self, rows: torch.Tensor | slice) -> Batch:
        """A sub-batch of the given rows."""
        return replace(self, **{f.name: getattr(self, f.name)[rows] for f in fields(self) if getattr(self, f.name) is not None})

    def repeat(self, n: int) -> Batch:
        """Each row repeated n times (row-major), e.g. to evaluate many masks of one history at once."""
        def rep(x: torch.Tensor) -> torch.Tensor:
            return x.repeat_interleave(n, dim=0)

        return replace(self, **{f.name: rep(getattr(self, f.name)) for f in fields(self) if getattr(self, f.name) is not None})
