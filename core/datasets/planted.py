"""A second planted-drift generator, shaped unlike `core.datasets.synthetic` (which the interest model and its
forecast were developed on), so that figures on it are not tuned to one generator's quirks.

How it differs (each is a knob with this default):
- 25 categories, one per item; item popularity is one Zipf law over the whole catalogue (exponent 1.3), so
  categories differ widely in size and popularity, and within a category a few items dominate;
- tastes are sparse: each mixture is Dirichlet(0.15) over all categories (typically 1-3 categories carry most of
  the mass), mixed with 2 % uniform browsing; no attribute-driven prior;
- archetypes: 45 % switch once or twice (at uniformly drawn events, ≥ 8 events from either end and from each
  other), 20 % drift linearly between two mixtures over a random middle span, 35 % stable; no weekly rhythm;
- history lengths are log-normal (median 45 events, σ 0.9, at least 16), so a few users have hundreds of events;
- times: gaps drawn from a mixture of minutes (within a sitting) and days (between sittings).

The truth is a `SyntheticTruth` (the same files and mixture rules as the first generator; no periodic users),
saved by `core.datasets.build.ingest_dataset` beside the database.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.datasets.synthetic import DEVICES, SyntheticDataset
from core.datasets.truth import SyntheticTruth
from core.errors import UserInputError

__all__ = ["generate_planted"]

_MIN_SEG = 8  # events between switches and from either end of a history
_NOISE = 0.02


def generate_planted(
    users: int = 800, items: int = 1500, categories: int = 25, seed: int = 0, median_events: int = 45,
    zipf: float = 1.3, sparsity: float = 0.15, shares: tuple[float, float] = (0.45, 0.20),
) -> SyntheticDataset:
    """The log, its users and items, and the planted truth; deterministic by `seed`.

    `shares` are the switch and drift shares of users (the rest are stable).
    """
    if users < 1 or items < categories or categories < 2:
        raise UserInputError("The planted generator needs users ≥ 1, categories ≥ 2 and items ≥ categories.")
    rng = np.random.default_rng(seed)
    params = dict(users=users, items=items, categories=categories, seed=seed, median_events=median_events,
                  zipf=zipf, sparsity=sparsity, shares=list(shares))
    names = [f"topic-{k:02d}" for k in range(categories)]
    cat_of = np.concatenate([np.arange(categories), rng.integers(0, categories, items - categories)])
    rng.shuffle(cat_of)
    pop = (rng.permutation(items) + 1.0) ** -zipf  # one Zipf law over the catalogue
    counts = np.maximum(16, np.round(rng.lognormal(np.log(median_events), 0.9, users))).astype(np.int64)

    u = rng.random(users)
    arch = np.where(u < shares[0], "switch", np.where(u < shares[0] + shares[1], "gradual", "stable")).astype(object)
    arch[(arch == "switch") & (counts < 3 * _MIN_SEG)] = "stable"

    def mixture(n: int) -> np.ndarray:
        m = rng.dirichlet(np.full(categories, sparsity), n)
        return (1 - _NOISE) * m + _NOISE / categories

    mixes, mix_off, cps, cp_off, gs, ge = [], [0], [], [0], [], []
    for r in range(users):
        n = int(counts[r])
        if arch[r] == "switch":
            k = 1 + int(rng.random() < 0.35 and n >= 4 * _MIN_SEG)
            while True:  # switch points ≥ _MIN_SEG apart and from both ends
                pts = np.sort(rng.integers(_MIN_SEG, n - _MIN_SEG + 1, k))
                if k == 1 or np.diff(pts).min() >= _MIN_SEG:
                    break
            cps.extend(int(p) for p in pts)
            m = mixture(k + 1)
        else:
            m = mixture(2 if arch[r] == "gradual" else 1)
        mixes.append(m)
        mix_off.append(mix_off[-1] + len(m))
        cp_off.append(len(cps))
        if arch[r] == "gradual":
            a = int(n * rng.uniform(0.15, 0.45))
            gs.append(a)
            ge.append(max(a + 1, int(n * rng.uniform(0.55, 0.9))))
        else:
            gs.append(-1)
            ge.append(-1)
    ev_off = np.concatenate([[0], np.cumsum(counts)])
    gaps = np.where(rng.random(ev_off[-1]) < 0.7, rng.exponential(300, ev_off[-1]), rng.exponential(3 * 86400, ev_off[-1]))
    starts = rng.integers(1_704_067_200, 1_719_792_000, users)  # users start in the first half of 2024 (UTC)
    ts = np.repeat(starts, counts) + np.concatenate([np.cumsum(gaps[a:b].astype(np.int64) + 1)
                                                     for a, b in zip(ev_off[:-1], ev_off[1:], strict=True)])
    cp_rows = np.repeat(np.arange(users), np.diff(cp_off))
    cps_arr = np.asarray(cps, np.int64)
    truth = SyntheticTruth(
        categories=names,
        user_ids=np.asarray([f"p{r:05d}" for r in range(users)], dtype=object),
        archetypes=arch,
        n_events=counts,
        mix_offsets=np.asarray(mix_off, np.int64),
        mixtures=np.vstack(mixes),
        cp_offsets=np.asarray(cp_off, np.int64),
        change_points_flat=cps_arr,
        change_ts_flat=ts[ev_off[cp_rows] + cps_arr] if len(cps_arr) else np.zeros(0, np.int64),
        gradual_start=np.asarray(gs, np.int64),
        gradual_end=np.asarray(ge, np.int64),
        weekend_offsets=np.zeros(users + 1, np.int64),
        weekend_flat=np.zeros(0, bool),
        meta={"seed": seed, "params": params, "generator": "planted"},
    )
    rows = np.repeat(np.arange(users), counts)
    idx = np.concatenate([np.arange(n) for n in counts])
    q = truth.mixtures_at(rows, idx)  # [N, C]
    cat = np.minimum((rng.random(len(rows))[:, None] > np.cumsum(q, axis=1)).sum(axis=1), categories - 1)
    item = np.empty(len(rows), np.int64)
    for c in range(categories):  # an item of the drawn category, by catalogue popularity
        members = np.flatnonzero(cat_of == c)
        sel = cat == c
        item[sel] = rng.choice(members, int(sel.sum()), p=pop[members] / pop[members].sum())
    order = np.argsort(ts, kind="stable")
    width = len(str(items))
    item_ids = [f"t{k:0{width}d}" for k in range(items)]
    events = pd.DataFrame({
        "user_id": pd.Categorical.from_codes(rows[order], categories=list(truth.user_ids)),
        "item_id": pd.Categorical.from_codes(item[order], categories=item_ids),
        "ts": pd.to_datetime(ts[order], unit="s"),
        "event_type": "view",
        "value": 1.0,
        "device": pd.Categorical.from_codes(rng.integers(0, len(DEVICES), len(rows))[order], categories=list(DEVICES)),
    })
    users_df = pd.DataFrame({"user_id": list(truth.user_ids), "segment": rng.choice(["a", "b", "c"], users)})
    items_df = pd.DataFrame({
        "item_id": item_ids,
        "title": [f"Item {k}" for k in range(items)],
        "categories": [[names[c]] for c in cat_of],
        "primary_category": [names[c] for c in cat_of],
        "popularity": pop,
    })
    return SyntheticDataset(events=events, users=users_df, items=items_df, truth=truth, params=params, name="planted")
