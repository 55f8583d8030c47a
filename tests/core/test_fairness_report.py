"""The whole report on hand-made inputs: every section is there, numbers agree with the parts, JSON is complete."""

from __future__ import annotations

import json
import math
from dataclasses import fields

import pandas as pd
import pytest

from cli.common import to_jsonable
from core.errors import UserInputError
from core.fairness import FairnessInputs, ItemReport, fairness_report, popularity_recommender

TS = pd.to_datetime
EVENTS = pd.DataFrame(
    {
        "user_id": ["u1", "u2", "u3", "u3", "u1", "u2", "u1", "u4", "u4", "u2", "u3", "u4"],
        "item_id": ["c", "b", "a", "c", "d", "a", "a", "b", "c", "c", "e", "d"],
        "ts": TS(["2024-01-03", "2024-01-04", "2024-01-05", "2024-01-06", "2024-01-20", "2024-02-02", "2024-02-03",
                  "2024-02-05", "2024-02-06", "2024-03-01", "2024-03-02", "2024-03-04"]),
    }
)
RECS = pd.DataFrame(
    {"user_id": ["u1", "u1", "u2", "u2", "u3", "u3", "u4", "u4"], "rank": [1, 2, 1, 2, 1, 2, 1, 2],
     "item_id": list("abacbdae"), "score": [0.9, 0.8, 0.9, 0.7, 0.6, 0.5, 0.4, 0.3]}
)
EVAL = pd.DataFrame({"user_id": ["u1", "u2", "u3", "u4"], "rank": [1, 3, 12, 2]})
ATTRS = pd.DataFrame(
    {"user_id": ["u1", "u2", "u3", "u4"], "gender": ["F", "M", "F", "M"], "age": ["23", "40", "31", "17"],
     "zip": ["10001", "10002", "10003", "10004"]}
)
CATS = pd.Series({"a": ["X"], "b": ["X", "Y"], "c": ["Y"], "d": ["Y"], "e": ["Z"]})


def inputs(**kw) -> FairnessInputs:
    base = dict(
        recs=RECS,
        eval_users=EVAL,
        histories=EVENTS,
        pop=EVENTS["item_id"].value_counts(),
        item_categories=CATS,
        catalogue=list("abcdef"),
        user_attributes=ATTRS,
        targets=EVENTS.groupby("user_id").tail(1)[["user_id", "item_id", "ts"]],
        item_attributes=pd.DataFrame({"item_id": list("abcdef"), "studio": ["s1", "s1", "s2", "s2", "s2", None]}),
        events=EVENTS,
    )
    base.update(kw)
    return FairnessInputs(**base)


def test_report_sections_and_json():
    report = fairness_report(inputs(), k=2, n_boot=20, recommend_fn=popularity_recommender)
    d = json.loads(json.dumps(to_jsonable(report.to_dict())))
    assert set(d) >= {"users", "items", "calibration", "over_time", "user_gaps", "settings"}
    row = d["users"][0]
    assert set(row) >= {"attribute", "group", "size", "NDCG@2", "HR@2", "NDCG@2_low", "NDCG@2_high"}
    assert (row["attribute"], row["group"], row["size"]) == ("all", "all", 4)
    # default attributes: raw ones with at most 50 groups, ages as bands (never raw) and the derived ones
    attrs = {r["attribute"] for r in d["users"]}
    assert {"gender", "age_band", "activity_quartile", "tenure_quartile", "new_vs_returning"} <= attrs
    assert "age" not in attrs
    for key in ("gini", "coverage", "arp", "aplt", "popularity_lift", "novelty"):
        assert d["items"][key] is not None
    assert d["items"]["coverage"] == pytest.approx(5 / 6)  # f is never recommended
    assert {t["grouping"] for t in d["items"]["exposure"]} == {"category", "popularity"}
    # the JSON is the ItemReport itself: every field, in order, and the summary numbers it was built from
    assert list(d["items"]) == [f.name for f in fields(ItemReport)]
    assert d["items"]["users"] == report.items.users == 4 and d["items"]["k"] == 2
    assert d["items"]["exposure"][0]["rows"][0] == to_jsonable(vars(report.items.exposure[0].rows[0]))
    assert d["calibration"]["users"] == 4 and d["calibration"]["alpha"] == 0.01
    assert [w["start"] for w in d["over_time"]] == ["2024-01-01T00:00:00Z", "2024-02-01T00:00:00Z"]


def test_report_groups_match_per_user_table():
    report = fairness_report(inputs(), k=10, by=["gender"], n_boot=None)
    per = report.per_user
    assert list(per.index) == ["u1", "u2", "u3", "u4"]
    f = report.users[1]
    assert (f.attribute, f.group, f.size) == ("gender", "F", 2)
    assert f.values["NDCG@10"] == pytest.approx(per.loc[per["gender"] == "F", "NDCG@10"].mean())
    assert f.values["NDCG@10"] == pytest.approx(0.5)  # u1 rank 1 → 1, u3 rank 12 → 0
    assert report.calibration.mean == pytest.approx(per["C_KL"].mean())
    by_gender = {r.group: r.values["C_KL"] for r in report.calibration.by_group if r.attribute == "gender"}
    assert by_gender["F"] == pytest.approx(per.loc[["u1", "u3"], "C_KL"].mean())
    assert report.over_time == []


def test_lists_are_cut_to_k():
    # pop: c 4, a 3, b 2, d 2, e 1 of 12 → the short head c, a, b, d holds 11/12 (c + a + b = 9/12 < 80 %)
    top1 = fairness_report(inputs(), k=1, by=["gender"], n_boot=None)
    assert top1.items.coverage == pytest.approx(2 / 6)  # top-1: a and b
    assert top1.items.aplt == 0.0
    top2 = fairness_report(inputs(), k=2, by=["gender"], n_boot=None)
    assert top2.items.short_head_items == 4
    assert top2.items.aplt == pytest.approx(1 / (4 * 2))  # u4's e is the only long-tail slot


def test_exposure_by_item_attribute_and_bins():
    report = fairness_report(inputs(), k=2, by=["gender"], n_boot=None,
                             exposure_by=("attribute:studio", "popularity:3"))
    studio, bins = report.items.exposure
    assert {r.group for r in studio.rows} == {"s1", "s2", "unknown"}
    assert {r.group for r in bins.rows} == {"bin 1/3", "bin 2/3", "bin 3/3"}


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        (dict(by=["region"]), "Unknown user attribute 'region'"),
        (dict(exposure_by=("attribute:colour",)), "Unknown item attribute 'colour'"),
        (dict(exposure_by=("popularity:x",)), "positive whole number"),
        (dict(exposure_by=("brand",)), "Unknown item grouping 'brand'"),
        (dict(k=0), "positive integer"),
    ],
)
def test_clear_errors(kw, message):
    with pytest.raises(UserInputError, match=message):
        fairness_report(inputs(), n_boot=None, **kw)


def test_trends_need_the_log():
    with pytest.raises(UserInputError, match="need the event log"):
        fairness_report(inputs(events=None), n_boot=None, recommend_fn=popularity_recommender)


def test_zip_codes_are_left_out_by_default_but_can_be_asked_for():
    many = pd.DataFrame({"user_id": [f"u{i}" for i in range(60)], "zip": [str(10000 + i) for i in range(60)],
                         "gender": ["F", "M"] * 30})
    ev = pd.DataFrame({"user_id": many["user_id"], "item_id": "a", "ts": TS("2024-01-01")})
    inp = inputs(user_attributes=many, eval_users=pd.DataFrame({"user_id": many["user_id"], "rank": 1}),
                 histories=ev, recs=RECS, targets=None)
    report = fairness_report(inp, n_boot=None)
    assert "zip" not in {r.attribute for r in report.users}
    report = fairness_report(inp, by=["zip"], n_boot=None)
    assert sum(r.attribute == "zip" for r in report.users) == 60
    assert all(not math.isnan(r.values["NDCG@10"]) for r in report.users)
