"""The social branch: at each step, attention over the user's friends' interest states, and a learned gate that
gives the social share of the step's interest.

Shapes: B batch, T steps, K friends (the cap), D hidden.

For step t the friends' states are each friend's state after their last event strictly before the time of step t
(`core.friends.states`); a friend with no event before then is absent. A step with no present friend gets social
share 0 and its interest is exactly the model's own state, so a user without friends (or a database without
edges) is scored exactly as without the branch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn as nn

__all__ = ["SocialInputs", "SocialBranch", "attach_branch", "has_branch_weights"]


@dataclass
class SocialInputs:
    """The friends' states each step of a batch may attend to (carried by `Batch.social`)."""

    states: torch.Tensor  # [B,T,K,D] friend k's state as of strictly before step t (zeros when absent)
    present: torch.Tensor  # [B,T,K] bool, friend k has a state before step t (and is not removed)
    friends: torch.Tensor  # [B,K] long, the friends' rows in `Sequences` (-1 = no friend in this slot)

    def to(self, device) -> SocialInputs:
        return SocialInputs(self.states.to(device), self.present.to(device), self.friends.to(device))

    def __getitem__(self, rows) -> SocialInputs:
        return SocialInputs(self.states[rows], self.present[rows], self.friends[rows])

    def repeat_interleave(self, n: int, dim: int = 0) -> SocialInputs:
        return SocialInputs(*(x.repeat_interleave(n, dim=dim) for x in (self.states, self.present, self.friends)))

    def without(self, drop: torch.Tensor) -> SocialInputs:
        """The same inputs with friends removed: drop [B,K] bool (True = removed from the social set)."""
        return replace(self, present=self.present & ~drop[:, None, :])


class SocialBranch(nn.Module):
    """Attention from each step's own state over its friends' states, fused through a second gate."""

    def __init__(self, d_model: int):
        super().__init__()
        D = d_model
        self.query = nn.Linear(D, D)
        self.key = nn.Linear(D, D)
        self.value = nn.Linear(D, D)
        self.gate = nn.Linear(2 * D, 1)
        # How much the plain similarity of the user's state and a friend's state counts in the attention: friends
        # whose interest is like the user's current one are attended first, before anything is learned.
        self.similarity = nn.Parameter(torch.ones(()))
        for m in (self.query, self.key, self.gate):
            nn.init.normal_(m.weight, std=0.02)
            nn.init.zeros_(m.bias)
        # values start as the friends' states themselves (same space as the user's), not as noise
        nn.init.eye_(self.value.weight)
        nn.init.zeros_(self.value.bias)
        nn.init.constant_(self.gate.bias, -1.0)  # start mostly on the user's own history

    def forward(self, own: torch.Tensor, social: SocialInputs) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Fused states [B,T,D], social share [B,T] in [0,1) (0 where no friend is present) and attention [B,T,K].

        own: [B,T,D] the model's gated interest per step.
        """
        q = self.query(own)  # [B,T,D]
        k = self.key(social.states)  # [B,T,K,D]
        v = self.value(social.states)  # [B,T,K,D]
        sim = (social.states @ own.unsqueeze(-1)).squeeze(-1)  # [B,T,K]
        logits = ((k @ q.unsqueeze(-1)).squeeze(-1) + self.similarity * sim) / math.sqrt(q.size(-1))  # [B,T,K]
        present = social.present
        any_friend = present.any(-1)  # [B,T]
        logits = logits.masked_fill(~present, float("-inf"))
        att = torch.where(any_friend.unsqueeze(-1), logits, torch.zeros_like(logits)).softmax(-1)  # [B,T,K]
        att = att * present  # rows without friends: all zero
        ctx = (att.unsqueeze(-1) * v).sum(-2)  # [B,T,D]
        share = torch.sigmoid(self.gate(torch.cat([own, ctx], dim=-1))).squeeze(-1) * any_friend  # [B,T]
        fused = (1 - share.unsqueeze(-1)) * own + share.unsqueeze(-1) * ctx  # [B,T,D]
        return fused, share, att


def attach_branch(model: nn.Module) -> nn.Module:
    """Give an `InterestModel` a fresh social branch (registered last, so its other weights are untouched)."""
    model.social = SocialBranch(model.config.d_model)
    return model


def has_branch_weights(state: dict) -> bool:
    """Whether a saved state dict holds a social branch (a model trained with friends)."""
    return any(k.startswith("social.") for k in state)
