"""A synthetic behaviour log with planted, known interest changes (the ground truth for validation).

Design (each choice is tested in tests/core/test_datasets_synthetic.py):

- Items: each has a primary category (every category has at least one item) and 0–2 secondary ones
  (65 % / 25 % / 10 % have 1 / 2 / 3 categories). Popularity within a category is Zipf-like: the item of
  rank r has weight (r + 1)^−1.1.
- Users: gender (F/M), age band (18-24 … 55+) and region. Taste and activity depend on them so that
  fairness gaps are real: the base mixture is Dirichlet around softmax(gender + age + region affinities);
  younger users are more active but have more diffuse tastes (older users: fewer events, peakier tastes);
  region shifts activity too (APAC least active).
- Archetypes (shares of users): 40 % switch (1–3 sudden changes, ≥ 10 events apart), 20 % gradual (linear
  drift between two mixtures over a span), 15 % periodic (weekend mixture ≠ weekday mixture, UTC), 25 %
  stable. Each new mixture is at total-variation distance ≥ 0.5 from the one before it where possible.
  A user too short to hold a switch (< 20 events) is recorded as stable.
- Events: per event, a category is drawn from the user's true mixture at that event, then an item whose
  primary category it is, by popularity. Types: view 72 %, click 18 %, cart 6 %, purchase 4 %; `value` is an
  implicit-feedback weight (1, 2, 3, 5). Context: the device of the session (each user prefers one).
- Time: sessions of ~6 events a couple of minutes apart, sessions days apart, each user active over
  30–100 % of the year 2025 (UTC); strictly increasing per user. The log is sorted by time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from core.datasets.names import category_names, item_titles
from core.datasets.timeline import make_timeline
from core.datasets.truth import SyntheticTruth
from core.errors import SettingError, UserInputError

__all__ = ["SyntheticDataset", "generate", "GENDERS", "AGE_BANDS", "REGIONS", "DEVICES", "EVENT_TYPES"]

log = logging.getLogger(__name__)

GENDERS = ("F", "M")
AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55+")
REGIONS = ("NA", "EU", "LATAM", "APAC")
DEVICES = ("mobile", "desktop", "tablet")
EVENT_TYPES = ("view", "click", "cart", "purchase")

_AGE_P = np.array([0.20, 0.30, 0.24, 0.15, 0.11])
_REGION_P = np.array([0.35, 0.30, 0.20, 0.15])
_AGE_ACTIVITY = np.array([0.45, 0.2, 0.0, -0.25, -0.5])  # log-activity offsets: young users are more active
_REGION_ACTIVITY = np.array([0.2, 0.1, -0.1, -0.45])
_AGE_CONCENTRATION = np.array([4.0, 3.0, 2.4, 1.8, 1.3])  # Dirichlet total: lower = peakier tastes
_ARCHETYPE_SHARE = {"switch": 0.40, "gradual": 0.20, "periodic": 0.15}  # the rest: stable
_TYPE_P = np.array([0.72, 0.18, 0.06, 0.04])
_TYPE_VALUE = np.array([1.0, 2.0, 3.0, 5.0])
_MIN_SEG = 10  # events between two planted switches (and before the first, after the last)
_MIN_EVENTS = 20  # per user, when the event budget allows
_NOISE = 0.03  # share of every mixture spread uniformly: users browse everything now and then
_CHUNK_CELLS = 4_000_000  # events × categories per chunk when sampling categories


@dataclass
class SyntheticDataset:
    """The generated log: `events`, `users`, `items` DataFrames and the planted `truth`."""

    events: pd.DataFrame  # user_id, item_id, ts, event_type, value, device (sorted by ts)
    users: pd.DataFrame  # user_id, gender, age_band, region
    items: pd.DataFrame  # item_id, title, categories (list, primary first), primary_category, popularity
    truth: SyntheticTruth
    params: dict = field(default_factory=dict)
    name: str = "synthetic"  # the generator (ingest records it as the source)

    @property
    def categories(self) -> list[str]:
        return self.truth.categories


def generate(
    users: int = 2000, items: int = 1000, events: int = 100_000, categories: int = 12, seed: int = 0,
    single_category: bool = False,
) -> SyntheticDataset:
    """Generate a synthetic log with known interest trajectories; deterministic by `seed`.

    `single_category` gives every item its primary category only (the same draws otherwise, so the same events).

    Returns exactly `events` events over exactly `users` users and `items` items (some items may never
    be drawn). Memory is O(events) for a handful of compact arrays; categories are sampled in chunks.
    """
    if users < 1 or items < 1 or events < 1:
        raise SettingError("{users}, {items} and {events} must all be positive.", ("users", "items", "events"))
    if categories < 2:
        raise UserInputError("The synthetic dataset needs at least 2 categories.")
    if items < categories:
        raise SettingError("{items} ({n}) must be at least the number of categories ({c}).", "items", n=items, c=categories)
    if events < users:
        raise SettingError("{events} ({n:,}) must be at least {users} ({u:,}): one event per user.", ("events", "users"),
                           n=events, u=users)
    params = dict(users=users, items=items, events=events, categories=categories, seed=seed)
    if single_category:  # only when set, so the parameters of existing truth files read as before
        params["single_category"] = True
    r_items, r_users, r_mix, r_time, r_events = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(5)
    )
    names = category_names(categories)
    item_df, sorted_items, cat_bounds, cdf_keys = _make_items(items, categories, names, r_items)
    if single_category:
        item_df["categories"] = [[c] for c in item_df["primary_category"]]
    user_df, counts, conc, prior, device_p = _make_users(users, events, categories, r_users)
    tl = make_timeline(counts, device_p, r_time)
    truth = _plant(user_df["user_id"].to_numpy(), counts, conc, prior, tl.weekend, tl.ts, names, r_mix)
    truth.meta = {"seed": seed, "params": params}

    n = int(counts.sum())
    cat = np.empty(n, np.int16)
    step = max(1, _CHUNK_CELLS // categories)
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        p = truth.mixtures_at(tl.rows[lo:hi], tl.idx[lo:hi])  # [n_chunk, C]
        u = r_events.random(hi - lo)
        cat[lo:hi] = np.minimum((u[:, None] > np.cumsum(p, axis=1)).sum(axis=1), categories - 1)
    u = r_events.random(n)
    pos = np.searchsorted(cdf_keys, cat + u, side="right")
    pos = np.clip(pos, cat_bounds[cat], cat_bounds[cat + 1] - 1)
    item_idx = sorted_items[pos]
    etype = np.searchsorted(np.cumsum(_TYPE_P), r_events.random(n), side="right").clip(0, 3)

    order = np.argsort(tl.ts, kind="stable")
    ev = pd.DataFrame(
        {
            "user_id": pd.Categorical.from_codes(tl.rows[order], categories=user_df["user_id"]),
            "item_id": pd.Categorical.from_codes(item_idx[order], categories=item_df["item_id"]),
            "ts": pd.to_datetime(tl.ts[order], unit="s"),
            "event_type": pd.Categorical.from_codes(etype[order], categories=list(EVENT_TYPES)),
            "value": _TYPE_VALUE[etype[order]],
            "device": pd.Categorical.from_codes(tl.device[order], categories=list(DEVICES)),
        }
    )
    log.info("synthetic: %d users, %d items, %d events, seed %d", users, items, n, seed)
    return SyntheticDataset(events=ev, users=user_df, items=item_df, truth=truth, params=params)


def _make_items(n: int, c: int, names: list[str], rng: np.random.Generator):
    """Items with a primary category, 0–2 secondary ones and Zipf popularity within the category."""
    weights = rng.dirichlet(np.full(c, 5.0))
    primary = np.concatenate([np.arange(c), rng.choice(c, n - c, p=weights)])
    primary = primary[rng.permutation(n)]
    n_cats = np.searchsorted([0.65, 0.90], rng.random(n), side="right") + 1  # 1, 2 or 3
    n_cats = np.minimum(n_cats, c)
    scores = rng.random((n, c))
    scores[np.arange(n), primary] = -1.0  # primary first, then random distinct secondaries
    ranked = np.argsort(scores, axis=1)[:, :3]
    cats = [[names[k] for k in ranked[i, : n_cats[i]]] for i in range(n)]
    # Zipf within category: a random rank per item inside its primary category
    order = np.lexsort((rng.random(n), primary))  # items grouped by category, random rank inside
    bounds = np.searchsorted(primary[order], np.arange(c + 1))
    rank = np.empty(n, np.int64)
    rank[order] = np.arange(n) - bounds[primary[order]]
    pop = (rank + 1.0) ** -1.1
    sums = np.bincount(primary, weights=pop, minlength=c)
    within = np.empty(n)
    within[order] = np.cumsum(pop[order]) - np.repeat(np.cumsum(sums) - sums, np.diff(bounds))
    within /= sums[primary]
    cdf_keys = primary[order] + within[order]  # category k's items occupy (k, k+1]
    width = len(str(n))
    df = pd.DataFrame(
        {
            "item_id": [f"i{k:0{width}d}" for k in range(n)],
            "title": item_titles(primary, rng),
            "categories": cats,
            "primary_category": [names[k] for k in primary],
            "popularity": pop / sums[primary],
        }
    )
    return df, order, bounds, cdf_keys


def _make_users(n: int, events: int, c: int, rng: np.random.Generator):
    """Attributes, events per user, taste concentration and prior, device preferences."""
    g = rng.integers(0, 2, n)
    a = rng.choice(len(AGE_BANDS), n, p=_AGE_P)
    r = rng.choice(len(REGIONS), n, p=_REGION_P)
    logit = (
        rng.normal(0, 1.2, (2, c))[g] + rng.normal(0, 0.9, (len(AGE_BANDS), c))[a]
        + rng.normal(0, 0.5, (len(REGIONS), c))[r]
    )
    prior = np.exp(logit - logit.max(axis=1, keepdims=True))
    prior /= prior.sum(axis=1, keepdims=True)
    activity = np.exp(_AGE_ACTIVITY[a] + _REGION_ACTIVITY[r] + rng.normal(0, 0.7, n))
    floor = min(_MIN_EVENTS, events // n)
    counts = floor + rng.multinomial(events - floor * n, activity / activity.sum())
    device_alpha = np.array([[6, 2, 1], [5, 3, 1], [3, 4, 1], [2, 5, 1.5], [1.5, 5, 2]], float)[a]
    device_p = np.stack([rng.dirichlet(x) for x in device_alpha]) if n else np.zeros((0, 3))
    width = len(str(n))
    df = pd.DataFrame(
        {
            "user_id": [f"u{k:0{width}d}" for k in range(n)],
            "gender": np.array(GENDERS)[g],
            "age_band": np.array(AGE_BANDS)[a],
            "region": np.array(REGIONS)[r],
        }
    )
    return df, counts.astype(np.int64), _AGE_CONCENTRATION[a], prior, device_p


def _plant(user_ids, counts, conc, prior, weekend, ts, names, rng) -> SyntheticTruth:
    """Assign archetypes and draw each user's mixtures, change points and drift spans."""
    n_users, c = prior.shape
    arch = np.full(n_users, "stable", dtype=object)
    start = 0
    perm = rng.permutation(n_users)
    for name, share in _ARCHETYPE_SHARE.items():
        k = int(round(share * n_users))
        arch[perm[start : start + k]] = name
        start += k
    arch[(arch == "switch") & (counts < 2 * _MIN_SEG)] = "stable"

    k_sw = np.where(arch == "switch", np.minimum(rng.integers(1, 4, n_users), counts // _MIN_SEG - 1), 0)
    n_mix = np.select([arch == "switch", arch == "stable"], [k_sw + 1, 1], 2)
    mix_off = np.concatenate([[0], np.cumsum(n_mix)])
    mixtures = np.empty((mix_off[-1], c))
    cur = _dirichlet(conc, prior, rng)
    mixtures[mix_off[:-1]] = cur
    for j in range(1, int(n_mix.max())):
        has = n_mix > j
        cur[has] = _different(cur[has], conc[has], prior[has], rng)
        mixtures[mix_off[:-1][has] + j] = cur[has]

    # change points: segments of ≥ _MIN_SEG events, the rest of the history spread uniformly
    extra = counts - (k_sw + 1) * _MIN_SEG
    u = np.sort(np.where(np.arange(3) < k_sw[:, None], rng.random((n_users, 3)), np.inf), axis=1)
    cps = _MIN_SEG * np.arange(1, 4) + np.floor(u * (extra[:, None] + 1)).clip(max=extra[:, None])
    keep = np.arange(3) < k_sw[:, None]
    cp_flat = cps[keep].astype(np.int64)
    cp_off = np.concatenate([[0], np.cumsum(k_sw)])
    ev_off = np.concatenate([[0], np.cumsum(counts)])
    cp_rows = np.repeat(np.arange(n_users), k_sw)
    gr = arch == "gradual"
    gs = np.where(gr, np.floor(counts * rng.uniform(0.1, 0.4, n_users)), -1).astype(np.int64)
    ge = np.where(gr, np.maximum(np.floor(counts * rng.uniform(0.6, 0.9, n_users)), gs + 1), -1).astype(np.int64)
    pe = arch == "periodic"
    wk_len = np.where(pe, counts, 0)
    wk_flat = weekend[np.repeat(pe, counts)]  # the timeline is user-major, so this keeps per-user order
    return SyntheticTruth(
        categories=names,
        user_ids=np.asarray(user_ids, dtype=object),
        archetypes=arch,
        n_events=counts,
        mix_offsets=mix_off.astype(np.int64),
        mixtures=mixtures,
        cp_offsets=cp_off.astype(np.int64),
        change_points_flat=cp_flat,
        change_ts_flat=ts[ev_off[cp_rows] + cp_flat],
        gradual_start=gs,
        gradual_end=ge,
        weekend_offsets=np.concatenate([[0], np.cumsum(wk_len)]).astype(np.int64),
        weekend_flat=wk_flat.astype(bool),
    )


def _dirichlet(conc: np.ndarray, prior: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One mixture per row, Dirichlet(conc · prior), with a little uniform noise so nothing is zero."""
    g = rng.gamma(np.maximum(conc[:, None] * prior, 1e-3)) + 1e-12  # [U, C]
    m = g / g.sum(axis=1, keepdims=True)
    return (1 - _NOISE) * m + _NOISE / prior.shape[1]


def _different(prev: np.ndarray, conc, prior, rng, tries: int = 16, min_tv: float = 0.5) -> np.ndarray:
    """A new mixture per row at total-variation distance ≥ min_tv from `prev` (else the farthest of `tries`)."""
    cand = np.stack([_dirichlet(conc, prior, rng) for _ in range(tries)], axis=1)  # [U, K, C]
    tv = 0.5 * np.abs(cand - prev[:, None, :]).sum(axis=2)  # [U, K]
    ok = tv >= min_tv
    pick = np.where(ok.any(axis=1), ok.argmax(axis=1), tv.argmax(axis=1))
    return cand[np.arange(len(prev)), pick]
