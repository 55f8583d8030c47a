"""A synthetic log with a friendship graph and planted social influence (the truth for the social branch).

Separate from `core.datasets.synthetic` (whose logs stay exactly as they are); opt in with
`interestlens build --dataset synthetic-social` or `generate_social`.

Design:
- Communities and homophily: each user belongs to one of `communities` groups; a group prefers two categories, and
  a user's base mixture is a Dirichlet draw around their group's preference. A friendship falls inside the group
  with probability `p_within`, else anywhere: friends have similar tastes.
- Graph shape: `degree="poisson"` gives every user about `mean_degree` friends; `degree="lastfm"` draws degrees
  from a log-normal with mean ~13 and a long tail, like HetRec Last.fm (1,892 users, mean 13.4 friends). Every
  friendship is symmetric (stored once, undirected).
- Planted influence: `leader_share` of users switch once, at a random step in the middle of their history, to a
  new dominant category c (mixture 0.8·onehot(c) + 0.2·base), and pick c's items from 8 favourites of their own. Each friend of a leader who is not a leader and not
  already influenced adopts c with probability `follow_prob`: from their `delay`-th event after the leader's
  switch time, their mixture becomes 0.8·onehot(c) + 0.2·base. The truth records (user, step, ts, influencer,
  category): the step is the follower's first adopted event (0-based index in time order). An adopted event of
  category c is, with probability `copy_prob`, one of the influencer's last 10 items of category c before it
  (friends pass on the very artists / films they like), else an item of c by popularity.
- Events: a category from the user's mixture at that event, then an item of that category by Zipf popularity;
  times strictly increasing per user over 2025 (UTC).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from core.errors import UserInputError

__all__ = ["SocialDataset", "generate_social"]

_T0 = 1735689600  # 2025-01-01 UTC
_YEAR = 365 * 86400
_ADOPT = 0.8  # weight of the adopted category in a switched / influenced mixture
_FAVOURITES = 8  # after its switch, a leader picks its new category's items from its own 8 favourites
_RECENT = 10  # a follower's copied item is one of the influencer's last _RECENT events (of the adopted category)


@dataclass
class SocialDataset:
    """The generated log and its planted truth."""

    events: pd.DataFrame  # user_id, item_id, ts, event_type, value (sorted by ts)
    users: pd.DataFrame  # user_id, community
    items: pd.DataFrame  # item_id, title, categories
    edges: pd.DataFrame  # src_user, dst_user (undirected, each pair once)
    influence: pd.DataFrame  # user_id, step, ts, influencer, category: planted adoptions
    leaders: pd.DataFrame  # user_id, step, ts, category: the leaders' own switches
    categories: list[str]
    mixtures: dict[str, list[tuple[int, np.ndarray]]] = field(default_factory=dict)  # user -> (from step, [C] mixture)
    params: dict = field(default_factory=dict)

    def mixture_at(self, user_id: str, step: int) -> np.ndarray:
        """The planted category mixture [C] that drew the user's event `step` (0-based, time order)."""
        out = None
        for start, m in self.mixtures[user_id]:
            if start <= step:
                out = m
        return out


def generate_social(
    users: int = 400,
    items: int = 200,
    events: int = 16_000,
    categories: int = 8,
    communities: int = 4,
    degree: Literal["poisson", "lastfm"] = "poisson",
    mean_degree: float = 8.0,
    p_within: float = 0.85,
    leader_share: float = 0.3,
    follow_prob: float = 0.7,
    delay: tuple[int, int] = (1, 3),
    copy_prob: float = 0.5,
    seed: int = 0,
) -> SocialDataset:
    """Generate the log; deterministic by `seed`. See the module docstring for the design."""
    if users < 2 or items < categories or events < 20 * users or categories < 2 or communities < 1:
        raise UserInputError("synthetic-social needs ≥ 2 users, items ≥ categories, ≥ 20 events per user, ≥ 2 categories.")
    params = dict(users=users, items=items, events=events, categories=categories, communities=communities,
                  degree=degree, mean_degree=mean_degree, p_within=p_within, leader_share=leader_share,
                  follow_prob=follow_prob, delay=list(delay), copy_prob=copy_prob, seed=seed)  # fmt: skip
    rng = np.random.default_rng(seed)
    C = categories
    names = [f"cat{k:02d}" for k in range(C)]
    # items: category k owns items k, k+C, ...; popularity rank = position inside the category
    item_cat = np.arange(items) % C
    rank = np.arange(items) // C
    pop = (rank + 1.0) ** -1.1
    cat_items = [np.flatnonzero(item_cat == k) for k in range(C)]
    cat_p = [pop[ix] / pop[ix].sum() for ix in cat_items]
    # users, communities, base mixtures
    comm = rng.integers(0, communities, users)
    pref = np.full((communities, C), 0.2)
    for m in range(communities):
        pref[m, [(2 * m) % C, (2 * m + 1) % C]] = 3.0
    base = np.stack([rng.dirichlet(2.0 * pref[m]) for m in comm])
    base = 0.95 * base + 0.05 / C
    activity = np.exp(rng.normal(0, 0.5, users))
    counts = 20 + rng.multinomial(events - 20 * users, activity / activity.sum())
    starts = rng.uniform(0, 0.3, users) * _YEAR
    ends = rng.uniform(0.7, 1.0, users) * _YEAR
    times = [np.sort(rng.uniform(starts[u], ends[u], counts[u])).astype(np.int64) + _T0 for u in range(users)]
    times = [t + np.arange(len(t)) for t in times]  # sorted + 0, 1, 2, ...: strictly increasing
    friends = _graph(comm, degree, mean_degree, p_within, rng)
    # leader switches
    mix_from: list[list[tuple[int, np.ndarray]]] = [[(0, base[u])] for u in range(users)]
    is_leader = rng.random(users) < leader_share
    leaders, influence, influenced = [], [], np.zeros(users, bool)
    favourites: dict[int, np.ndarray] = {}  # leader -> the items of its new category it picks from
    for u in np.flatnonzero(is_leader):
        n = counts[u]
        step = int(rng.integers(int(0.3 * n), int(0.6 * n) + 1))
        # a category outside the leader's community's favourites, so the adoption is news to the community
        own = {(2 * comm[u]) % C, (2 * comm[u] + 1) % C}
        c = int(rng.choice([k for k in range(C) if k not in own] or [k for k in range(C) if k != int(base[u].argmax())]))
        mix_from[u].append((step, _ADOPT * np.eye(C)[c] + (1 - _ADOPT) * base[u]))
        leaders.append((u, step, int(times[u][step]), c))
        favourites[u] = rng.choice(cat_items[c], size=min(_FAVOURITES, len(cat_items[c])), replace=False)
    for u, _step, ts, c in sorted(leaders, key=lambda x: x[2]):
        for f in friends[u]:
            if is_leader[f] or influenced[f] or rng.random() >= follow_prob:
                continue
            after = int(np.searchsorted(times[f], ts, side="right"))  # first event strictly after the switch
            s = after + int(rng.integers(delay[0], delay[1] + 1)) - 1
            if s < 5 or s > counts[f] - 3:
                continue
            influenced[f] = True
            mix_from[f].append((s, _ADOPT * np.eye(C)[c] + (1 - _ADOPT) * base[f]))
            influence.append((f, s, int(times[f][s]), u, c))
    rows_u, rows_i, rows_t = [], [], []
    # events: leaders and everyone not influenced first, so a follower can copy what its influencer just had
    follower_of = {f: (u, c) for f, _s, _t, u, c in influence}
    item_of: list[np.ndarray] = [np.zeros(0, np.int64)] * users
    for u in sorted(range(users), key=lambda x: x in follower_of):
        n = counts[u]
        mix = np.empty((n, C))
        for start, m in mix_from[u]:
            mix[start:] = m
        cat = (rng.random(n)[:, None] > np.cumsum(mix, axis=1)).sum(axis=1).clip(max=C - 1)
        item = np.array([cat_items[k][rng.choice(len(cat_items[k]), p=cat_p[k])] for k in cat])
        if u in favourites:  # a leader's events of its new category are its own favourites in it
            lead_c = item_cat[favourites[u][0]]
            picks = np.flatnonzero((cat == lead_c) & (np.arange(n) >= mix_from[u][-1][0]))
            item[picks] = rng.choice(favourites[u], size=len(picks))
        if u in follower_of:
            lead, c = follower_of[u]
            adopted = np.flatnonzero((cat == c) & (np.arange(n) >= mix_from[u][-1][0]))
            for j in adopted[rng.random(len(adopted)) < copy_prob]:
                # one of the influencer's last `_RECENT` items of category c strictly before this event
                k = int(np.searchsorted(times[lead], times[u][j], side="left"))
                recent = item_of[lead][max(0, k - _RECENT) : k]
                recent = recent[item_cat[recent] == c]
                if len(recent):
                    item[j] = recent[rng.integers(len(recent))]
        item_of[u] = item
        rows_u.append(np.full(n, u))
        rows_i.append(item)
        rows_t.append(times[u])
    uid = np.concatenate(rows_u)
    ts = np.concatenate(rows_t)
    order = np.lexsort((uid, ts))
    w_u, w_i = len(str(users)), len(str(items))
    user_ids = np.array([f"s{k:0{w_u}d}" for k in range(users)], dtype=object)
    item_ids = np.array([f"j{k:0{w_i}d}" for k in range(items)], dtype=object)
    ev = pd.DataFrame({
        "user_id": user_ids[uid[order]], "item_id": item_ids[np.concatenate(rows_i)[order]],
        "ts": pd.to_datetime(ts[order], unit="s"), "event_type": "view", "value": 1.0,
    })  # fmt: skip
    pairs = sorted({(min(a, b), max(a, b)) for a in range(users) for b in friends[a]})
    edges = pd.DataFrame({"src_user": [user_ids[a] for a, _ in pairs], "dst_user": [user_ids[b] for _, b in pairs]})
    return SocialDataset(
        events=ev,
        users=pd.DataFrame({"user_id": user_ids, "community": [f"c{m}" for m in comm]}),
        items=pd.DataFrame({"item_id": item_ids, "title": [f"{names[k]} item {r}" for k, r in zip(item_cat, rank, strict=True)],
                            "categories": [[names[k]] for k in item_cat]}),  # fmt: skip
        edges=edges,
        influence=pd.DataFrame(
            [(user_ids[f], s, t, user_ids[u], names[c]) for f, s, t, u, c in influence],
            columns=["user_id", "step", "ts", "influencer", "category"],
        ),
        leaders=pd.DataFrame([(user_ids[u], s, t, names[c]) for u, s, t, c in leaders],
                             columns=["user_id", "step", "ts", "category"]),  # fmt: skip
        categories=names,
        mixtures={user_ids[u]: mix_from[u] for u in range(users)},
        params=params,
    )


def _graph(comm: np.ndarray, degree: str, mean_degree: float, p_within: float, rng) -> list[list[int]]:
    """Symmetric friend lists: each user proposes about half its target degree, mostly inside its community."""
    n = len(comm)
    if degree == "lastfm":
        # log-normal with mean 13 (exp(mu + s^2/2) = 13, s = 0.9): a few users with many friends, most with few
        target = np.clip(rng.lognormal(np.log(13.0) - 0.405, 0.9, n), 1, n - 1)
    else:
        target = np.clip(rng.poisson(mean_degree, n), 1, n - 1).astype(float)
    members = [np.flatnonzero(comm == m) for m in range(comm.max() + 1)]
    adj: list[set[int]] = [set() for _ in range(n)]
    for u in range(n):
        k = int(np.ceil(target[u] / 2))
        for _ in range(k):
            pool = members[comm[u]] if rng.random() < p_within and len(members[comm[u]]) > 1 else np.arange(n)
            v = int(rng.choice(pool))
            if v != u:
                adj[u].add(v)
                adj[v].add(u)
    return [sorted(a) for a in adj]
