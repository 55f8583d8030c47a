"""Activity and tenure groups over the whole log (the Cohorts page's segments) are the Fairness report's groups,
and the store's cohort queries restricted to their members count the right users and events (known answers)."""

from __future__ import annotations

import pandas as pd

from core.fairness import derive_user_groups, group_members, log_user_groups
from core.ingest import ingest_frames
from core.store import connect_read
from core.store.views import cohort_category_share, cohort_sizes

# Users a..d with 1, 2, 3, 4 events; their first-to-last spans are 0 hours, 2, 10 and 31 days.
EVENTS = pd.DataFrame({
    "user_id": ["a", "b", "b", "c", "c", "c", "d", "d", "d", "d"],
    "item_id": ["x", "x", "y", "x", "y", "y", "y", "y", "y", "x"],
    "ts": pd.to_datetime(["2020-01-01", "2020-01-01", "2020-01-03", "2020-01-01", "2020-01-05", "2020-01-11",
                          "2020-01-01", "2020-01-02", "2020-01-20", "2020-02-01"]),
})
ITEMS = pd.DataFrame({"item_id": ["x", "y"], "title": ["X", "Y"], "categories": [["Drama"], ["Comedy"]]})


def test_log_groups_are_the_fairness_quartiles_of_the_whole_log(tmp_path):
    db = tmp_path / "plain.duckdb"
    ingest_frames(db, EVENTS, None, ITEMS)  # no user attributes at all
    with connect_read(db) as con:
        groups = log_user_groups(con)
        assert groups["activity_quartile"].tolist() == ["Q1 (1 event)", "Q2 (2 events)", "Q3 (3 events)",
                                                        "Q4 (4 events)"]
        assert groups["tenure_quartile"].tolist() == ["Q1 (0 hours)", "Q2 (2 days)", "Q3 (10 days)", "Q4 (31 days)"]
        # one definition: the same labels as `derive_user_groups` over the events (as of each last event)
        expected = derive_user_groups(EVENTS)[["user_id", "activity_quartile", "tenure_quartile"]]
        pd.testing.assert_frame_equal(groups.reset_index(drop=True), expected.reset_index(drop=True))

        top = group_members(groups, [("activity_quartile", "Q4 (4 events)")])
        assert top == ["d"]
        assert group_members(groups, [("activity_quartile", "Q4 (4 events)"), ("tenure_quartile", "Q1 (0 hours)")]) == []
        assert cohort_sizes(con, [], top) == {"users": 1, "events": 4}
        assert cohort_sizes(con, [], ["b", "c"]) == {"users": 2, "events": 5}
        assert cohort_sizes(con, []) == {"users": 4, "events": 10}
        share = cohort_category_share(con, [], "month", top)
        # d: January y, y, y; February x
        assert share[["category", "weight", "share"]].values.tolist() == [["Comedy", 3.0, 1.0], ["Drama", 1.0, 1.0]]
