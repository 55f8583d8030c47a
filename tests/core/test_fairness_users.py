"""User-side fairness: per-user quality, fairlearn groupings against manual group means, bootstrap
intervals, age bands, quartiles and derived groups."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame

from core.errors import UserInputError
from core.fairness import age_band, derive_user_groups, grouped_metrics, per_user_quality, user_group_table
from core.fairness.groups import label, quartile_labels

# u1 rank 1, u2 rank 3, u3 rank 12 (a miss at K = 10), u4 rank 2, u5 no rank (a miss)
EVAL = pd.DataFrame({"user_id": ["u1", "u2", "u3", "u4", "u5"], "rank": [1, 3, 12, 2, None]})
GENDER = pd.DataFrame({"gender": ["F", "M", "F", "M", "F"]}, index=pd.Index(EVAL["user_id"], name="user_id"))


def test_per_user_quality_by_hand():
    q = per_user_quality(EVAL, k=10)
    assert q["NDCG@10"].tolist() == pytest.approx([1.0, 0.5, 0.0, 1 / math.log2(3), 0.0])
    assert q["HR@10"].tolist() == [1.0, 1.0, 0.0, 1.0, 0.0]
    q2 = per_user_quality(EVAL, k=2)
    assert q2["HR@2"].tolist() == [1.0, 0.0, 0.0, 1.0, 0.0]


def test_per_user_quality_rejects_bad_tables():
    with pytest.raises(UserInputError, match="start at 1"):
        per_user_quality(EVAL.assign(rank=[0, 1, 2, 3, 4]))
    with pytest.raises(UserInputError, match="more than one row"):
        per_user_quality(pd.concat([EVAL, EVAL.iloc[:1]]))
    with pytest.raises(UserInputError, match="columns user_id and rank"):
        per_user_quality(EVAL.drop(columns="rank"))


def test_grouped_metrics_match_manual_group_means():
    q = per_user_quality(EVAL, k=10)
    rows, gaps = grouped_metrics(q, GENDER, n_boot=None)
    by = {(r.attribute, r.group): r for r in rows}
    f_ndcg = (1.0 + 0.0 + 0.0) / 3
    m_ndcg = (0.5 + 1 / math.log2(3)) / 2
    assert by[("all", "all")].size == 5
    assert by[("all", "all")].values["NDCG@10"] == pytest.approx(q["NDCG@10"].mean())
    assert by[("gender", "F")].size == 3 and by[("gender", "M")].size == 2
    assert by[("gender", "F")].values["NDCG@10"] == pytest.approx(f_ndcg)
    assert by[("gender", "M")].values["NDCG@10"] == pytest.approx(m_ndcg)
    assert by[("gender", "F")].values["HR@10"] == pytest.approx(1 / 3)
    assert by[("gender", "M")].values["HR@10"] == pytest.approx(1.0)
    gap = next(g for g in gaps if g.metric == "NDCG@10")
    assert gap.difference == pytest.approx(m_ndcg - f_ndcg)
    assert gap.ratio == pytest.approx(f_ndcg / m_ndcg)
    assert (gap.best_group, gap.worst_group, gap.groups) == ("M", "F", 2)
    assert math.isnan(by[("gender", "F")].low.get("NDCG@10", math.nan))


def test_grouped_metrics_agree_with_a_plain_metricframe():
    rng = np.random.default_rng(3)
    values = pd.DataFrame({"m": rng.random(60)}, index=pd.Index([f"u{i}" for i in range(60)], name="user_id"))
    groups = pd.DataFrame({"g": rng.choice(["a", "b", "c"], 60)}, index=values.index)
    mf = MetricFrame(
        metrics=lambda y_t, y_p: float(np.mean(y_t)), y_true=values["m"].to_numpy(), y_pred=values["m"].to_numpy(),
        sensitive_features=groups["g"].to_numpy(),
    )
    rows, gaps = grouped_metrics(values, groups, n_boot=None)
    manual = values["m"].groupby(groups["g"]).mean()
    for r in rows[1:]:
        assert r.values["m"] == pytest.approx(manual[r.group])
        assert r.values["m"] == pytest.approx(mf.by_group[r.group])
    assert gaps[0].difference == pytest.approx(mf.difference()) == pytest.approx(manual.max() - manual.min())
    assert gaps[0].ratio == pytest.approx(mf.ratio()) == pytest.approx(manual.min() / manual.max())


@pytest.mark.parametrize("cells", [1 << 22, 3 * 80])  # one pass, and 3 resamples at a time (a ragged last one)
def test_vectorised_bootstrap_draws_fairlearns_resamples(monkeypatch, cells):
    import core.fairness.users as users_mod

    monkeypatch.setattr(users_mod, "_BOOT_CELLS", cells)
    rng = np.random.default_rng(0)
    n = 80
    values = pd.DataFrame(
        {"NDCG@10": rng.random(n), "HR@10": (rng.random(n) > 0.5).astype(float)},
        index=pd.Index([f"u{i}" for i in range(n)], name="user_id"),
    )
    values.iloc[3, 0] = np.nan  # a user without a value is left out of that metric only
    groups = pd.DataFrame(
        {"gender": rng.choice(["F", "M"], n), "occupation": rng.choice(["x", "y", "z", "w"], n, p=[0.5, 0.3, 0.15, 0.05])},
        index=values.index,
    )
    fast, fast_gaps = grouped_metrics(values, groups, n_boot=25, random_state=7, bootstrap="vectorised")
    slow, slow_gaps = grouped_metrics(values, groups, n_boot=25, random_state=7, bootstrap="fairlearn")
    assert [(r.attribute, r.group, r.size) for r in fast] == [(r.attribute, r.group, r.size) for r in slow]
    for a, b in zip(fast, slow, strict=True):
        assert a.values == pytest.approx(b.values)
        assert a.low == pytest.approx(b.low) and a.high == pytest.approx(b.high)
        assert all(a.low[m] <= a.high[m] for m in a.low)
    for a, b in zip(fast_gaps, slow_gaps, strict=True):
        assert (a.difference_low, a.difference_high, a.ratio_low, a.ratio_high) == pytest.approx(
            (b.difference_low, b.difference_high, b.ratio_low, b.ratio_high)
        )
    # another seed gives other intervals; the same seed the same ones
    other, _ = grouped_metrics(values, groups, n_boot=25, random_state=8)
    again, _ = grouped_metrics(values, groups, n_boot=25, random_state=7)
    assert other[0].low != fast[0].low and again[0].low == fast[0].low


def test_interval_narrows_with_more_users():
    rng = np.random.default_rng(1)

    def width(n: int) -> float:
        v = pd.DataFrame({"m": rng.random(n)}, index=pd.Index([str(i) for i in range(n)], name="user_id"))
        rows, _ = grouped_metrics(v, pd.DataFrame(index=v.index), n_boot=100)
        return rows[0].high["m"] - rows[0].low["m"]

    assert width(2000) < width(50) / 3


def test_age_bands():
    cases = {"7": "under 18", "17": "under 18", "18": "18-24", "24": "18-24", "25": "25-34", "35": "35-44",
             "45": "45-49", "49": "45-49", "50": "50-55", "55": "50-55", "56": "56+", "73": "56+"}
    assert {a: age_band(a) for a in cases} == cases
    # MovieLens-1M age codes
    assert [age_band(c) for c in (1, 18, 25, 35, 45, 50, 56)] == [
        "under 18", "18-24", "25-34", "35-44", "45-49", "50-55", "56+"]
    assert age_band("n/a") == "unknown" and age_band(None) == "unknown" and age_band(-3) == "unknown"


def test_labels_treat_every_missing_value_alike():
    assert [label(v) for v in (None, np.nan, pd.NA, "", "F", 3)] == ["unknown"] * 4 + ["F", "3"]


def test_quartile_labels_cut_at_quantiles():
    values = pd.Series([1, 2, 3, 4, 5, 6, 7, 8], index=list("abcdefgh"), dtype=float)
    labels = quartile_labels(values, "events")
    assert labels.tolist() == ["Q1 (1-2 events)"] * 2 + ["Q2 (3-4 events)"] * 2 + ["Q3 (5-6 events)"] * 2 + [
        "Q4 (7-8 events)"] * 2
    tied = quartile_labels(pd.Series([0, 0, 0, 0, 0, 0, 5, 9], dtype=float), "days")
    assert tied.nunique() < 4 and tied.iloc[0] == tied.iloc[5]  # equal values share a quartile
    assert quartile_labels(pd.Series([3.0, 3.0]), "events").tolist() == ["Q1 (3 events)"] * 2
    assert quartile_labels(pd.Series([2.0, None]), "events").tolist() == ["Q1 (2 events)", "unknown"]


def test_quartile_labels_never_print_an_empty_range():
    # tenures of minutes: days printed to one decimal all read "0.0-0.0 days"; in hours they are told apart
    minutes = pd.Series([0.001, 0.002, 0.01, 0.02, 0.2, 0.3, 3.0, 9.0])
    labels = quartile_labels(minutes, "days").tolist()
    assert labels[0] == "Q1 (0.02-0.05 hours)" and labels[2] == "Q2 (0.2-0.5 hours)"
    assert labels[4] == "Q3 (4.8-7.2 hours)" and labels[6] == "Q4 (3-9 days)"
    assert quartile_labels(pd.Series([1.0, 1.0]), "events").tolist() == ["Q1 (1 event)"] * 2


def test_derived_groups_from_histories():
    ts = pd.to_datetime
    hist = pd.DataFrame(
        {
            "user_id": ["a"] * 1 + ["b"] * 2 + ["c"] * 3 + ["d"] * 4,
            "item_id": list("xxyxyzwxyz"),
            "ts": ts(["2024-03-01", "2024-01-01", "2024-03-01", "2024-02-20", "2024-02-25", "2024-03-01",
                      "2023-01-01", "2023-06-01", "2024-01-01", "2024-03-01"]),
        }
    )
    g = derive_user_groups(hist, as_of=pd.Timestamp("2024-03-02")).set_index("user_id")
    assert g["activity_quartile"].tolist() == ["Q1 (1 event)", "Q2 (2 events)", "Q3 (3 events)", "Q4 (4 events)"]
    # tenure: a 1 day, b 61 days, c 11 days, d 426 days
    assert g["new_vs_returning"].tolist() == ["new", "returning", "new", "returning"]
    assert g.loc["a", "tenure_quartile"].startswith("Q1") and g.loc["d", "tenure_quartile"].startswith("Q4")


def test_user_group_table_bands_ages_and_rejects_unknown_attributes():
    attrs = pd.DataFrame({"user_id": ["u1", "u2", "u3"], "age": ["29", "61", None], "gender": ["F", "M", ""]})
    table = user_group_table(["u1", "u2", "u3", "u4"], attrs, None)
    assert list(table.columns) == ["age_band", "gender"]
    assert table["age_band"].tolist() == ["25-34", "56+", "unknown", "unknown"]
    assert table["gender"].tolist() == ["F", "M", "unknown", "unknown"]
    assert list(user_group_table(["u1"], attrs, None, by=["gender"]).columns) == ["gender"]
    with pytest.raises(UserInputError, match="Unknown user attribute 'region'"):
        user_group_table(["u1"], attrs, None, by=["region"])


def test_small_groups_keep_their_row_but_are_left_out_of_the_gap():
    # a: 40 users at 0.5, b: 35 users at 0.3, tiny: 3 users at 1.0. With every group counted the tiny group decides
    # the gap (1.0 - 0.3); with the minimum size of 30 the gap is a vs b only (0.5 - 0.3), the tiny group says so.
    idx = pd.Index([f"u{i}" for i in range(78)], name="user_id")
    values = pd.DataFrame({"m": [0.5] * 40 + [0.3] * 35 + [1.0] * 3}, index=idx)
    groups = pd.DataFrame({"g": ["a"] * 40 + ["b"] * 35 + ["tiny"] * 3}, index=idx)
    rows, all_gaps = grouped_metrics(values, groups, n_boot=None)
    assert all_gaps[0].difference == pytest.approx(0.7) and all_gaps[0].best_group == "tiny"
    rows, gaps = grouped_metrics(values, groups, n_boot=20, min_group_size=30)
    by = {r.group: r for r in rows}
    assert by["tiny"].size == 3 and by["tiny"].values["m"] == pytest.approx(1.0)  # still reported
    gap = gaps[0]
    assert gap.difference == pytest.approx(0.2) and gap.ratio == pytest.approx(0.3 / 0.5)
    assert (gap.best_group, gap.worst_group, gap.groups, gap.left_out) == ("a", "b", 2, 1)
    # every resample has a = 0.5 and b = 0.3 exactly, so the interval of the gap is the point (the tiny group's
    # 1.0 would have pulled it up)
    assert gap.difference_low == pytest.approx(0.2) and gap.difference_high == pytest.approx(0.2)
    slow, slow_gaps = grouped_metrics(values, groups, n_boot=20, min_group_size=30, bootstrap="fairlearn")
    assert slow_gaps[0].difference_high == pytest.approx(0.2)


def test_no_gap_without_two_groups_large_enough():
    idx = pd.Index([f"u{i}" for i in range(35)], name="user_id")
    values = pd.DataFrame({"m": [0.5] * 32 + [0.1] * 3}, index=idx)
    groups = pd.DataFrame({"g": ["big"] * 32 + ["small"] * 3}, index=idx)
    _, gaps = grouped_metrics(values, groups, n_boot=10, min_group_size=30)
    assert gaps[0].groups == 1 and gaps[0].left_out == 1
    assert math.isnan(gaps[0].difference) and math.isnan(gaps[0].difference_high)


def test_default_group_means_equal_metricframes_and_fairlearn_is_not_imported():
    """The default path's group means (pandas) are MetricFrame's, NaN users left out, an all-NaN group NaN; and
    importing core.fairness does not import fairlearn (~0.8 s of CPU on the Fairness page's first open)."""
    import subprocess
    import sys

    rng = np.random.default_rng(5)
    a = rng.random(50)
    a[rng.random(50) < 0.3] = np.nan
    values = pd.DataFrame({"a": a, "b": rng.random(50)}, index=pd.Index([f"u{i}" for i in range(50)], name="user_id"))
    groups = pd.DataFrame({"g": rng.choice(["x", "y", "z"], 50), "h": ["p"] * 49 + ["q"]}, index=values.index)
    values.loc[groups["h"] == "q", "a"] = np.nan  # a one-user group with no value for "a"
    fast, fast_gaps = grouped_metrics(values, groups, n_boot=None)
    slow, slow_gaps = grouped_metrics(values, groups, n_boot=None, bootstrap="fairlearn")
    assert [(r.attribute, r.group, r.size) for r in fast] == [(r.attribute, r.group, r.size) for r in slow]
    for f, s in zip(fast, slow, strict=True):
        assert f.values.keys() == s.values.keys()
        for m in f.values:
            assert f.values[m] == pytest.approx(s.values[m], nan_ok=True, rel=1e-12)
    assert math.isnan(next(r for r in fast if r.group == "q").values["a"])
    assert [(g.attribute, g.metric, g.best_group, g.worst_group) for g in fast_gaps] == \
        [(g.attribute, g.metric, g.best_group, g.worst_group) for g in slow_gaps]
    code = "import sys, core.fairness; print('fairlearn' in sys.modules, 'sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
