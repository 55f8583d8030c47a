"""The second planted generator (core.datasets.planted) and the single-category synthetic variant."""

from __future__ import annotations

import numpy as np

from core.datasets.planted import generate_planted
from core.datasets.synthetic import generate


def test_planted_log_matches_its_truth():
    ds = generate_planted(users=60, items=200, categories=25, seed=3)
    again = generate_planted(users=60, items=200, categories=25, seed=3)
    assert ds.events.equals(again.events)  # deterministic by seed
    t = ds.truth
    assert set(t.archetypes) <= {"switch", "gradual", "stable"} and "switch" in set(t.archetypes)
    counts = ds.events.groupby("user_id", observed=True).size()
    assert counts.min() >= 16 and int(counts.sum()) == int(t.n_events.sum()) == len(ds.events)
    assert all(len(c) == 1 for c in ds.items["categories"])  # one category per item
    for u in t.user_ids:
        q = t.user_mixtures(u)
        np.testing.assert_allclose(q.sum(axis=1), 1.0)
        cps = t.change_points(u)
        if t.archetype(u) == "switch":
            n = len(q)
            assert cps and min(cps) >= 8 and max(cps) <= n - 8 and all(b - a >= 8 for a, b in zip(cps, cps[1:], strict=False))
            assert not np.allclose(q[cps[0] - 1], q[cps[0]])  # the mixture changes exactly at the switch
        else:
            assert cps == []
    ts = ds.events.sort_values("ts").groupby("user_id", observed=True)["ts"]
    assert ts.apply(lambda s: s.is_monotonic_increasing and s.is_unique).all()  # per-user order = truth index order


def test_single_category_variant_keeps_the_draws():
    multi = generate(users=40, items=60, events=1200, categories=5, seed=4)
    single = generate(users=40, items=60, events=1200, categories=5, seed=4, single_category=True)
    assert single.events.equals(multi.events)
    assert [c[0] for c in multi.items["categories"]] == [c[0] for c in single.items["categories"]]
    assert all(len(c) == 1 for c in single.items["categories"])
    assert any(len(c) > 1 for c in multi.items["categories"])
