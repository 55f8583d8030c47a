"""The Fairness report read from a served log: on a hand-made log every user-side and item-side figure is known,
per variant; the latest list counts; the trend is the served lists' trend."""

from __future__ import annotations

import math

import pytest

from core.errors import NotFoundError, UserInputError
from core.ingest import ColumnMapping, ingest
from core.served import ingest_served, served_report, served_variants
from core.served.fairness import served_trend

EVENTS = """user_id,item_id,timestamp,category
u1,a,2024-01-01T00:00:00,X
u1,b,2024-01-02T00:00:00,Y
u1,c,2024-01-10T00:00:00,X
u1,a,2024-01-12T00:00:00,X
u2,a,2024-01-01T00:00:00,X
u2,d,2024-01-11T00:00:00,Y
u3,b,2024-01-03T00:00:00,Y
u3,e,2024-01-02T00:00:00,Y
"""
# A: u1's older list (d, a) is replaced by the latest (c, d); u3 has no event after its list.
# B: neither target is listed.
SERVED = """user_id,item_id,rank,served_at,variant
u1,d,1,2024-01-01T12:00:00,A
u1,a,2,2024-01-01T12:00:00,A
u1,c,1,2024-01-05T00:00:00,A
u1,d,2,2024-01-05T00:00:00,A
u2,b,1,2024-01-05T00:00:00,A
u2,d,2,2024-01-05T00:00:00,A
u3,a,1,2024-01-05T00:00:00,A
u3,c,2,2024-01-05T00:00:00,A
u1,a,1,2024-01-05T00:00:00,B
u1,b,2,2024-01-05T00:00:00,B
u2,a,1,2024-01-05T00:00:00,B
u2,c,2,2024-01-05T00:00:00,B
"""


@pytest.fixture
def served_db(tmp_path):
    (tmp_path / "events.csv").write_text(EVENTS)
    (tmp_path / "served.csv").write_text(SERVED)
    db = tmp_path / "served.duckdb"
    ingest(db, "generic", tmp_path / "events.csv", mapping=ColumnMapping(category="category"))
    assert ingest_served(db, tmp_path / "served.csv").accepted == 12
    return db


def test_served_report_known_answers_per_variant(served_db):
    assert served_variants(served_db) == ["A", "B"]
    a = served_report(served_db, "A", k=10, n_boot=None, freq="week")
    quality = a.per_user["NDCG@10"].to_dict()
    # u1's target is c (its first event after 01-05), first in the list; u2's is d, second; u3 has none
    assert quality == pytest.approx({"u1": 1.0, "u2": 1 / math.log2(3)})
    assert a.per_user["HR@10"].to_dict() == {"u1": 1.0, "u2": 1.0}
    # lists c,d | b,d | a,c cover 4 of the 5 items; pop from the events before 01-05: a 2, b 2, e 1, c 0, d 0
    assert a.items.users == 3 and a.items.catalogue == 5 and a.items.coverage == pytest.approx(4 / 5)
    assert a.items.arp == pytest.approx((0 + 1 + 1) / 3)
    assert a.settings["source"] == "served" and a.settings["variant"] == "A"
    b = served_report(served_db, "B", k=10, n_boot=None, freq="week")
    assert b.per_user["NDCG@10"].to_dict() == {"u1": 0.0, "u2": 0.0}
    # B lists only u1 and u2, so pop counts their histories alone: a 2, b 1 (u3's b is not in B's data)
    assert b.items.coverage == pytest.approx(3 / 5) and b.items.arp == pytest.approx(((2 + 1) / 2 + (2 + 0) / 2) / 2)
    # K cuts the lists: top-1 of A misses u2's target (rank 2)
    assert served_report(served_db, "A", k=1, n_boot=None).per_user["HR@1"].to_dict() == {"u1": 1.0, "u2": 0.0}


def test_served_report_trend_is_the_served_trend_and_errors_are_sentences(served_db):
    report = served_report(served_db, "A", k=10, n_boot=None, freq="week", trend_users=None)
    trend = served_trend(served_db, "A", 10, None, "week")
    assert [(w.start, w.users, w.metrics) for w in report.over_time] == [(w.start, w.users, w.metrics) for w in trend]
    assert served_report(served_db, "A", trend=False, n_boot=None).over_time == []
    with pytest.raises(NotFoundError, match="no lists of variant 'Z'"):
        served_report(served_db, "Z")
    with pytest.raises(UserInputError, match="Unknown user attribute 'zip'"):
        served_report(served_db, "A", by=["zip"])


def test_a_database_without_a_served_log_has_no_variants(synthetic_db):
    assert served_variants(synthetic_db) == []
