"""The social branch: at each step, attention over the user's friends' interest states, and a learned gate that
gives the social share of the step's interest.

Shapes: B batch, T steps, K friends (the cap), D hidden.

For step t the friends' states are each friend's state after their last event strictly before the time of step t
(`core.friends.states`); a friend with no event before then is absent. A step with no present friend gets social
share 0 and its interest is exactly the model's own state, so a user without friends (or a database without
edges) is scored exactly as without the branch.

Copy path (`SocialBranch(copy=True)`, the default for new branches): friends pass on the very items they just had,
which a mix of interest states carries only blurred. The branch also gives each step a copy share g (a third learned
gate) and the next-item distribution becomes a mixture

    p(i) = (1 - g) softmax(logits)(i) + g * sum_k att_k * (share of item i among friend k's last M items)

over the same friends and the same attention, strictly before the step's time. Scores are then log p (rows where
g = 0, e.g. no friend present, keep the plain logits bit for bit). On the planted-influence log the mixture of the
no-social model with the planted influencer's recent items gains +21 % NDCG@10 (`bench/social.py --section oracle`),
a mix of states does not reach it.

Copy within categories (`SocialBranch(by_category=True)`): the plain mixture above moves probability *across*
categories towards whatever the attended friends had lately, by the share g that is best for *items*, so its
category marginal, what a trajectory reads, is pulled to the friends' categories (on the planted log: next-category
TV at influenced steps 0.363 against 0.327 without friends, `bench/social.py`). Within categories, with W the items'
category weights [I+1,C] (`InterestModel.item_cats`), P = softmax(logits) W and Q = q W the two distributions'
category masses, the mixture keeps the softmax's category masses and only moves mass inside each category:

    p(i) = sum_c W_ic P_c [ (1 - g_c) softmax(logits)(i) / P_c + g_c q(i) / Q_c ],   g_c = g [Q_c > 0]

that is, inside every category c a friend had lately a share g of c's mass goes to the friends' items of c (in
proportion to q); categories no friend had, and items without a category, keep the softmax. It sums to 1, and for
items with one category each its category marginal is exactly P (friends change which items, not which categories;
the fused state's softmax carries the category shift), so the item loss -log p(y) = -log P_c(y) - log p(y | c(y))
trains the category forecast on the categories themselves. A variant that also moved the category masses towards
the friends' (a learned category share h: (1 - h) P + h Q) was worse on validation and on TV (docs/social.md).
Chosen on validation (docs/social.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["CATEGORY_COPY", "SocialInputs", "SocialBranch", "attach_branch", "has_branch_weights", "has_copy_weights",
           "has_category_copy", "copy_categories", "copy_log_probs", "copy_target_terms", "target_category_masses",
           "copy_loss"]

# whether a new branch's copy path mixes within categories (module docstring): chosen on validation NDCG@10, mean
# of two graphs x two seeds 0.4880 against 0.4834 across categories (bench/social.py, docs/social.md)
CATEGORY_COPY = True


@dataclass
class SocialInputs:
    """The friends' states each step of a batch may attend to (carried by `Batch.social`)."""

    states: torch.Tensor  # [B,T,K,D] friend k's state as of strictly before step t (zeros when absent)
    present: torch.Tensor  # [B,T,K] bool, friend k has a state before step t (and is not removed)
    friends: torch.Tensor  # [B,K] long, the friends' rows in `Sequences` (-1 = no friend in this slot)
    # [B,T,K,M] long: friend k's last M items strictly before step t, latest first (0 = none); the copy path's input
    recent: torch.Tensor | None = None

    def _map(self, fn) -> SocialInputs:
        return SocialInputs(fn(self.states), fn(self.present), fn(self.friends),
                            None if self.recent is None else fn(self.recent))  # fmt: skip

    def to(self, device) -> SocialInputs:
        return self._map(lambda x: x.to(device))

    def __getitem__(self, rows) -> SocialInputs:
        return self._map(lambda x: x[rows])

    def repeat_interleave(self, n: int, dim: int = 0) -> SocialInputs:
        return self._map(lambda x: x.repeat_interleave(n, dim=dim))

    def at_step(self, t: int) -> SocialInputs:
        """The same inputs with every step reading step `t`'s friends (states, presence, recent items): whichever
        step a prediction is read out at, friends are as of strictly before step `t`'s time. An explanation of
        step t's prediction needs it (`core.social.evidence`): with the later events removed, the model reads its
        state out at an earlier step, whose own friends' inputs are older."""
        def at(x: torch.Tensor) -> torch.Tensor:
            return x[:, t : t + 1 if t != -1 else None].expand_as(x)

        recent = None if self.recent is None else at(self.recent)
        return SocialInputs(at(self.states), at(self.present), self.friends, recent)

    def without(self, drop: torch.Tensor) -> SocialInputs:
        """The same inputs with friends removed: drop [B,K] bool (True = removed from the social set)."""
        return replace(self, present=self.present & ~drop[:, None, :])


class SocialBranch(nn.Module):
    """Attention from each step's own state over its friends' states, fused through a second gate."""

    def __init__(self, d_model: int, copy: bool = True, by_category: bool = False):
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
        # the copy share: how much of the next item comes straight from friends' recent items (module docstring)
        # its inputs: the user's state, the friends' context, and how much the attended friends' recent items
        # overlap the user's own latest items (the cue that the user is following someone right now)
        self.copy: nn.Linear | None = nn.Linear(2 * D + 1, 1) if copy else None
        # with the copy path, the attention also counts that overlap (log1p of the shared items, weight starting
        # at 1): a friend whose latest items the user just had is attended first
        self.overlap: nn.Parameter | None = nn.Parameter(torch.ones(())) if copy else None
        if self.copy is not None:
            nn.init.normal_(self.copy.weight, std=0.02)
            nn.init.constant_(self.copy.bias, -2.0)  # starts at ~0.12: mostly the model's own scores
        # copy within categories (module docstring); a buffer, so a checkpoint records which mixture it was trained
        # with (`has_category_copy`) and older checkpoints load as the plain mixture
        if copy and by_category:
            self.register_buffer("copy_within", torch.ones(()))
        self.by_category = bool(copy and by_category)


    def forward(self, own: torch.Tensor, social: SocialInputs, items: torch.Tensor | None = None):
        """Fused states [B,T,D], social share [B,T] in [0,1) (0 where no friend is present), attention [B,T,K] and
        the copy share [B,T] in [0,1) (0 where no friend is present; None without the copy path or its input).

        own: [B,T,D] the model's gated interest per step; items: [B,T] the user's present items (0 = absent or
        padding), for the copy path's overlap cue.
        """
        copying = self.copy is not None and social.recent is not None
        overlap = _overlap(social.recent, items) if copying else None  # [B,T,K] log1p(shared items)
        q = self.query(own)  # [B,T,D]
        k = self.key(social.states)  # [B,T,K,D]
        v = self.value(social.states)  # [B,T,K,D]
        sim = (social.states @ own.unsqueeze(-1)).squeeze(-1)  # [B,T,K]
        logits = ((k @ q.unsqueeze(-1)).squeeze(-1) + self.similarity * sim) / math.sqrt(q.size(-1))  # [B,T,K]
        if overlap is not None:
            logits = logits + self.overlap * overlap
        present = social.present
        any_friend = present.any(-1)  # [B,T]
        logits = logits.masked_fill(~present, float("-inf"))
        att = torch.where(any_friend.unsqueeze(-1), logits, torch.zeros_like(logits)).softmax(-1)  # [B,T,K]
        att = att * present  # rows without friends: all zero
        ctx = (att.unsqueeze(-1) * v).sum(-2)  # [B,T,D]
        share = torch.sigmoid(self.gate(torch.cat([own, ctx], dim=-1))).squeeze(-1) * any_friend  # [B,T]
        fused = (1 - share.unsqueeze(-1)) * own + share.unsqueeze(-1) * ctx  # [B,T,D]
        copy = None
        if overlap is not None:
            cue = (att * overlap).sum(-1, keepdim=True)  # [B,T,1]
            copy = torch.sigmoid(self.copy(torch.cat([own, ctx, cue], dim=-1))).squeeze(-1) * any_friend  # [B,T]
        return fused, share, att, copy


def _overlap(recent: torch.Tensor, items: torch.Tensor | None) -> torch.Tensor:
    """[B,T,K] log1p of how many of friend k's recent items [B,T,K,M] are among the user's own present items in the
    window's last M slots up to step t (items [B,T], 0 = absent or padding); zeros without `items`."""
    B, T, K, M = recent.shape
    if items is None:
        return torch.zeros(B, T, K, device=recent.device)
    own = F.pad(items, (M - 1, 0)).unfold(1, M, 1)  # [B,T,M] items t-M+1 .. t
    shared = (recent.unsqueeze(-1) == own[:, :, None, None, :]).any(-1) & (recent > 0)  # [B,T,K,M]
    return torch.log1p(shared.sum(-1).float())


def attach_branch(model: nn.Module, copy: bool = True, by_category: bool = False) -> nn.Module:
    """Give an `InterestModel` a fresh social branch (registered last, so its other weights are untouched); `copy`:
    with the copy path, `by_category`: its mixture within categories (module docstring)."""
    model.social = SocialBranch(model.config.d_model, copy=copy, by_category=by_category)
    return model


def has_category_copy(state: dict) -> bool:
    """Whether a saved state dict's copy path mixes within categories."""
    return "social.copy_within" in state


def copy_categories(model: nn.Module) -> torch.Tensor | None:
    """The item category weights [I+1,C] the copy mixture keeps (the model's `item_cats`), or None for the plain
    mixture (a branch without `by_category`, or a model without categories)."""
    social = getattr(model, "social", None)
    cats = getattr(model, "item_cats", None)
    if social is None or not social.by_category or cats is None or cats.numel() == 0:
        return None
    return cats


def has_copy_weights(state: dict) -> bool:
    """Whether a saved state dict's social branch has the copy path."""
    return any(k.startswith("social.copy.") for k in state)


def _copy_weights(att: torch.Tensor, recent: torch.Tensor) -> torch.Tensor:
    """[N,K,M] the copy probability of each (friend, recent item) slot: att_k split equally over k's present items."""
    real = (recent > 0).to(att.dtype)  # [N,K,M]
    return att.unsqueeze(-1) * real / real.sum(-1, keepdim=True).clamp(min=1)


def _category_coefficients(P: torch.Tensor, Q: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per category, what the mixture within categories multiplies the softmax and the copy distribution by:
    (ca, cb) [N,C] with p(i) = p_soft(i) (1 - sum_c W_ic g_c) + q(i) sum_c W_ic cb_c, ca_c = g_c = g [Q_c > 0] and
    cb_c = g_c P_c / Q_c (module docstring). P, Q [N,C]: the softmax's and the copy distribution's category masses;
    g [N,1] the copy share."""
    has = Q > 0
    return g * has, torch.where(has, g * P / Q.clamp(min=1e-30), torch.zeros_like(Q))


def copy_log_probs(logits: torch.Tensor, g: torch.Tensor, att: torch.Tensor, recent: torch.Tensor,
                   cats: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
    """log of the copy mixture over the catalogue [N,I+1] from logits [N,I+1], copy share g [N], attention [N,K]
    and friends' recent items [N,K,M]; with `cats` [I+1,C] (`copy_categories`) the mixture within categories.
    Rows with g = 0 are the logits unchanged."""
    w = _copy_weights(att.to(logits.dtype), recent)
    q = torch.zeros_like(logits).scatter_add_(1, recent.flatten(1), w.flatten(1))  # [N,I+1]
    q[:, 0] = 0.0
    g = g.to(logits.dtype).unsqueeze(-1)
    logp = logits.log_softmax(-1)
    if cats is None:
        keep, take = torch.log1p(-g), torch.log(g.clamp(min=1e-12) * q.clamp(min=1e-30))
    else:
        W = cats.to(logits.dtype)
        ca, cb = _category_coefficients(logp.exp() @ W, q @ W, g)  # [N,C] each
        keep = torch.log1p(-(ca @ W.t()).clamp(max=1 - 1e-7))  # [N,I+1]
        take = torch.log((q * (cb @ W.t())).clamp(min=1e-30))
    mixed = torch.logaddexp(keep + logp, take)
    mixed[:, 0] = float("-inf")
    return torch.where(g > 0, mixed, logits)


def copy_target_terms(g: torch.Tensor, att: torch.Tensor, recent: torch.Tensor, y: torch.Tensor,
                      cats: torch.Tensor | None = None, P: torch.Tensor | None = None):  # fmt: skip
    """(log a_y, log(q_y b_y)) per target [N] for targets y [N], the mixture being p(y) = p_soft(y) a_y + q_y b_y
    (the loss's two terms, finite everywhere so gradients stay finite; the caller keeps the plain loss where
    g = 0). Plain mixture: a = 1 - g, b = g; within categories (`cats` [I+1,C], P [N,C] the softmax's category
    masses): `_category_coefficients`."""
    w = _copy_weights(att, recent)  # [N,K,M]
    q_y = (w * (recent == y[:, None, None])).sum((-2, -1))  # [N]
    if cats is None:
        return torch.log1p(-g), torch.log(g.clamp(min=1e-12) * q_y.clamp(min=1e-30))
    W = cats.to(w.dtype)
    Q = (w.unsqueeze(-1) * W[recent]).sum((1, 2))  # [N,C] the copy distribution's category masses
    ca, cb = _category_coefficients(P.to(w.dtype), Q, g[:, None])
    Wy = W[y]  # [N,C]
    return torch.log1p(-(Wy * ca).sum(-1).clamp(max=1 - 1e-7)), torch.log((q_y * (Wy * cb).sum(-1)).clamp(min=1e-30))


def target_category_masses(logp: torch.Tensor, y: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """[N,C] the softmax's category masses P_c = sum_i W_ic exp(logp_i) at the categories of each row's target
    (W_yc > 0), 0 at the other categories, from log-probabilities logp [N,I+1] (item 0, padding, at -inf), targets
    y [N] and category weights W [I+1,C]. `copy_target_terms` reads P only at the target's categories, so only the
    items of those categories are read (N x their count) instead of the whole [N,I+1] x [I+1,C] product, which
    doubled a training step on a 20,000-item catalogue (bench/social_scale.py, docs/social.md)."""
    C = W.shape[1]
    rows, cs = W[y].nonzero(as_tuple=True)  # the (row, category) pairs needed
    it, ct = W.nonzero(as_tuple=True)  # every (item, category) pair of the catalogue
    order = torch.argsort(ct, stable=True)
    it, ct = it[order], ct[order]
    counts = torch.bincount(ct, minlength=C)
    pos = torch.arange(len(ct), device=W.device) - (counts.cumsum(0) - counts)[ct]  # place inside its category
    L = int(counts.max()) if len(ct) else 0
    idx = torch.zeros(C, L, dtype=torch.long, device=W.device)  # category c's items, padded with item 0
    wts = torch.zeros(C, L, dtype=logp.dtype, device=W.device)  # and their weights (0 on the padding)
    idx[ct, pos] = it
    wts[ct, pos] = W[it, ct].to(logp.dtype)
    mass = (logp[rows[:, None], idx[cs]].exp() * wts[cs]).sum(-1)  # [pairs]
    return torch.zeros(len(y), C, dtype=logp.dtype, device=logp.device).index_put((rows, cs), mass)


def copy_loss(model: nn.Module, enc, batch, sel: torch.Tensor, h: torch.Tensor, y: torch.Tensor, items: torch.Tensor,
              n_negatives: int | None, ro: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """The next-item loss of a social model with the copy path (`InterestModel.loss` calls it): −log of the mixture
    probability of each target. h [N+B',D] and y [N+B'] as in the plain loss: the N step rows (`sel`) first, then
    the first-event rows, which have no friends, so g = 0 there. The repeat term (`ro`, rows as h) is in the logits
    before the mixture, as `InterestModel.scores` does."""
    full = n_negatives is None or n_negatives >= model.sizes.n_items
    drawn: list[torch.Tensor] = []
    logits = model._target_logits(h, y, items, None if full else n_negatives, ro, drawn)  # [N+B',I+1] or [N+B',1+S]
    logp = logits.float().log_softmax(-1)
    lp_y = logp.gather(1, (y if full else torch.zeros_like(y))[:, None])[:, 0]
    n = int(sel.sum())
    g = enc.social_copy[sel].float()  # [N]
    cats = copy_categories(model)
    P = None
    if cats is not None:  # the softmax's category masses (sampled: over the drawn items, as its own probability)
        W = cats.float()
        if full:  # at the targets' categories only: all copy_target_terms reads
            P = target_category_masses(logp[:n], y[:n], W)
        else:  # the sampled softmax's probabilities over [target, drawn items] and those items' categories
            P = logp[:n, :1].exp() * W[y[:n]] + logp[:n, 1:].exp() @ W[drawn[0]]
    keep, take = copy_target_terms(g, enc.social_attention[sel].float(), batch.social.recent[sel], y[:n], cats, P)
    mixed = torch.where(g > 0, torch.logaddexp(keep + lp_y[:n], take), lp_y[:n])
    nll = -torch.cat([mixed, lp_y[n:]])  # [N+B']
    ls = model.config.label_smoothing
    if ls > 0 and full:  # smoothing over the real items, as the plain loss
        nll = (1 - ls) * nll - ls * logp[:, 1:].mean(-1)
    return nll.mean()


def has_branch_weights(state: dict) -> bool:
    """Whether a saved state dict holds a social branch (a model trained with friends)."""
    return any(k.startswith("social.") for k in state)
