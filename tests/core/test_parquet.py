"""A database over a Parquet dataset read in place answers every read query like the table-backed one it came
from, trains, serves the app's calls, and refuses writers in one sentence."""

import json
import shutil

import duckdb
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cli import app
from core.errors import NotFoundError
from core.sequences import build_vocab, data_fingerprint, load_sequences
from core.store import StoreError, connect_read, connect_write, queries, views
from core.store.parquet import ParquetMapping, attach_parquet, source_glob
from core.store.parquet_export import export_parquet
from core.store.source import events_source, user_bucket, user_predicate


@pytest.fixture(scope="module")
def attached(synthetic_db, tmp_path_factory):
    """The tiny database exported as Parquet in 4 user buckets and attached as a new database."""
    root = tmp_path_factory.mktemp("parquet")
    exported = export_parquet(synthetic_db, root / "ds", buckets=4)
    ds = exported.out
    r = attach_parquet(root / "attached.duckdb", ds / "events", users=ds / "users.parquet", items=ds / "items.parquet")
    return r.db, exported


def test_export_partitions_users_by_bucket(synthetic_db, attached):
    _, exported = attached
    assert exported.events == 6000 and exported.files == 4 and exported.buckets == 4
    con = duckdb.connect()
    rows = con.execute("SELECT user_id, user_bucket FROM read_parquet(?, hive_partitioning = true)",
                       [str(exported.out / "events" / "**" / "*.parquet")]).fetchall()
    buckets = {}
    for u, b in rows:
        buckets.setdefault(u, set()).add(b)
    assert all(len(b) == 1 for b in buckets.values())  # a user lives in one partition
    ids = sorted(buckets)
    assert [buckets[u].pop() for u in ids] == user_bucket(ids, 4).tolist()
    assert user_bucket(["alice"], 64).tolist() == [int.from_bytes(__import__("hashlib").md5(b"alice").digest()[:8], "big") % 64]


def test_a_users_lookup_reads_only_their_partition(attached):
    db, _ = attached
    with connect_read(db) as con:
        assert events_source(con)["bucket"] == {"column": "user_bucket", "buckets": 4, "hash": "md5"}
        user = con.execute("SELECT user_id FROM users ORDER BY user_id LIMIT 1").fetchone()[0]
        where, params = user_predicate(con, user)
        assert where == "e.user_id = ? AND e.user_bucket = ?" and params == [user, int(user_bucket([user], 4)[0])]
        plan = con.execute(f"EXPLAIN ANALYZE SELECT * FROM events e WHERE {where}", params).fetchall()[0][1]
        assert "Scanning Files: 1/4" in plan


def test_every_read_query_gives_the_same_answer(synthetic_db, attached):
    db, _ = attached
    with connect_read(synthetic_db) as a, connect_read(db) as b:
        assert queries.dataset_summary(a) == queries.dataset_summary(b)
        assert data_fingerprint(a) == data_fingerprint(b)
        for fn, args in [(queries.list_users, ()), (queries.events_over_time, ("week",)),
                         (queries.category_share_over_time, ("month",)), (queries.top_items, (20,)),
                         (queries.activity_distribution, ()), (queries.item_lookup, (["i1", "i7"],)),
                         (views.cohort_category_share, ((("gender", "F"),), "month"))]:
            pd.testing.assert_frame_equal(fn(a, *args), fn(b, *args))
        users = [r[0] for r in a.execute("SELECT user_id FROM users ORDER BY user_id").fetchall()]
        for u in users[::17]:
            pd.testing.assert_frame_equal(queries.user_history(a, u), queries.user_history(b, u))
        assert views.user_attributes(a, users[3]) == views.user_attributes(b, users[3]) != {}
        with pytest.raises(NotFoundError):
            queries.user_history(b, "nobody")
        va, vb = build_vocab(a), build_vocab(b)
        assert va.to_dict() == vb.to_dict() and vb.context == {"device": ["desktop", "mobile", "tablet"]}
        sa, sb = load_sequences(a, va), load_sequences(b, vb)
        for name in ("user_ids", "offsets", "items", "ts", "gaps", "event_types", "context"):
            assert np.array_equal(getattr(sa, name), getattr(sb, name)), name
        runs = views.ingest_runs(b)
        assert runs["preset"].tolist() == ["parquet"] and int(runs["accepted"].iloc[0]) == 6000
        assert events_source(b)["kind"] == "parquet" and events_source(a) is None


def test_training_and_the_app_calls_work_on_it(attached, tmp_path):
    from core.checkpoint import load_checkpoint
    from core.model import ModelConfig
    from core.recommend import recommend_users
    from core.train import TrainConfig, train
    from core.trajectory import TrajectoryAnalyzer

    db, _ = attached
    out = tmp_path / "model"
    result = train(db, out, ModelConfig(d_model=16, n_layers=1, n_heads=1, max_len=20),
                   TrainConfig(epochs=1, batch_size=64, device="cpu", seed=0))
    assert result.epochs == 1 and result.test["HR@10"] >= 0 and (out / "model.safetensors").exists()
    loaded = load_checkpoint(out)
    with connect_read(db) as con:
        user = con.execute("SELECT user_id FROM users ORDER BY user_id LIMIT 1").fetchone()[0]
        n = len(queries.user_history(con, user))
        recs = recommend_users(loaded, con, [user], 5)
        traj = TrajectoryAnalyzer(loaded).user(con, user)
    assert len(recs) == 5 and recs["rank"].tolist() == [1, 2, 3, 4, 5]
    assert traj.distribution.shape == (n, len(loaded.vocab.categories))


def test_writers_refuse_it_in_one_sentence(attached, tmp_path):
    from core.ingest import ingest

    db, _ = attached
    copy = tmp_path / "copy.duckdb"
    shutil.copy2(db, copy)
    csv = tmp_path / "more.csv"
    csv.write_text("user_id,item_id,timestamp\nu1,i1,1735689600\n")
    for write in (lambda: ingest(copy, "generic", csv), lambda: connect_write(copy).__enter__()):
        with pytest.raises(StoreError, match="reads its events in place from Parquet") as err:
            write()
        assert str(err.value).count(". ") == 0  # one sentence
    with connect_read(copy) as con:
        assert con.execute("SELECT count(*) FROM events").fetchone()[0] == 6000  # nothing landed


def test_a_foreign_dataset_with_its_own_column_names(tmp_path):
    """Epoch seconds, other names, date partitions, context columns, no seq: mapped, ordered, users from events."""
    folder = tmp_path / "logs"
    con = duckdb.connect()
    df = pd.DataFrame({"uid": [7, 7, 8, 7, 8], "sku": ["a", "b", "a", "c", "c"],
                       "epoch": [1735776000, 1735689600, 1735689700, 1735776000, 1735776100],
                       "kind": ["VIEW", "view", "click", "cart", "view"], "device": ["m", None, "d", "m", "d"],
                       "day": ["2025-01-02", "2025-01-01", "2025-01-01", "2025-01-02", "2025-01-02"]})
    con.register("df", df)
    con.execute("COPY df TO ? (FORMAT parquet, PARTITION_BY (day))", [str(folder)])
    m = ParquetMapping(user="uid", item="sku", time="epoch", event_type="kind", context=("device",))
    r = attach_parquet(tmp_path / "foreign.duckdb", folder, m)
    assert (r.events, r.users, r.items, r.files) == (5, 2, 3, 2)
    with connect_read(r.db) as c:
        assert events_source(c)["bucket"] is None and user_predicate(c, "7") == ("e.user_id = ?", ["7"])
        h = queries.user_history(c, "7")
        assert h["item_id"].tolist() == ["b", "a", "c"]  # 2025-01-01 first; the two at the same second: file order
        assert h["event_type"].tolist() == ["view", "view", "cart"]
        assert h["context"].tolist() == [{}, {"device": "m"}, {"device": "m"}]
        assert str(h["ts"].iloc[0]) == "2025-01-01 00:00:00"
        assert json.loads(c.execute("SELECT value FROM meta WHERE key = 'context_keys'").fetchone()[0]) == ["device"]
        assert build_vocab(c).event_types == ["cart", "click", "view"]
    with pytest.raises(StoreError, match="no column 'when'"):
        attach_parquet(tmp_path / "bad.duckdb", folder, ParquetMapping(user="uid", item="sku", time="when"))
    assert not (tmp_path / "bad.duckdb").exists()  # a failed attach leaves no file behind
    with pytest.raises(StoreError, match="already exists"):
        attach_parquet(r.db, folder, m)


def test_buckets_of_another_scheme_are_not_used_for_lookups(tmp_path):
    """A `user_bucket` column that is not export-parquet's MD5 scheme is read as data, never used to prune."""
    con = duckdb.connect()
    df = pd.DataFrame({"user_id": ["a", "b", "c", "d"], "item_id": "x", "ts": pd.Timestamp("2025-01-01"),
                       "user_bucket": [1, 1, 0, 0]})
    expected = user_bucket(df["user_id"].tolist(), 2).tolist()
    assert expected != [1, 1, 0, 0]  # so the scheme differs from ours
    con.register("df", df)
    con.execute("COPY df TO ? (FORMAT parquet, PARTITION_BY (user_bucket))", [str(tmp_path / "ds")])
    r = attach_parquet(tmp_path / "x.duckdb", tmp_path / "ds")
    with connect_read(r.db) as c:
        assert events_source(c)["bucket"] is None
        assert [len(queries.user_history(c, u)) for u in "abcd"] == [1, 1, 1, 1]


def test_paths_become_safe_literals_or_are_refused(tmp_path):
    assert source_glob("s3://bucket/logs/") == "s3://bucket/logs/**/*.parquet"
    assert source_glob("s3://bucket/logs/*.parquet") == "s3://bucket/logs/*.parquet"
    assert source_glob(tmp_path) == f"{tmp_path}/**/*.parquet"
    odd = tmp_path / "it's"
    odd.mkdir()
    for bad in ("s3://bucket/x'); DROP TABLE users; --", str(odd), "s3://bucket/a b", str(tmp_path / "missing")):
        with pytest.raises(StoreError):
            source_glob(bad)


def test_cli_export_and_attach_json(synthetic_db, tmp_path):
    runner = CliRunner()
    r = runner.invoke(app, ["export-parquet", str(tmp_path / "ds"), "--db", str(synthetic_db), "--buckets", "2", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) | {"out": None, "bytes": None} == {"out": None, "events": 6000, "files": 2,
                                                                   "buckets": 2, "bytes": None}
    r = runner.invoke(app, ["attach", str(tmp_path / "ds" / "events"), "--db", str(tmp_path / "a.duckdb"),
                            "--users", str(tmp_path / "ds" / "users.parquet"), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert (out["events"], out["users"], out["items"], out["files"]) == (6000, 120, 149, 2)  # items: those with events
    r = runner.invoke(app, ["ingest", "--db", str(tmp_path / "a.duckdb"), "--preset", "generic", str(tmp_path)])
    assert r.exit_code == 1 and "reads its events in place from Parquet" in str(r.exception)


def _log_checksum(con) -> tuple[int, str]:
    return con.execute("""SELECT count(*), md5(string_agg(concat_ws('|', user_id, item_id, CAST(ts AS VARCHAR)), ','
                                   ORDER BY user_id, item_id, ts)) FROM events""").fetchone()


def test_attach_reads_an_export_folder_back_with_no_options(synthetic_db, tmp_path):
    """The documented round trip: `export-parquet OUT` then `attach OUT` gives the same events, users and items."""
    runner = CliRunner()
    r = runner.invoke(app, ["export-parquet", str(tmp_path / "pq"), "--db", str(synthetic_db), "--buckets", "4"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["attach", str(tmp_path / "pq"), "--db", str(tmp_path / "att.duckdb"), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["source"] == f"{tmp_path / 'pq' / 'events'}/**/*.parquet" and out["files"] == 4
    with connect_read(synthetic_db) as a, connect_read(tmp_path / "att.duckdb") as b:
        assert _log_checksum(a) == _log_checksum(b) and _log_checksum(b)[0] == 6000
        for sql in ("SELECT user_id, attributes FROM users ORDER BY user_id",
                    "SELECT item_id, title, categories, attributes FROM items ORDER BY item_id"):
            assert a.execute(sql).fetchall() == b.execute(sql).fetchall(), sql
        assert (out["users"], out["items"]) == (120, 150)  # all items, not only those with events
        assert b.execute("SELECT count(*) FROM users WHERE cardinality(attributes) > 0").fetchone()[0] == 120
        assert b.execute("SELECT count(*) FROM items WHERE title IS NOT NULL").fetchone()[0] == 150
        info = events_source(b)
        assert info["bucket"]["buckets"] == 4
        assert (info["users_file"], info["items_file"]) == (str(tmp_path / "pq" / "users.parquet"),
                                                            str(tmp_path / "pq" / "items.parquet"))
    # --users / --items still win over the folder's own files
    one_user = tmp_path / "one_user.parquet"
    duckdb.connect().execute("COPY (SELECT 'u000' AS user_id, 'x' AS tier) TO ? (FORMAT parquet)", [str(one_user)])
    r = attach_parquet(tmp_path / "att2.duckdb", tmp_path / "pq", users=one_user)
    with connect_read(r.db) as c:
        assert c.execute("SELECT attributes FROM users WHERE user_id = 'u000'").fetchone()[0] == {"tier": "x"}
        assert c.execute("SELECT count(*) FROM items WHERE title IS NOT NULL").fetchone()[0] == 150


def test_a_mixed_folder_is_refused_in_one_sentence(synthetic_db, tmp_path):
    """Event files at the top of a folder beside a hive-partitioned subfolder: one sentence naming the layouts."""
    exported = export_parquet(synthetic_db, tmp_path / "pq", buckets=2).out
    mixed = tmp_path / "mixed"
    shutil.copytree(exported / "events", mixed / "events")
    shutil.copy(next((exported / "events").rglob("*.parquet")), mixed / "extra.parquet")  # not users/items
    with pytest.raises(StoreError) as err:
        attach_parquet(tmp_path / "m.duckdb", mixed)
    text = str(err.value)
    assert text.startswith(f"{mixed} mixes Parquet files at different folder depths")
    assert "export-parquet folder (events/ with users.parquet and items.parquet beside it)" in text
    assert text.count(". ") == 0 and "Binder Error" not in text and not (tmp_path / "m.duckdb").exists()


def test_a_plain_folder_a_file_and_a_glob_still_attach(synthetic_db, tmp_path):
    exported = export_parquet(synthetic_db, tmp_path / "pq", buckets=2).out
    files = sorted((exported / "events").rglob("*.parquet"))
    plain = tmp_path / "plain"
    plain.mkdir()
    for n, f in enumerate(files):
        shutil.copy(f, plain / f"part{n}.parquet")  # no hive folders: the bucket column is not there
    for name, source, events in [("plain", plain, 6000), ("file", files[0], None),
                                 ("glob", f"{exported / 'events'}/*/*.parquet", 6000)]:
        r = attach_parquet(tmp_path / f"{name}.duckdb", source)
        with connect_read(r.db) as c:
            n = c.execute("SELECT count(*) FROM events").fetchone()[0]
            assert n == (events or len(duckdb.connect().execute("SELECT 1 FROM read_parquet(?)", [str(files[0])]).fetchall()))
            assert c.execute("SELECT count(*) FROM items WHERE title IS NOT NULL").fetchone()[0] == 0  # no side files
