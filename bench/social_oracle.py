"""Oracle bounds for the social NDCG lift on the planted-influence log (`bench/social.py --section oracle`).

How much of the next event can friends explain at all, and how much NDCG@10 could a scorer gain from them?

- `copy_share`: share of test targets that are a planted copy candidate: a follower's event at or after its
  adoption whose item is one of its influencer's last 10 items of the adopted category strictly before it (what
  the generator copies from); `copy_share_new`: of those, the share whose item the user has not had before (the
  only part the user's own history cannot reveal).
- `mix_influencer`: the no-social model's next-item distribution mixed with the planted influencer's copy
  distribution (the exact distribution the generator copies from) on the follower's steps after adoption:
  p = (1 - b) p_model + b q_influencer, b tuned on validation. Knows the truth a model has to find.
- `mix_friends`: the same with every friend's last m items before the step (no truth: what a social model can
  see), m and b tuned on validation.
- `bayes`: the generator's own next-item probability (mixture at the step, popularity, a leader's favourites, the
  follower's copy distribution): the ceiling of any scorer; `bayes_no_copy`: the same without the copy term.

All ranked like the models: leave-one-out targets, full catalogue, seen items excluded (METRICS.md §1).
"""

from __future__ import annotations

import numpy as np
import torch

from core.datasets.social import SocialDataset
from core.evaluate.metrics import ndcg
from core.evaluate.ranking import rank_batch
from core.evaluate.split import Split
from core.evaluate.windows import window_batch
from core.friends.graph import FriendGraph
from core.sequences import Sequences, Vocab
from core.social.fit import SocialFit, social_batch

__all__ = ["oracle_figures", "influence_figures", "target_batches"]

RECENT = 10  # the generator's copy window (core.datasets.social._RECENT)
COPY = 0.5  # the generator's copy probability (its default copy_prob)
BETAS = (0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
FRIEND_WINDOWS = (5, 10, 20, 50)


def target_batches(f: SocialFit, seqs: Sequences, graph: FriendGraph | None, rows, targets, size: int = 256):
    """Per chunk of `size` targets: (start, batch of each target's window of earlier events, with its friends when
    the model is social)."""
    L = f.model.config.max_len
    for s in range(0, len(rows), size):
        r, hi = rows[s : s + size], targets[s : s + size]
        lo = np.maximum(seqs.offsets[r], hi - L)
        T = int((hi - lo).max())
        yield s, social_batch(seqs, lo, hi, T, f.timelines, graph) if f.social else window_batch(seqs, lo, hi, T)


@torch.no_grad()
def model_probs(f: SocialFit, seqs: Sequences, graph: FriendGraph | None, rows, targets) -> np.ndarray:
    """[n, I+1] next-item probabilities of a fitted model for each target (input: every earlier event)."""
    model = f.model
    out = []
    for _, batch in target_batches(f, seqs, graph, rows, targets):
        scores = model.scores(model.encode(batch), batch).double()
        scores[:, 0] = float("-inf")
        out.append(scores.softmax(-1).numpy())
    return np.concatenate(out)


def _ndcg(scores: np.ndarray, seqs: Sequences, rows, targets) -> float:
    s = torch.from_numpy(np.log(np.maximum(scores, 1e-300)))
    s[:, 0] = float("-inf")
    ranks, _ = rank_batch(s.clone(), seqs, seqs.offsets[rows], targets, seqs.items[targets])
    return ndcg(ranks, 10)


class _Truth:
    """The planted generator's parameters in model indices."""

    def __init__(self, ds: SocialDataset, seqs: Sequences, vocab: Vocab):
        C = len(ds.categories)
        num = np.array([int(i[1:]) for i in vocab.items])
        self.cat = np.concatenate([[-1], num % C])  # [I+1] generator category of each model index
        rank = np.concatenate([[0], num // C])
        pop = (rank + 1.0) ** -1.1
        self.pop = np.zeros(len(pop))  # [I+1] popularity within the item's category
        for k in range(C):
            m = self.cat == k
            self.pop[m] = pop[m] / pop[m].sum()
        self.ds, self.seqs, self.C = ds, seqs, C
        cidx = {c: k for k, c in enumerate(ds.categories)}
        self.follow = {seqs.row(u): (int(s), seqs.row(i), cidx[c]) for u, s, i, c in
                       ds.influence[["user_id", "step", "influencer", "category"]].itertuples(index=False)}  # fmt: skip
        self.lead = {}
        for u, s, c in ds.leaders[["user_id", "step", "category"]].itertuples(index=False):
            r = seqs.row(u)
            ev = seqs.items[seqs.offsets[r] + int(s) : seqs.offsets[r + 1]]
            self.lead[r] = (int(s), cidx[c], np.unique(ev[self.cat[ev] == cidx[c]]))  # favourites seen (oracle)

    def copy_dist(self, r: int, t: int) -> np.ndarray:
        """[I+1] the generator's copy distribution for event t of row r (zeros when it cannot copy there)."""
        q = np.zeros(len(self.cat))
        if r not in self.follow:
            return q
        s, lead, c = self.follow[r]
        if t - self.seqs.offsets[r] < s:
            return q
        a, b = self.seqs.offsets[lead], self.seqs.offsets[lead + 1]
        k = a + int(np.searchsorted(self.seqs.ts[a:b], self.seqs.ts[t], side="left"))
        recent = self.seqs.items[max(a, k - RECENT) : k]
        recent = recent[self.cat[recent] == c]
        if len(recent):
            np.add.at(q, recent, 1.0 / len(recent))
        return q

    def bayes(self, r: int, t: int, copy: bool) -> np.ndarray:
        """[I+1] the generator's probability of each item at event t of row r."""
        j = int(t - self.seqs.offsets[r])
        mix = self.ds.mixture_at(str(self.seqs.user_ids[r]), j)
        within = self.pop.copy()
        if r in self.lead and j >= self.lead[r][0]:
            _, c, fav = self.lead[r]
            within[self.cat == c] = 0.0
            within[fav] = 1.0 / len(fav)
        if copy:
            q = self.copy_dist(r, t)
            if q.any():
                c = self.follow[r][2]
                within[self.cat == c] = (1 - COPY) * within[self.cat == c] + COPY * q[self.cat == c]
        p = np.where(self.cat >= 0, mix[np.maximum(self.cat, 0)] * within, 0.0)
        return p / p.sum()


def _friends_dist(seqs: Sequences, graph: FriendGraph, rows, targets, m: int) -> np.ndarray:
    """[n, I+1] share of each item among all friends' last m events strictly before each target's time."""
    fr, has = graph.padded(np.asarray(rows))
    out = np.zeros((len(rows), int(seqs.items.max()) + 1))
    for n, t in enumerate(targets):
        for f in fr[n][has[n]]:
            a, b = seqs.offsets[f], seqs.offsets[f + 1]
            k = a + int(np.searchsorted(seqs.ts[a:b], seqs.ts[t], side="left"))
            np.add.at(out[n], seqs.items[max(a, k - m) : k], 1.0)
    tot = out.sum(1, keepdims=True)
    return np.divide(out, tot, out=np.zeros_like(out), where=tot > 0)


def _tune(p_val, q_val, val, p_test, q_test, test, seqs) -> tuple[float, float, float]:
    """(b, validation NDCG@10, test NDCG@10) of (1-b) p + b q with b picked on validation."""
    best = max(BETAS, key=lambda b: (_ndcg((1 - b) * p_val + b * q_val, seqs, *val), -b))
    return best, _ndcg((1 - best) * p_val + best * q_val, seqs, *val), _ndcg((1 - best) * p_test + best * q_test, seqs, *test)


def oracle_figures(f: SocialFit, seqs: Sequences, vocab: Vocab, graph: FriendGraph, ds: SocialDataset,
                   split: Split) -> dict:  # fmt: skip
    """The oracle figures of the module docstring for the no-social fit `f`."""
    truth = _Truth(ds, seqs, vocab)
    val, test = split.targets("valid"), split.targets("test")
    p_val, p_test = model_probs(f, seqs, None, *val), model_probs(f, seqs, None, *test)
    out: dict = {"model_valid_NDCG@10": round(_ndcg(p_val, seqs, *val), 4),
                 "model_test_NDCG@10": round(_ndcg(p_test, seqs, *test), 4)}  # fmt: skip
    qi_val = np.stack([truth.copy_dist(r, t) for r, t in zip(*val, strict=True)])
    qi_test = np.stack([truth.copy_dist(r, t) for r, t in zip(*test, strict=True)])
    rows, tg = test
    hit = qi_test[np.arange(len(tg)), seqs.items[tg]] > 0
    seen = np.array([seqs.items[t] in set(seqs.items[seqs.offsets[r] : t]) for r, t in zip(rows, tg, strict=True)])
    out["test_targets"] = len(tg)
    out["copy_candidate_steps"] = int(qi_test.any(1).sum())
    out["copy_share"] = round(float(hit.mean()), 4)
    out["copy_share_new"] = round(float((hit & ~seen).mean()), 4)
    b, v, t = _tune(p_val, qi_val, val, p_test, qi_test, test, seqs)
    out["mix_influencer"] = {"b": b, "valid_NDCG@10": round(v, 4), "test_NDCG@10": round(t, 4),
                             "lift": round(t / out["model_test_NDCG@10"] - 1, 4)}  # fmt: skip
    best = None
    for m in FRIEND_WINDOWS:
        qv, qt = _friends_dist(seqs, graph, *val, m), _friends_dist(seqs, graph, *test, m)
        b, v, t = _tune(p_val, qv, val, p_test, qt, test, seqs)
        if best is None or v > best["valid_NDCG@10"]:
            best = {"m": m, "b": b, "valid_NDCG@10": round(v, 4), "test_NDCG@10": round(t, 4)}
    best["lift"] = round(best["test_NDCG@10"] / out["model_test_NDCG@10"] - 1, 4)
    out["mix_friends"] = best
    for key, copy in (("bayes", True), ("bayes_no_copy", False)):
        pb = np.stack([truth.bayes(r, t, copy) for r, t in zip(*test, strict=True)])
        out[f"{key}_test_NDCG@10"] = round(_ndcg(pb, seqs, *test), 4)
    out["bayes_copy_lift"] = round(out["bayes_test_NDCG@10"] / out["bayes_no_copy_test_NDCG@10"] - 1, 4)
    return out



def influence_figures(ds: SocialDataset, seqs: Sequences, vocab: Vocab, graph: FriendGraph, split: Split) -> dict:
    """How much planted influence the log holds (no model): over all events and over the leave-one-out test
    targets, the share of events at or after a follower's adoption, of planted copy candidates (the item is one of
    the influencer's last 10 items of the adopted category strictly before it) and of those new to the user; and
    the graph facts that make the influencer harder to find (leaders among a user's capped friends, influencers
    the cap drops, the share of a follower's history after the adoption)."""
    truth = _Truth(ds, seqs, vocab)
    is_test = np.zeros(len(seqs.items), bool)
    is_test[split.targets("test")[1]] = True
    after = copy = new = t_copy = t_new = 0
    for r, (s, lead, c) in truth.follow.items():
        a, b = int(seqs.offsets[r]), int(seqs.offsets[r + 1])
        la, lb = int(seqs.offsets[lead]), int(seqs.offsets[lead + 1])
        for t in range(a + s, b):
            after += 1
            k = la + int(np.searchsorted(seqs.ts[la:lb], seqs.ts[t], side="left"))
            recent = seqs.items[max(la, k - RECENT) : k]
            if seqs.items[t] in set(recent[truth.cat[recent] == c]):
                novel = seqs.items[t] not in set(seqs.items[a:t])
                copy, new = copy + 1, new + int(novel)
                t_copy, t_new = t_copy + int(is_test[t]), t_new + int(is_test[t] and novel)
    fr, has = graph.padded()
    leaders = {seqs.row(u) for u in ds.leaders["user_id"]}
    lead_friends = [sum(int(f) in leaders for f in fr[r][has[r]]) for r in range(seqs.n_users)]
    in_cap = [lead in set(fr[r][has[r]].tolist()) for r, (_s, lead, _c) in truth.follow.items()]
    share = [1 - s / float(seqs.offsets[r + 1] - seqs.offsets[r]) for r, (s, _l, _c) in truth.follow.items()]
    n = len(seqs.items)
    return {"events_after_adoption": round(after / n, 4), "copy_candidates": round(copy / n, 4),
            "copy_candidates_new": round(new / n, 4), "test_targets": int(is_test.sum()),
            "test_copy_candidates": t_copy, "test_copy_candidates_new": t_new,
            "leaders_among_capped_friends_mean": round(float(np.mean(lead_friends)), 2),
            "influencer_within_cap": round(float(np.mean(in_cap)), 4),
            "follower_history_after_adoption_mean": round(float(np.mean(share)), 4)}  # fmt: skip
