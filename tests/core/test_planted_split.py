"""The entropy reference for split targets: the planted mixture pushed through the item→category split
(core.trajectory.planted.split_projection)."""

from __future__ import annotations

import numpy as np

from core.datasets.synthetic import generate
from core.datasets.truth import SyntheticTruth
from core.trajectory.planted import split_projection


def test_projection_is_the_expected_split_of_an_item_drawn_under_each_category():
    ds = generate(users=40, items=60, events=6000, categories=4, seed=3)
    cats = ds.categories
    M = split_projection(ds.truth, cats)
    np.testing.assert_allclose(M.sum(axis=1), 1.0, rtol=1e-12)  # every row is a distribution
    # by hand from the catalogue: each item spreads its popularity equally over its categories
    items = ds.items.explode("categories")
    share = items["popularity"] / items.groupby("item_id")["categories"].transform("size")
    hand = share.groupby([items["primary_category"], items["categories"]]).sum().unstack(fill_value=0.0)
    np.testing.assert_allclose(M, hand.loc[cats, cats].to_numpy(), rtol=1e-12)
    assert (np.diag(M) < 1).any()  # some items have a second category: not the identity
    # the known answer: the expected split of each event given its planted mixture q is q·M, so the mean of
    # (split − q·M) over all events is sampling noise (0.005 a category here; 0.15 with the identity for M)
    w = {i: np.isin(cats, cs) / len(cs) for i, cs in zip(ds.items["item_id"], ds.items["categories"], strict=True)}
    resid = []
    for uid, ev in ds.events.groupby("user_id", sort=False, observed=True):
        q = ds.truth.user_mixtures(str(uid))[:, [ds.truth.categories.index(c) for c in cats]]
        y = np.stack([w[i] for i in ev.sort_values("ts", kind="stable")["item_id"]])
        resid.append(y - q @ M)
    assert np.abs(np.concatenate(resid).mean(axis=0)).max() < 0.02


def test_single_category_logs_project_to_the_identity():
    single = generate(users=10, items=20, events=200, categories=3, seed=1, single_category=True)
    np.testing.assert_array_equal(split_projection(single.truth, single.categories), np.eye(3))
    planted = SyntheticTruth.__new__(SyntheticTruth)
    object.__setattr__(planted, "meta", {"generator": "planted", "params": {"categories": 5}})
    np.testing.assert_array_equal(split_projection(planted, ["a", "b", "c", "d", "e"]), np.eye(5))
    other = SyntheticTruth.__new__(SyntheticTruth)
    object.__setattr__(other, "meta", {"generator": "someone-else", "params": {"x": 1}})
    assert split_projection(other, ["a"]) is None
