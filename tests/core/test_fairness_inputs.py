"""Building the report's inputs from the tiny database and a trained model, and the `fairness` command end to end."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from core.checkpoint import load_checkpoint
from core.errors import UserInputError
from core.fairness import load_inputs
from core.recommend import recommend
from core.sequences import load_sequences
from core.store import connect_read


@pytest.fixture(scope="module")
def loaded_inputs(synthetic_db, trained_model_dir):
    # --seen exclude: the tiny log re-consumes items, so the card's `auto` would keep seen items in the lists
    return load_inputs(synthetic_db, trained_model_dir, k=10, seen="exclude")


def test_missing_parquet_files_are_computed_and_said(loaded_inputs):
    assert len(loaded_inputs.notes) == 2
    assert any("top-10 list was computed now" in n for n in loaded_inputs.notes)
    assert any("test target was ranked now" in n for n in loaded_inputs.notes)


def test_inputs_from_the_database(synthetic_db, loaded_inputs):
    inp = loaded_inputs.inputs
    with connect_read(synthetic_db) as con:
        n_events, n_users = con.execute("SELECT count(*), count(DISTINCT user_id) FROM events").fetchall()[0]
        seen = con.execute("SELECT user_id, item_id FROM events").df()
    # leave-one-out: pop counts every event but each user's last two (validation and test targets)
    assert int(inp.pop.sum()) == n_events - 2 * n_users
    assert len(inp.histories) == n_events
    assert set(inp.user_attributes.columns) == {"user_id", "gender", "age_band", "region"}
    # every user gets K distinct items they have not interacted with
    recs = inp.recs
    assert recs.groupby("user_id").size().eq(10).all() and recs["user_id"].nunique() == n_users
    overlap = recs.merge(seen.astype(str), on=["user_id", "item_id"])
    assert overlap.empty
    # ranks are full-catalogue ranks of each user's last event (the log is in canonical order)
    assert inp.eval_users["rank"].min() >= 1 and len(inp.eval_users) == n_users
    last = inp.events.groupby("user_id").tail(1)
    assert sorted(zip(inp.targets["user_id"], inp.targets["item_id"], strict=True)) == sorted(
        zip(last["user_id"], last["item_id"], strict=True))
    t_ts = inp.targets.set_index("user_id")["ts"].sort_index()
    assert (t_ts == last.set_index("user_id")["ts"].reindex(t_ts.index)).all()


def _log_per_user(con) -> list[tuple]:
    """The log as (user, item, ts to the second), each user's events in canonical order."""
    rows = con.execute("SELECT user_id, item_id, date_trunc('second', ts) FROM events ORDER BY user_id, ts, run_id, seq")
    return [(str(u), str(i), t) for u, i, t in rows.fetchall()]


def test_events_frame_is_the_log_in_per_user_canonical_order(synthetic_db, loaded_inputs):
    ev = loaded_inputs.inputs.events
    with connect_read(synthetic_db) as con:
        want = _log_per_user(con)
    got = sorted(range(len(ev)), key=lambda r: ev["user_id"].iat[r])  # stable: keeps each user's order
    assert [(ev["user_id"].iat[r], ev["item_id"].iat[r], ev["ts"].iat[r].to_pydatetime()) for r in got] == want


def test_items_the_model_never_saw_keep_their_ids(synthetic_db, trained_model_dir, tmp_path):
    """Events ingested after training name items outside the model's vocabulary: the report's log still has
    their ids (the model sees them as unknown)."""
    from core.store import connect_write

    db = tmp_path / "later.duckdb"
    shutil.copy(synthetic_db, db)
    with connect_write(db) as con:
        user = con.execute("SELECT user_id, max(ts) FROM events GROUP BY 1 ORDER BY 1 LIMIT 1").fetchall()[0]
        con.execute("INSERT INTO items (item_id, title, categories) VALUES ('brand-new', 'New', ['c0'])")
        con.execute("""INSERT INTO events (user_id, item_id, ts, event_type, value, context, run_id, seq)
                       SELECT ?, 'brand-new', ?::TIMESTAMP + INTERVAL 1 HOUR, event_type, value, context, run_id, seq + 1
                       FROM events ORDER BY run_id DESC, seq DESC LIMIT 1""", [user[0], user[1]])
    got = load_inputs(db, trained_model_dir, k=10).inputs.events
    mine = got[got["user_id"] == str(user[0])]
    assert mine["item_id"].iloc[-1] == "brand-new"
    with connect_read(db) as con:
        assert sorted(zip(got["user_id"], got["item_id"], strict=True)) == sorted((u, i) for u, i, _ in _log_per_user(con))


def test_saved_parquet_files_are_read(synthetic_db, trained_model_dir, loaded_inputs, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(trained_model_dir, model)
    recs = loaded_inputs.inputs.recs.copy()
    recs.loc[recs["rank"] == 1, "score"] = 123.0  # a mark that only the saved file has
    recs.to_parquet(model / "recommendations.parquet", index=False)
    ev = loaded_inputs.inputs.eval_users.merge(loaded_inputs.inputs.targets, on="user_id")
    ev.assign(rank=1).to_parquet(model / "eval_users.parquet", index=False)
    again = load_inputs(synthetic_db, model, k=10)
    assert again.notes == []
    assert (again.inputs.recs.loc[again.inputs.recs["rank"] == 1, "score"] == 123.0).all()
    assert (again.inputs.eval_users["rank"] == 1).all()
    # a saved list shorter than K is recomputed
    longer = load_inputs(synthetic_db, model, k=12)
    assert any("top-12 list was computed now" in n for n in longer.notes)
    assert longer.inputs.recs["rank"].max() == 12


def test_window_recommender_uses_the_first_events(synthetic_db, trained_model_dir, loaded_inputs):
    loaded = load_checkpoint(trained_model_dir)
    with connect_read(synthetic_db) as con:
        seqs = load_sequences(con, loaded.vocab)
    events = loaded_inputs.inputs.events
    user = str(seqs.user_ids[3])
    first = events[events["user_id"] == user].head(7)
    got = loaded_inputs.recommend_fn(first, 5)
    expected = recommend(loaded, [seqs.history(3, 0, 7)], 5, exclude_seen=True)[0]  # the fixture: --seen exclude
    assert got["item_id"].tolist() == [loaded.vocab.item_id(i) for i, _ in expected]
    assert got["rank"].tolist() == [1, 2, 3, 4, 5]
    assert not set(got["item_id"]) & set(first["item_id"])
    # the full history gives the saved all-user list
    full = loaded_inputs.recommend_fn(events[events["user_id"] == user], 10)
    saved = loaded_inputs.inputs.recs
    assert full["item_id"].tolist() == saved.loc[saved["user_id"] == user, "item_id"].tolist()


def test_unknown_attribute_fails_before_heavy_work(synthetic_db, trained_model_dir):
    with pytest.raises(UserInputError, match="Unknown user attribute 'occupation'; known attributes: .*gender"):
        load_inputs(synthetic_db, trained_model_dir, by=["gender", "occupation"])


def test_cli_end_to_end(cli, monkeypatch, capsys, synthetic_db, trained_model_dir):
    code, out, err = cli("fairness", "--db", str(synthetic_db), "--model", str(trained_model_dir),
                         "--by", "gender", "--by", "age_band", "--by", "activity_quartile", "--n-boot", "50", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert "note: Every user's top-10 list was computed now" in err
    assert {r["attribute"] for r in d["users"]} == {"all", "gender", "age_band", "activity_quartile"}
    for r in d["users"]:
        assert {"attribute", "group", "size", "NDCG@10", "HR@10", "NDCG@10_low", "NDCG@10_high"} <= set(r)
        assert r["NDCG@10_low"] - 1e-12 <= r["NDCG@10"] <= r["NDCG@10_high"] + 1e-12
    sizes = {r["group"]: r["size"] for r in d["users"] if r["attribute"] == "gender"}
    assert sum(sizes.values()) == 120
    assert {"gini", "coverage", "arp", "aplt"} <= set(d["items"])
    assert 0 <= d["items"]["gini"] <= 1 and 0 < d["items"]["coverage"] <= 1
    assert d["calibration"]["users"] == 120 and d["calibration"]["mean"] > 0
    assert len(d["over_time"]) >= 6  # the tiny log spans about a year of months
    months = [w["start"][:7] for w in d["over_time"]]
    assert months == sorted(months)
    assert all(w["users"] > 0 and "NDCG@10" in w and "gini" in w for w in d["over_time"])


def test_cli_unknown_attribute_is_one_sentence(cli, monkeypatch, capsys, synthetic_db, trained_model_dir):
    code, out, err = cli("fairness", "--db", str(synthetic_db), "--model", str(trained_model_dir),
                         "--by", "shoe_size", "--json")
    assert code == 1 and out == ""
    assert err.startswith("error: Unknown user attribute 'shoe_size'") and err.count("\n") == 1
    code, _, err = cli("fairness", "--db", str(synthetic_db), "--model", str(trained_model_dir),
                       "--window", "fortnight")
    assert code == 1 and "Unknown --window 'fortnight'" in err


def test_cli_human_output(cli, monkeypatch, capsys, synthetic_db, trained_model_dir):
    code, out, _ = cli("fairness", "--db", str(synthetic_db), "--model", str(trained_model_dir),
                       "--by", "region", "--n-boot", "0", "--no-trend", "--k", "5")
    assert code == 0
    assert "NDCG@5" in out and "region" in out and "gini" in out and "C_KL" in out
    assert np.isfinite(float(out.split("gini ")[1].split()[0]))
    assert "window" not in out  # --no-trend


def test_cli_trend_panel(cli, monkeypatch, capsys, synthetic_db, trained_model_dir):
    """--trend-users caps the users scored per window and the output says how many each window had."""
    code, out, err = cli("fairness", "--db", str(synthetic_db), "--model", str(trained_model_dir),
                         "--n-boot", "0", "--trend-users", "5", "--json")
    assert code == 0, err
    windows = json.loads(out)["over_time"]
    assert windows and all(w["users"] <= 5 and w["eligible_users"] >= w["users"] for w in windows)
    assert any(w["eligible_users"] > 5 for w in windows)
    assert json.loads(out)["settings"]["trend_users"] == 5
    code, out, _ = cli("fairness", "--db", str(synthetic_db), "--model", str(trained_model_dir),
                       "--n-boot", "0", "--trend-users", "5")
    assert code == 0 and "a fixed panel of at most 5 users per window" in out


def test_default_attributes_leave_out_raw_ages_and_wide_attributes():
    """MovieLens' users: 61 distinct ages and 795 zip codes would make groups of one user decide every gap."""
    import pandas as pd

    from core.fairness.inputs import default_attributes, known_attributes

    known = known_attributes(pd.DataFrame(columns=["user_id", "age", "gender", "occupation", "zip"]))
    assert "age" in known and "zip" in known  # still there to ask for
    assert default_attributes(known, {"age": 61, "gender": 2, "occupation": 21, "zip": 200}) == [
        "gender", "occupation", "age_band", "activity_quartile", "tenure_quartile", "new_vs_returning"]  # fmt: skip
