"""Trajectories of real users of the tiny synthetic database: the result, folding, the drift job and cohorts."""

import shutil

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from core.checkpoint import load_checkpoint
from core.errors import NotFoundError, UserInputError
from core.sequences import History, load_sequences
from core.store import connect_read, user_history
from core.trajectory import (
    DRIFT_FILE,
    OTHER,
    TrajectoryAnalyzer,
    TrajectoryConfig,
    build_drift,
    cohort_mean,
    cohort_trajectory,
    decayed_histogram,
    drift_series,
    drift_summary,
    read_drift,
)


@pytest.fixture(scope="module")
def loaded(untrained_model_dir):
    return load_checkpoint(untrained_model_dir)


@pytest.fixture(scope="module")
def longest_user(synthetic_db):
    with connect_read(synthetic_db) as con:
        return con.execute("SELECT user_id FROM events GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1").fetchone()[0]


def test_user_trajectory_is_aligned_with_the_history(synthetic_db, loaded, longest_user):
    analyzer = TrajectoryAnalyzer(loaded, TrajectoryConfig(window=3, half_life=4.0))
    with connect_read(synthetic_db) as con:
        traj = analyzer.user(con, longest_user)
        hist = user_history(con, longest_user)
        seq = load_sequences(con, loaded.vocab, users=[longest_user]).history(0)
    n, C = len(hist), len(loaded.vocab.categories)
    assert n > loaded.config.max_len  # the tiny database's longest history needs overlapping windows
    assert len(traj) == n and list(traj.steps["item"]) == list(hist["item_id"])
    assert list(traj.steps["title"]) == list(hist["title"])
    for name in ("distribution", "long_term", "short_term", "baseline"):
        a = getattr(traj, name)
        assert a.shape == (n, C)
        np.testing.assert_allclose(a.sum(axis=1), 1.0, atol=1e-9)
    w = loaded.vocab.category_weights().numpy().astype(float)
    np.testing.assert_allclose(traj.baseline, decayed_histogram(w[seq.items], 4.0))
    np.testing.assert_allclose(traj.drift, drift_series(traj.distribution, 3))
    assert traj.gate.shape == (n,) and np.all((traj.gate > 0) & (traj.gate < 1))
    assert all(0 < c < n for c in traj.change_points)


def test_batch_path_matches_the_single_user_path(synthetic_db, loaded, longest_user):
    analyzer = TrajectoryAnalyzer(loaded)
    with connect_read(synthetic_db) as con:
        one = analyzer.user(con, longest_user)
        seqs = load_sequences(con, loaded.vocab)
    rows = [seqs.row(longest_user), 0, 1]
    many = {t.user_id: t for t in analyzer.trajectories(seqs, rows, chunk=2)}
    np.testing.assert_allclose(many[longest_user].distribution, one.distribution, atol=1e-6)
    assert many[longest_user].change_points == one.change_points


def test_unknown_user_and_bad_settings_are_one_sentence(synthetic_db, loaded):
    with connect_read(synthetic_db) as con, pytest.raises(NotFoundError, match="no user 'nobody'"):
        TrajectoryAnalyzer(loaded).user(con, "nobody")
    with pytest.raises(UserInputError, match=r"^Window must be at least 1, not 0\.$"):
        TrajectoryConfig(window=0)
    with pytest.raises(UserInputError, match=r"^Half life must be positive, not 0\.$"):
        TrajectoryConfig(half_life=0)


def test_fold_keeps_top_categories_and_sums_to_one(synthetic_db, loaded, longest_user):
    with connect_read(synthetic_db) as con:
        traj = TrajectoryAnalyzer(loaded).user(con, longest_user)
    folded = traj.fold(2)
    top2 = np.argsort(-traj.distribution.mean(axis=0))[:2]
    assert folded.categories == [traj.categories[i] for i in sorted(top2)] + [OTHER]
    for name in ("distribution", "long_term", "short_term", "baseline"):
        np.testing.assert_allclose(getattr(folded, name).sum(axis=1), 1.0, atol=1e-9)
    rest = [i for i in range(len(traj.categories)) if i not in top2]
    np.testing.assert_allclose(folded.baseline[:, -1], traj.baseline[:, rest].sum(axis=1))
    assert traj.fold(len(traj.categories)) is traj
    long = folded.frame("long_term")
    assert list(long.columns) == ["step", "time", "category", "share"] and len(long) == len(traj) * 3


def test_to_dict_has_exactly_the_documented_keys(synthetic_db, loaded):
    with connect_read(synthetic_db) as con:
        d = TrajectoryAnalyzer(loaded).user(con, "u007").to_dict()
    assert list(d) == [
        "steps", "categories", "distribution", "long_term", "short_term", "baseline", "gate", "drift", "change_points",
        "short_weight", "reading",
    ]
    assert set(d["steps"][0]) == {"step", "time", "item_id", "title"}
    assert len(d["distribution"]) == len(d["steps"]) == len(d["gate"]) == len(d["drift"])


def test_drift_job_writes_every_user_beside_the_model(synthetic_db, untrained_model_dir, tmp_path):
    model_dir = tmp_path / "model"
    shutil.copytree(untrained_model_dir, model_dir)
    loaded = load_checkpoint(model_dir)
    with pytest.raises(NotFoundError, match="No drift summaries beside the model") as missing:
        read_drift(model_dir)
    assert missing.value.next_step == "drift"  # the apps word it (cli: `interestlens drift`; app: its button)
    result = build_drift(synthetic_db, loaded)
    assert result.path == model_dir / DRIFT_FILE and result.path.exists()
    table = pq.read_table(result.path).to_pandas()
    with connect_read(synthetic_db) as con:
        counts = dict(con.execute("SELECT user_id, count(*) FROM events GROUP BY 1").fetchall())
    assert result.users == len(table) == len(counts)
    assert dict(zip(table["user_id"], table["n_events"], strict=True)) == counts
    assert (table["n_change_points"] == table["change_steps"].map(len)).all()
    assert (table["n_change_points"] == table["change_observed_divergence"].map(len)).all()
    back = read_drift(model_dir)
    assert list(back["largest_change"]) == sorted(back["largest_change"], reverse=True)  # the length-free score
    # a user's row is that user's trajectory summary
    uid = back["user_id"].iloc[0]
    with connect_read(synthetic_db) as con:
        s = drift_summary(TrajectoryAnalyzer(loaded).user(con, uid))
    assert back["total_drift"].iloc[0] == pytest.approx(s.total_drift, rel=1e-4)  # float32 batching noise only
    assert list(back["change_steps"].iloc[0]) == [c.step for c in s.change_points]
    assert back["largest_change"].iloc[0] == pytest.approx(s.largest_change) and back["shift"].iloc[0] == s.shift


def test_cohort_mean_by_hand():
    t = np.array(["2025-01-05", "2025-01-20", "2025-02-03"], dtype="datetime64[s]")
    a = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])  # user a: January mean (½, ½), February (1, 0)
    b = np.array([[0.0, 1.0]])  # user b: one January event
    out = cohort_mean([t, t[:1]], [a, b], ["A", "B"], "month")
    assert list(out.periods) == [np.datetime64("2025-01-01T00:00:00"), np.datetime64("2025-02-01T00:00:00")]
    np.testing.assert_allclose(out.mean, [[0.25, 0.75], [1.0, 0.0]])  # each active user counts once
    assert list(out.active_users) == [2, 1] and list(out.events) == [3, 1] and out.members == 2
    weekly = cohort_mean([t], [a], ["A", "B"], "week")
    assert weekly.periods[0] == np.datetime64("2024-12-30T00:00:00")  # the Monday of 2025-01-05's week


def test_cohort_trajectory_over_a_segment(synthetic_db, loaded):
    analyzer = TrajectoryAnalyzer(loaded)
    with connect_read(synthetic_db) as con:
        women = cohort_trajectory(con, analyzer, [("gender", "F")], period="quarter")
        n_women = con.execute("SELECT count(*) FROM users WHERE attributes['gender'] = 'F'").fetchone()[0]
        heavy = cohort_trajectory(con, analyzer, min_events=80, period="month")
        n_heavy = con.execute("SELECT count(*) FROM (SELECT user_id FROM events GROUP BY 1 HAVING count(*) >= 80)").fetchone()[0]
        with pytest.raises(NotFoundError):
            cohort_trajectory(con, analyzer, [("gender", "nobody")])
        with pytest.raises(UserInputError):
            cohort_trajectory(con, analyzer, period="fortnight")
    assert women.members == n_women and heavy.members == n_heavy
    np.testing.assert_allclose(women.mean.sum(axis=1), 1.0, atol=1e-9)
    assert women.active_users.max() <= n_women and pd.Series(women.periods).is_monotonic_increasing
    assert len(heavy.frame()) == len(heavy.periods) * len(heavy.categories)


def test_change_point_found_where_the_events_switch_category(loaded):
    vocab = loaded.vocab
    single = [[i + 1 for i, cs in enumerate(vocab.item_categories) if cs == [c]] for c in range(len(vocab.categories))]
    a, b = [c for c in range(len(single)) if len(single[c]) >= 2][:2]
    rng = np.random.default_rng(0)
    items = np.r_[rng.choice(single[a], 30), rng.choice(single[b], 25)]  # 30 events of one category, then another
    h = History.from_arrays(items, np.arange(55) * 600, k=len(vocab.context))
    steps = pd.DataFrame({"index": np.arange(55), "time": h.ts.astype("datetime64[s]"), "item": "", "title": None})
    traj = TrajectoryAnalyzer(loaded).build("x", h, steps)
    assert traj.change_points == [30]
    (cp,) = traj.describe()
    assert cp.step == 30 and cp.time == np.datetime64(30 * 600, "s")
    assert cp.observed_divergence == pytest.approx(1.0)  # one category alone, then another alone
