"""Evidence of social influence for one user: the social share of every step, the friends attended to most, Shapley
values with each friend as a player beside the history events, and a deletion curve over friends.

Removing a friend means taking them out of the social set (`SocialInputs.without`): the branch attends over the
remaining friends, and with none left the step is the model's own state. Removing an event follows the model's
absence rule (`Batch.mask` False).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import numpy as np
import torch

from core.checkpoint import LoadedModel
from core.errors import NotFoundError, SettingError, UserInputError
from core.friends.context import DEFAULT_K, SocialContext, user_context
from core.model import Batch, InterestModel
from core.social.fit import social_batch

__all__ = [
    "SocialEvidence", "SocialShapley", "FriendExplanation", "user_social_evidence", "social_shapley",
    "friend_deletion_curve", "explain_friends", "FRIEND_PERMUTATIONS",
]


@dataclass
class SocialEvidence:
    """Per step of the user's history (n events, canonical order) and per friend."""

    user_id: str
    times: np.ndarray  # [n] int64 unix seconds of the steps
    social_share: np.ndarray  # [n] share of the step's interest that came from friends (0 = none present)
    influencers: list[list[dict]]  # [n] the friends attended to most at each step: {"user_id", "weight"}, weight > 0
    friends: list[str]  # [K] the friends the branch may attend to (the cap rule's order)
    influence: np.ndarray  # [K] mean over steps of share x attention: how much of the user's interest each supplied
    batch: Batch | None = field(default=None, repr=False)  # the last window with its social inputs (for SHAP)

    def to_dict(self) -> dict:
        return {"social_share": np.round(self.social_share, 6).tolist(), "influencers": self.influencers}


@torch.no_grad()
def user_social_evidence(
    con: duckdb.DuckDBPyConnection, loaded: LoadedModel, user_id: str, top: int = 3, k: int = DEFAULT_K,
    context: tuple[SocialContext, int] | None = None,
) -> SocialEvidence:
    """Social share and influencers at every step of `user_id`'s history (the model must have the branch).

    Steps are read in the same fixed half-overlapping windows as friends' timelines, so step t's values depend
    only on the user's events up to t and on friends' events strictly before t's time.

    `context`: the user's friend context and row (`core.friends.context.user_context` for this user, model and
    database) when the caller built it already, e.g. for the explorer's view of the same user: it is not built
    again. Without it, it is built here.
    """
    model = loaded.model
    if model.social is None:
        raise SettingError("This model was trained without the social branch (train it with {social} on).", "social")
    user_id = str(user_id)
    if context is None:
        try:
            context = user_context(con, model, loaded.vocab, user_id, k)
        except NotFoundError:
            raise NotFoundError(f"User {user_id!r} has no events, so there is no social evidence to show.") from None
    ctx, r = context
    seqs, graph, tl = ctx.seqs, ctx.graph, ctx.timelines
    a, b = int(seqs.offsets[r]), int(seqs.offsets[r + 1])
    L = model.config.max_len
    half = max(1, L // 2)
    friends = graph.friends(r)
    share = np.zeros(b - a)
    att = np.zeros((b - a, len(friends)))
    batch = None
    for start in range(a, b, half):
        stop = min(start + half, b)
        lo = max(a, start - half)
        batch = social_batch(seqs, np.array([lo]), np.array([stop]), stop - lo, tl, graph)
        enc = model.encode(batch)
        n = stop - start
        share[start - a : stop - a] = enc.social_share[0, -n:].double().numpy()
        att[start - a : stop - a] = enc.social_attention[0, -n:, : len(friends)].double().numpy()
    names = [str(seqs.user_ids[f]) for f in friends]
    influencers = []
    for t in range(b - a):
        order = np.argsort(-att[t], kind="stable")[:top]
        influencers.append([{"user_id": names[j], "weight": round(float(att[t, j]), 6)} for j in order if att[t, j] > 0])
    influence = (share[:, None] * att).mean(0) if b > a else np.zeros(len(friends))
    if b - a > L:  # the SHAP window: the latest L events, friends as of each step
        batch = social_batch(seqs, np.array([b - L]), np.array([b]), L, tl, graph)
    return SocialEvidence(user_id, seqs.ts[a:b].copy(), share, influencers, names, influence, batch)


@dataclass
class SocialShapley:
    """Shapley values of the target's logit over the window's events and the user's friends."""

    events: np.ndarray  # [n] per present event of the window (oldest first)
    friends: np.ndarray  # [K] per friend slot (0 for empty slots)
    base: float  # the logit with nothing present (the empty-history state)
    full: float  # the logit with everything present
    additivity_error: float  # |sum(values) - (full - base)|; permutation sampling keeps it at float rounding


def _value(model: InterestModel, batch: Batch, target: int, ev_present: torch.Tensor, fr_present: torch.Tensor,
           log_prob: bool = False):  # fmt: skip
    """Target logits [N] for presence rows over the events [N,T] and the friend slots [N,K]; with `log_prob`, the
    log-probability of the target under the model's whole next-item distribution (`InterestModel.scores`: with
    the copy path, the mixture with the present friends' recent items), on one scale for every coalition.

    Every coalition explains the prediction of the window's last step, so friends are read as of that step's time
    (`SocialInputs.at_step`): without it, a coalition that lacks the latest events is read out at an earlier
    step and attends over that step's older friends' states and recent items, so a friend's worth was measured
    at a time the explained prediction never saw. The full and empty coalitions are unchanged."""
    N = ev_present.shape[0]
    rep = batch.repeat(N)
    rep.mask = batch.mask.repeat(N, 1) & ev_present
    rep.social = rep.social.at_step(-1).without(~fr_present)
    enc = model.encode(rep)
    if log_prob:
        return model.scores(enc, rep).double().log_softmax(-1)[:, target]
    state = model.readout(enc, rep)  # [N,D]
    return (state @ model.item_vectors()[target]).double()


@torch.no_grad()
def social_shapley(model: InterestModel, batch: Batch, target: int, permutations: int = 16, seed: int = 0,
                   chunk: int = 256, log_prob: bool = False) -> SocialShapley:  # fmt: skip
    """Permutation-sampling Shapley values (antithetic pairs) for one window (`batch` of one row with social
    inputs) and the target item index. Each permutation's marginal contributions sum to full - base exactly, so
    the values are additive for any number of permutations; the check is raised on, not assumed. The explained
    value is the target's logit from the fused state, or with `log_prob` its log-probability under the whole
    next-item distribution (`_value`)."""
    if batch.social is None or batch.size != 1:
        raise UserInputError("social_shapley needs one window with its friends' states (Batch.social).")
    events = np.flatnonzero(batch.mask[0].numpy())
    slots = np.flatnonzero(batch.social.friends[0].numpy() >= 0)
    n, K, T = len(events), batch.social.friends.shape[1], batch.items.shape[1]
    P = n + len(slots)
    rng = np.random.default_rng(seed)
    perms = []
    for _ in range(max(1, permutations // 2)):
        p = rng.permutation(P)
        perms += [p, p[::-1]]
    rows_ev, rows_fr = [], []
    for p in perms:  # presence after adding the first j players, j = 0..P
        ev = np.zeros((P + 1, T), bool)
        fr = np.zeros((P + 1, K), bool)
        for j, player in enumerate(p, start=1):
            if player < n:
                ev[j:, events[player]] = True
            else:
                fr[j:, slots[player - n]] = True
        rows_ev.append(ev)
        rows_fr.append(fr)
    ev_all = torch.from_numpy(np.concatenate(rows_ev))
    fr_all = torch.from_numpy(np.concatenate(rows_fr))
    vals = torch.cat([_value(model, batch, target, ev_all[s : s + chunk], fr_all[s : s + chunk], log_prob)
                      for s in range(0, len(ev_all), chunk)]).numpy().reshape(len(perms), P + 1)  # fmt: skip
    phi = np.zeros(P)
    for i, p in enumerate(perms):
        phi[p] += np.diff(vals[i])
    phi /= len(perms)
    base, full = float(vals[0, 0]), float(vals[0, -1])
    err = abs(phi.sum() - (full - base))
    if err > 1e-6 * max(1.0, abs(full - base)):
        raise AssertionError(f"Shapley values do not add up: off by {err:.3g}.")
    friends = np.zeros(K)
    friends[slots] = phi[n:]
    return SocialShapley(phi[:n], friends, base, full, err)


@torch.no_grad()
def friend_deletion_curve(model: InterestModel, batch: Batch, target: int, order: np.ndarray) -> np.ndarray:
    """The target's logit after removing the first 0, 1, .., len(order) friend slots of `order` (history kept).
    [len(order)+1]; a faithful ranking of friends makes it fall fastest."""
    K, T = batch.social.friends.shape[1], batch.items.shape[1]
    fr = np.ones((len(order) + 1, K), bool)
    for j, slot in enumerate(order, start=1):
        fr[j:, slot] = False
    ev = torch.ones(len(fr), T, dtype=torch.bool)
    return _value(model, batch, target, ev, torch.from_numpy(fr)).numpy()




@dataclass
class FriendExplanation:
    """Shapley values of one target over the user's latest window of events and their friends, and the deletion
    curves over friends (largest value first, and largest attention at the last step first)."""

    friends: list[str]  # [K'] the friend in each slot with a friend
    values: np.ndarray  # [K'] Shapley value of each friend
    events: np.ndarray  # [n] Shapley value of each event of the window (oldest first)
    base: float
    fx: float
    additivity_error: float
    deletion_by_value: np.ndarray  # [K'+1] the target's logit as friends are removed, largest value first
    deletion_by_attention: np.ndarray  # [K'+1] likewise, largest attention first

    def to_dict(self) -> dict:
        return {
            "friends": [{"user_id": f, "value": float(v)} for f, v in zip(self.friends, self.values, strict=True)],
            "events_total": float(self.events.sum()), "base": self.base, "fx": self.fx,
            "additivity_error": self.additivity_error,
            "deletion_by_value": np.round(self.deletion_by_value, 6).tolist(),
            "deletion_by_attention": np.round(self.deletion_by_attention, 6).tolist(),
        }  # fmt: skip


# Permutations for the friends' Shapley values: the fewest whose top friend equals a 128-permutation run's on >= 90 %
# of validation targets (Poisson seed 0: 8 / 16 / 32 / 64 -> 0.733 / 0.783 / 0.900 / 0.917, `bench/social.py
# --section shap-agreement`, docs/social_shap.md); 16 left one step in five naming another friend by sampling noise.
FRIEND_PERMUTATIONS = 32


def explain_friends(
    con: duckdb.DuckDBPyConnection, loaded: LoadedModel, user_id: str, target: int,
    permutations: int = FRIEND_PERMUTATIONS,
    context: tuple[SocialContext, int] | None = None,
) -> FriendExplanation:
    """Friends and events as players for the logit of item index `target` after the user's latest event
    (`context`: the user's friend context built already, as `user_social_evidence` takes it)."""
    ev = user_social_evidence(con, loaded, user_id, context=context)
    model, batch = loaded.model, ev.batch
    sv = social_shapley(model, batch, target, permutations=permutations)
    slots = np.flatnonzero(batch.social.friends[0].numpy() >= 0)
    with torch.no_grad():
        att = model.encode(batch).social_attention[0, -1].double().numpy()  # [K]
    by_value = slots[np.argsort(-sv.friends[slots], kind="stable")]
    by_att = slots[np.argsort(-att[slots], kind="stable")]
    return FriendExplanation(
        [ev.friends[s] for s in slots], sv.friends[slots], sv.events, sv.base, sv.full,
        sv.additivity_error, friend_deletion_curve(model, batch, target, by_value),
        friend_deletion_curve(model, batch, target, by_att),
    )
