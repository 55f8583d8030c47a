"""`interestlens fairness` leaves out the trend windows core marks below the minimum users, as the app does, and
prints each window's interval (the JSON keeps every window with its flag and interval)."""

from __future__ import annotations

import json


def test_fairness_cli_trend_leaves_out_the_windows_core_marks(cli, synthetic_db, trained_model_dir):
    args = ("fairness", "--db", str(synthetic_db), "--model", str(trained_model_dir), "--by", "gender",
            "--window", "month", "--n-boot", "30", "--trend-users", "0")
    code, out, err = cli(*args, "--json")
    assert code == 0, err
    windows = json.loads(out)["over_time"]
    kept = [w for w in windows if not w["below_min_users"]]
    assert [w["below_min_users"] for w in windows] == [w["users"] < 30 for w in windows]  # the report's 30
    for w in windows:
        assert w["NDCG@10_low"] <= w["NDCG@10"] <= w["NDCG@10_high"]
        assert set(w["gaps_low"]) == set(w["gaps"]) == {"gender"}

    code, text, err = cli(*args)
    assert code == 0, err
    rows = [line for line in text.splitlines() if line[:4].isdigit() and line[4] == "-"]
    assert [r[:10] for r in rows] == [w["start"][:10] for w in kept]
    for r, w in zip(rows, kept, strict=True):
        assert f"[{w['NDCG@10_low']:.3f}, {w['NDCG@10_high']:.3f}]" in r
    left_out = len(windows) - len(kept)
    assert (f"{left_out} window(s) with fewer than 30 users scored left out" in text) == (left_out > 0)
