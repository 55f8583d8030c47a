"""Item-side metrics, exposure and calibration on a 3-user example computed by hand (METRICS.md §3).

Catalogue a, b, c, d, e; training popularity a=5, b=3, c=1, d=1, e=0 (total 10); K = 2.
Lists: u1 [a, b], u2 [a, c], u3 [b, d]; item e is never recommended.
Histories: u1 [c, d], u2 [b], u3 [a, c]. Test targets: u1 → a, u2 → c, u3 → e.
Categories: a {X}, b {X, Y}, c {Y}, d {Y}, e {Z}.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from core.errors import UserInputError
from core.fairness import (
    aplt,
    arp,
    category_groups,
    check_recs,
    coverage,
    exposure_table,
    gini,
    history_popularity,
    item_exposure,
    item_summary,
    miscalibration,
    novelty,
    popularity_groups,
    popularity_lift,
    position_weight,
    recommendation_counts,
    short_head,
)

CATALOGUE = ["a", "b", "c", "d", "e"]
POP = pd.Series({"a": 5, "b": 3, "c": 1, "d": 1, "e": 0})
RECS = pd.DataFrame(
    {"user_id": ["u1", "u1", "u2", "u2", "u3", "u3"], "rank": [1, 2, 1, 2, 1, 2], "item_id": list("abacbd")}
)
HIST = pd.DataFrame({"user_id": ["u1", "u1", "u2", "u3", "u3"], "item_id": ["c", "d", "b", "a", "c"]})
TARGETS = pd.DataFrame({"user_id": ["u1", "u2", "u3"], "item_id": ["a", "c", "e"]})
CATS = pd.Series({"a": ["X"], "b": ["X", "Y"], "c": ["Y"], "d": ["Y"], "e": ["Z"]})
V1, V2 = 1.0, 1.0 / math.log2(3.0)  # position weights of ranks 1 and 2


@pytest.fixture
def recs() -> pd.DataFrame:
    return check_recs(RECS)


def test_counts_include_never_recommended_items(recs):
    counts = recommendation_counts(recs, CATALOGUE)
    assert counts.to_dict() == {"a": 2, "b": 2, "c": 1, "d": 1, "e": 0}
    assert coverage(counts) == pytest.approx(4 / 5)


def test_gini_counts_the_never_recommended_item():
    counts = recommendation_counts(check_recs(RECS), CATALOGUE)
    # sorted ascending 0, 1, 1, 2, 2; n = 5; Σ(2j − n − 1)·c_j = 0 − 2 + 0 + 4 + 8 = 10; divided by (n − 1)·Σc = 24
    assert gini(counts) == pytest.approx(10 / 24)
    # dropping the zero (the pitfall) would give 4 / 18: the report must not
    assert gini(counts[counts > 0]) == pytest.approx(4 / 18)
    assert gini(counts) > gini(counts[counts > 0])


def test_gini_extremes():
    assert gini(np.array([3, 3, 3, 3])) == pytest.approx(0.0)
    assert gini(np.array([0, 0, 0, 7])) == pytest.approx(1.0)
    assert math.isnan(gini(np.array([0, 0])))


def test_arp_is_mean_over_users_of_mean_list_popularity(recs):
    # u1 (5 + 3) / 2 = 4, u2 (5 + 1) / 2 = 3, u3 (3 + 1) / 2 = 2
    assert arp(recs, POP) == pytest.approx(3.0)


def test_short_head_holds_80_percent_of_interactions():
    # a (5) + b (3) = 8 of 10 interactions reaches 80 %: the head is {a, b}
    assert short_head(POP) == {"a", "b"}
    assert short_head(pd.Series({"a": 9, "b": 1})) == {"a"}  # a alone holds 90 %
    # the item that crosses 80 % belongs to the head: a holds 70 %, a + b 90 %
    assert short_head(pd.Series({"c": 1, "a": 7, "b": 2})) == {"a", "b"}
    assert short_head(pd.Series({"a": 9, "b": 1}), share=0.95) == {"a", "b"}


def test_aplt_counts_long_tail_slots_over_users_times_k(recs):
    # tail = {c, d, e}; u1 has none, u2 has c, u3 has d: 2 / (3 users · K = 2)
    assert aplt(recs, short_head(POP), k=2) == pytest.approx(2 / 6)


def test_popularity_lift_against_own_histories(recs):
    # histories: u1 mean(1, 1) = 1, u2 3, u3 mean(5, 1) = 3 → 7/3; ARP 3 → lift (3 − 7/3) / (7/3) = 2/7
    assert history_popularity(HIST, POP) == pytest.approx(7 / 3)
    assert popularity_lift(recs, HIST, POP) == pytest.approx(2 / 7)


def test_novelty_is_mean_self_information(recs):
    info = {i: -math.log2(POP[i] / 10) for i in "abcd"}
    per_user = [(info["a"] + info["b"]) / 2, (info["a"] + info["c"]) / 2, (info["b"] + info["d"]) / 2]
    assert novelty(recs, POP) == pytest.approx(sum(per_user) / 3)


def test_item_summary_collects_every_number(recs):
    s = item_summary(recs, POP, HIST, CATALOGUE, k=2)
    assert s["users"] == 3 and s["catalogue"] == 5 and s["short_head_items"] == 2
    assert s["gini"] == pytest.approx(10 / 24)
    assert s["coverage"] == pytest.approx(0.8)
    assert s["aplt"] == pytest.approx(1 / 3)


def test_check_recs_rejects_bad_tables():
    with pytest.raises(UserInputError, match="lacks the column"):
        check_recs(RECS.drop(columns="rank"))
    with pytest.raises(UserInputError, match="whole numbers"):
        check_recs(RECS.assign(rank=[0, 1, 1, 2, 1, 2]))
    with pytest.raises(UserInputError, match="whole numbers"):
        check_recs(RECS.assign(rank=[1.5, 2, 1, 2, 1, 2]))
    with pytest.raises(UserInputError, match="same rank"):
        check_recs(RECS.assign(rank=[1, 1, 1, 2, 1, 2]))
    with pytest.raises(UserInputError, match="same item twice"):
        check_recs(RECS.assign(item_id=list("aaacbd")))
    with pytest.raises(UserInputError, match="not in the catalogue"):
        recommendation_counts(check_recs(RECS), ["a", "b", "c"])


def test_item_exposure_is_position_discounted(recs):
    assert position_weight(np.array([1, 2, 3])) == pytest.approx([1.0, V2, 0.5])
    exp = item_exposure(recs, CATALOGUE)
    assert exp.to_dict() == pytest.approx({"a": 2 * V1, "b": V2 + V1, "c": V2, "d": V2, "e": 0.0})


def test_exposure_by_category_splits_multi_category_items(recs):
    table = exposure_table(recs, category_groups(CATS, CATALOGUE), CATALOGUE, TARGETS, grouping="category")
    rows = {r.group: r for r in table.rows}
    total = 2 * V1 + (V1 + V2) + 2 * V2
    x = 2 * V1 + 0.5 * (V1 + V2)  # a, half of b
    y = 0.5 * (V1 + V2) + 2 * V2  # half of b, c, d
    assert rows["X"].items == pytest.approx(1.5) and rows["Y"].items == pytest.approx(2.5)
    assert rows["X"].exposure == pytest.approx(x / 1.5)
    assert rows["Y"].exposure == pytest.approx(y / 2.5)
    assert rows["Z"].exposure == 0.0
    assert rows["X"].exposure_share == pytest.approx(x / total)
    assert sum(r.exposure_share for r in table.rows) == pytest.approx(1.0)
    # one target in each group: relevance 1/3 each
    assert [rows[g].relevance for g in "XYZ"] == pytest.approx([1 / 3] * 3)
    assert rows["X"].exposure_to_relevance == pytest.approx((x / total) * 3)
    assert table.parity_ratio == 0.0  # Z is never shown


def test_exposure_short_head_against_long_tail(recs):
    table = exposure_table(recs, popularity_groups(POP, CATALOGUE), CATALOGUE, TARGETS, grouping="popularity")
    rows = {r.group: r for r in table.rows}
    head, tail = 2 * V1 + V1 + V2, 2 * V2  # a, b against c, d, e
    assert rows["short head"].exposure == pytest.approx(head / 2)
    assert rows["long tail"].exposure == pytest.approx(tail / 3)
    assert table.parity_ratio == pytest.approx((tail / 3) / (head / 2))
    # relevance: a is head (1 target), c and e are tail (2 targets)
    head_ratio = (head / (head + tail)) / (1 / 3)
    tail_ratio = (tail / (head + tail)) / (2 / 3)
    assert rows["long tail"].relevance == pytest.approx(2 / 3)
    assert table.treatment_ratio == pytest.approx(tail_ratio / head_ratio)


def test_popularity_bins_split_the_catalogue_evenly():
    groups = popularity_groups(POP, CATALOGUE, n_bins=2).set_index("item_id")["group"]
    assert groups.to_dict() == {"a": "bin 1/2", "b": "bin 1/2", "c": "bin 1/2", "d": "bin 2/2", "e": "bin 2/2"}


def test_miscalibration_is_kl_history_to_recommendations(recs):
    ckl = miscalibration(HIST, recs, CATS)
    # u1: p = {Y: 1}; q = {X: .75, Y: .25}; q̃(Y) = .99·.25 + .01·1 = .2575
    assert ckl["u1"] == pytest.approx(math.log(1 / 0.2575))
    # u2: p = q = {X: .5, Y: .5} → 0
    assert ckl["u2"] == pytest.approx(0.0, abs=1e-12)
    # u3: p = {X: .5, Y: .5}; q = {X: .25, Y: .75}
    qx, qy = 0.99 * 0.25 + 0.01 * 0.5, 0.99 * 0.75 + 0.01 * 0.5
    assert ckl["u3"] == pytest.approx(0.5 * math.log(0.5 / qx) + 0.5 * math.log(0.5 / qy))
    # the reverse direction KL(rec ‖ history) for u1 would be .75·ln(.75/.0075) + .25·ln(.25/.9925) ≈ 3.11
    reverse = 0.75 * math.log(0.75 / (0.01 * 0.75)) + 0.25 * math.log(0.25 / (0.99 + 0.01 * 0.25))
    assert abs(ckl["u1"] - reverse) > 1.0


def test_miscalibration_edge_cases(recs):
    # a list with no categorised item: q = 0, q̃ = α·p → ln(1/α); a history with none: undefined
    cats = CATS.drop(["a", "b"])
    ckl = miscalibration(HIST, recs[recs["user_id"] == "u1"], cats)
    assert ckl["u1"] == pytest.approx(math.log(100))
    ckl = miscalibration(HIST[HIST["user_id"] != "u2"], recs, CATS)
    assert math.isnan(ckl["u2"])


@pytest.mark.parametrize("chunk", [1 << 20, 7])
def test_category_distribution_matches_the_joined_table_definition(chunk, monkeypatch):
    """The sparse computation equals the plain definition (join events to item weights, sum per user and
    category, normalise), with repeated events, multi-category items and items without a category."""
    import core.fairness.calibration as calibration
    from core.fairness.calibration import category_distribution, item_category_weights

    monkeypatch.setattr(calibration, "_CHUNK_ROWS", chunk)  # 7: users' rows span several chunks
    rng = np.random.default_rng(0)
    cats = pd.Series({f"i{j}": [f"g{c}" for c in rng.choice(4, rng.integers(0, 3), replace=False)] for j in range(30)})
    w = item_category_weights(cats)
    events = pd.DataFrame({"user_id": rng.choice([f"u{k}" for k in range(12)], 400),
                           "item_id": rng.choice(list(cats.index) + ["unknown"], 400)})
    e = events.merge(w, on="item_id", how="inner")
    want = e.groupby(["user_id", "category"], sort=True)["weight"].sum().rename("share").reset_index()
    want["share"] = want["share"] / want.groupby("user_id")["share"].transform("sum")
    got = category_distribution(events, w)
    pd.testing.assert_frame_equal(got.astype({"user_id": object, "category": object}),
                                  want.astype({"user_id": object, "category": object}), check_exact=False)
    assert category_distribution(events.iloc[:0], w).empty


@pytest.mark.parametrize("chunk", [1 << 20, 5])
def test_history_popularity_in_chunks_equals_the_definition(chunk, monkeypatch):
    """Chunks of rows (5: users' rows span several chunks) give the plain mean of per-user means."""
    import core.fairness.items as items_mod

    monkeypatch.setattr(items_mod, "_CHUNK_ROWS", chunk)
    rng = np.random.default_rng(5)
    pop = pd.Series({f"i{j}": int(rng.integers(0, 20)) for j in range(15)})
    hist = pd.DataFrame({"user_id": [f"u{u}" for u in rng.integers(0, 9, 120)],
                         "item_id": [f"i{j}" for j in rng.integers(0, 18, 120)]})  # i15..i17: no pop → 0
    per_user = hist.assign(p=hist["item_id"].map(pop).fillna(0)).groupby("user_id")["p"].mean()
    assert history_popularity(hist, pop) == pytest.approx(per_user.mean())
    some = ["u1", "u4", "u7", "nobody"]
    assert history_popularity(hist, pop, some) == pytest.approx(per_user[per_user.index.isin(some)].mean())
    assert np.isnan(history_popularity(hist, pop, ["nobody"]))
    assert np.isnan(history_popularity(hist.iloc[:0], pop))


def test_exposure_parity_leaves_out_the_unknown_category_and_says_so(recs):
    # e is the only "unknown" item and is never shown: counted, it would set the parity to 0 (as Z does above);
    # left out, the parity compares X and Y only, and the table still lists the unknown row.
    cats = CATS.copy()
    cats["e"] = ["unknown"]
    table = exposure_table(recs, category_groups(cats, CATALOGUE), CATALOGUE, TARGETS, grouping="category")
    rows = {r.group: r for r in table.rows}
    x, y = (2 * V1 + 0.5 * (V1 + V2)) / 1.5, (0.5 * (V1 + V2) + 2 * V2) / 2.5
    assert rows["unknown"].exposure == 0.0 and table.left_out == ("unknown",)
    assert table.parity_ratio == pytest.approx(min(x, y) / max(x, y))
    none = exposure_table(recs, category_groups(CATS.drop("e"), CATALOGUE), CATALOGUE, TARGETS)
    assert none.left_out == ("none",) and none.parity_ratio == pytest.approx(min(x, y) / max(x, y))
