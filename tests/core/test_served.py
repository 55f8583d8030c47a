"""Served-recommendation logs: ingest with rejects, list metrics and uptake by hand, and a fairness trend from a
served log that equals the trend of the recommender whose lists were written into it."""

from __future__ import annotations

import pandas as pd
import pytest

from core.errors import UserInputError
from core.fairness import calendar_windows, over_time, popularity_recommender, window_split
from core.fairness.inputs import _items, _user_attributes
from core.served import ingest_served, read_served, served_over_time
from core.served.fairness import served_trend
from core.store import connect_read


def _events(db) -> pd.DataFrame:
    with connect_read(db) as con:
        return con.execute("SELECT user_id, item_id, ts FROM events ORDER BY ts, run_id, seq").df()


def test_ingest_keeps_good_rows_and_rejects_bad_ones_with_reasons(writable_db, tmp_path):
    ev = _events(writable_db).iloc[0]
    path = tmp_path / "served.csv"
    path.write_text(
        "user_id,item_id,rank,score,served_at,variant\n"
        f"{ev.user_id},{ev.item_id},1,,2024-01-01T00:00:00Z,A\n"
        f"{ev.user_id},i999,2,,2024-01-01T00:00:00Z,A\n"
        f"{ev.user_id},i998,2,,2024-01-01T00:00:00Z,A\n"  # same list and rank: a duplicate
        ",i1,1,,2024-01-01T00:00:00Z,A\n"
        "u1,i1,0,,2024-01-01T00:00:00Z,A\n"
        "u1,i1,,,2024-01-01T00:00:00Z,A\n"
        "u1,i1,1,,yesterday,B\n"
    )
    res = ingest_served(writable_db, path)
    assert (res.accepted, res.rejected, res.duplicates) == (2, 4, 1)
    assert res.reasons == {"missing user": 1, "rank is not a whole number of at least 1": 1,
                           "neither rank nor score": 1, "served_at: timestamp is not ISO-8601 text": 1}
    with connect_read(writable_db) as con:
        served = read_served(con)
        kept = con.execute("SELECT count(*) FROM rejects WHERE run_id = ?", [res.run_id]).fetchone()[0]
        status = con.execute("SELECT status, preset FROM ingest_runs WHERE run_id = ?", [res.run_id]).fetchone()
    assert kept == 4 and status == ("ok", "served")
    assert served["item_id"].tolist() == [ev.item_id, "i999"] and served["rank"].tolist() == [1, 2]
    with pytest.raises(UserInputError, match="no column 'who'"):
        ingest_served(writable_db, path, user_col="who")
    with connect_read(writable_db) as con:  # the failed run left the served table as it was
        assert len(read_served(con)) == 2


def test_scores_give_ranks_and_uptake_counts_by_hand(writable_db, tmp_path):
    path = tmp_path / "served.csv"
    path.write_text(
        "user,item,score,at\n"
        "u1,a,0.2,2024-03-01T10:00:00\nu1,b,0.9,2024-03-01T10:00:00\nu1,c,0.5,2024-03-01T10:00:00\n"
        "u2,a,1.0,2024-03-05T10:00:00\nu2,d,0.1,2024-03-05T10:00:00\n"
    )
    res = ingest_served(writable_db, path, user_col="user", item_col="item", score_col="score", time_col="at")
    assert res.accepted == 5
    with connect_read(writable_db) as con:
        served = read_served(con)
    assert served[served.user_id == "u1"].sort_values("rank")["item_id"].tolist() == ["b", "c", "a"]
    events = pd.DataFrame({"user_id": ["u1", "u1", "u2", "u2"], "item_id": ["b", "a", "d", "x"],
                           "ts": pd.to_datetime(["2024-03-02", "2024-03-20", "2024-03-06", "2024-02-01"])})
    (row,) = served_over_time(events, served, pd.Series({"a": ["A"], "b": ["B"]}), "month", within_days=7)
    # u1: b consumed after 1 day (yes), a after 19 days (no), c never; u2: d after 1 day (yes), a never -> 2 of 5
    assert row.metrics["consumed_within_7d"] == pytest.approx(2 / 5)
    assert (row.lists, row.users, row.variant) == (2, 2, "")


def test_a_served_log_of_a_recommender_gives_that_recommenders_fairness_trend(writable_db, tmp_path):
    events = _events(writable_db)
    windows = calendar_windows(events["ts"], "week")
    rows = []
    for (start, end), (_, nxt) in zip(windows[:-1], windows[1:], strict=True):
        histories, _ = window_split(events, start, end, nxt)
        if len(histories):
            recs = popularity_recommender(histories, 10)
            rows.append(recs.assign(served_at=(end - pd.Timedelta(seconds=1)).isoformat(), variant="pop"))
    path = tmp_path / "served.csv"
    pd.concat(rows).to_csv(path, index=False)
    ingest_served(writable_db, path)
    from_log = served_trend(writable_db, "pop", k=10, freq="week")
    with connect_read(writable_db) as con:
        cats, _ = _items(con)
        users = _user_attributes(con)
    from_model = over_time(events, popularity_recommender, 10, cats, users, None, "week")
    assert len(from_log) == len(from_model) > 2
    for a, b in zip(from_log, from_model, strict=True):
        assert (a.start, a.users) == (b.start, b.users)
        assert a.metrics == pytest.approx(b.metrics, nan_ok=True) and a.gaps == pytest.approx(b.gaps, nan_ok=True)
