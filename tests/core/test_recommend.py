"""Recommendations: top-K from the model's scores, seen items excluded, unknown items skipped, and the CLI."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from cli import app
from core.checkpoint import load_checkpoint
from core.errors import NotFoundError
from core.ingest.frames import ingest_frames
from core.recommend import (
    RECOMMENDATIONS_FILE,
    recommend,
    recommend_users,
    seen_excluded,
    unknown_history_items,
)
from core.sequences import History, load_sequences, make_batch
from core.store import connect_read


def test_recommend_returns_the_models_top_k_without_seen_items(synthetic_db, trained_model_dir):
    loaded = load_checkpoint(trained_model_dir)
    with connect_read(synthetic_db) as con:
        seqs = load_sequences(con, loaded.vocab)
    h = seqs.history(0)
    [top] = recommend(loaded, [h], k=5, exclude_seen=True)  # the card may say include (synthetic repeats)
    with torch.no_grad():
        scores = loaded.model(make_batch([h], loaded.config.max_len, n_context=len(loaded.vocab.context)))[0]
    scores[torch.from_numpy(h.items)] = float("-inf")
    expected = torch.sort(scores, descending=True, stable=True)
    assert [i for i, _ in top] == expected.indices[:5].tolist()
    assert [s for _, s in top] == pytest.approx(expected.values[:5].tolist(), abs=1e-5)
    assert not set(i for i, _ in top) & set(h.items.tolist())
    [with_seen] = recommend(loaded, [h], k=5, exclude_seen=False)
    assert with_seen[0][1] >= top[0][1]


def test_recommend_users_frame_and_unknown_user(synthetic_db, trained_model_dir):
    loaded = load_checkpoint(trained_model_dir)
    with connect_read(synthetic_db) as con:
        users = [r[0] for r in con.execute("SELECT DISTINCT user_id FROM events ORDER BY 1 LIMIT 2").fetchall()]
        df = recommend_users(loaded, con, users, k=4)
        with pytest.raises(NotFoundError):
            recommend_users(loaded, con, ["no-such-user"], k=4)
    assert list(df.columns) == ["user_id", "rank", "item_id", "score"]
    assert df.groupby("user_id")["rank"].apply(list).tolist() == [[1, 2, 3, 4]] * 2
    assert (df.groupby("user_id")["score"].diff().dropna() <= 0).all()


def test_items_added_after_training_are_listed_and_skipped(writable_db, trained_model_dir):
    loaded = load_checkpoint(trained_model_dir)
    with connect_read(writable_db) as con:
        user, last = con.execute("SELECT user_id, max(ts) FROM events GROUP BY 1 ORDER BY 1 LIMIT 1").fetchone()
        before = recommend_users(loaded, con, [user], k=5)
    new = pd.DataFrame({"user_id": [user], "item_id": ["brand-new-item"], "ts": [pd.Timestamp(last) + pd.Timedelta("1h")]})
    ingest_frames(writable_db, new, source="test", preset="frames")
    with connect_read(writable_db) as con:
        assert unknown_history_items(loaded, con, user).item_ids == ["brand-new-item"]
        after = recommend_users(loaded, con, [user], k=5)
    pd.testing.assert_frame_equal(before, after)  # the unknown event is skipped, nothing else changes


def test_recommend_follows_the_cards_seen_rule_by_default(synthetic_db, trained_model_dir):
    loaded = load_checkpoint(trained_model_dir)
    # the tiny synthetic log re-consumes items (>= 5 % of training events), so `auto` includes seen items
    assert loaded.card["seen"]["exclude"] is False and seen_excluded(loaded) is False
    assert seen_excluded(loaded, "exclude") is True
    with connect_read(synthetic_db) as con:
        h = load_sequences(con, loaded.vocab).history(0)
    assert recommend(loaded, [h], k=5) == recommend(loaded, [h], k=5, exclude_seen=False)


def test_empty_history_gets_the_empty_state(trained_model_dir):
    loaded = load_checkpoint(trained_model_dir)
    h = History.from_arrays(np.array([0, 0]), np.array([1, 2]), k=len(loaded.vocab.context))
    [top] = recommend(loaded, [h], k=3)
    assert len(top) == 3


def test_cli_recommend_user_and_all(synthetic_db, trained_model_dir, tmp_path):
    runner = CliRunner()
    with connect_read(synthetic_db) as con:
        user = con.execute("SELECT min(user_id) FROM events").fetchone()[0]
    r = runner.invoke(app, ["recommend", "--db", str(synthetic_db), "--model", str(trained_model_dir),
                            "--user", user, "--k", "3", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["user_id"] == user and [it["rank"] for it in out["items"]] == [1, 2, 3]
    assert all(isinstance(it["title"], str) for it in out["items"]) and out["unknown_items"] == []
    r = runner.invoke(app, ["recommend", "--db", str(synthetic_db), "--model", str(trained_model_dir), "--all",
                            "--k", "2", "--json"])
    assert r.exit_code == 0, r.output
    df = pd.read_parquet(trained_model_dir / RECOMMENDATIONS_FILE)
    assert json.loads(r.stdout)["rows"] == len(df) == 240 and df["user_id"].nunique() == 120
    csv = tmp_path / "recs.csv"
    r = runner.invoke(app, ["recommend", "--db", str(synthetic_db), "--model", str(trained_model_dir), "--all",
                            "--out", str(csv)])
    assert r.exit_code == 0 and len(pd.read_csv(csv)) == 1200


def test_batches_are_capped_by_catalogue_size_and_give_the_same_lists(synthetic_db, trained_model_dir, monkeypatch):
    """`SCORE_CELLS` bounds a batch's score matrix; smaller batches must not change any list."""
    import core.recommend as rec

    loaded = load_checkpoint(trained_model_dir)
    with connect_read(synthetic_db) as con:
        seqs = load_sequences(con, loaded.vocab)
    hs = [seqs.history(r) for r in range(min(40, seqs.n_users))]
    whole = recommend(loaded, hs, k=10)
    sizes = []
    real_make_batch = rec.make_batch
    monkeypatch.setattr(rec, "make_batch", lambda chunk, *a, **kw: sizes.append(len(chunk)) or real_make_batch(chunk, *a, **kw))
    monkeypatch.setattr(rec, "SCORE_CELLS", 3 * (loaded.vocab.n_items + 1))  # three histories per batch
    small = recommend(loaded, hs, k=10)
    assert max(sizes) == 3 and sum(sizes) == len(hs)
    for a, b in zip(whole, small, strict=True):
        assert [i for i, _ in a] == [i for i, _ in b]
        assert [s for _, s in a] == pytest.approx([s for _, s in b], abs=1e-5)
