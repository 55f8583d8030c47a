"""The explained game's fast path and its players: encoding only the present events equals the masked full window,
older events grouped by period are players of their own, and explanations over them stay exactly additive."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import torch

from core.checkpoint import load_checkpoint
from core.explain import (
    EventLabel,
    HistoryExplainer,
    deletion_curves,
    explained_features,
    load_labelled_history,
)
from core.sequences import make_batch
from core.store import connect_read

DAY = 86_400
T0 = int((dt.datetime(2024, 3, 4, 9, 0) - dt.datetime(1970, 1, 1)).total_seconds())  # a Monday, 09:00 UTC


def _history(db, model_dir, user="u003"):
    loaded = load_checkpoint(model_dir)
    with connect_read(db) as con:
        return loaded, load_labelled_history(con, loaded, user)


def test_present_events_path_equals_the_masked_full_window(synthetic_db, trained_model_dir):
    loaded, lh = _history(synthetic_db, trained_model_dir)
    game = HistoryExplainer(loaded, tokens=64).game(lh)  # small passes: rows of many lengths in one call
    assert game._compact and game.n == game.n_events
    rng = np.random.default_rng(1)
    rows = rng.random((40, game.n_events)) < rng.random((40, 1))
    rows[0], rows[1] = False, True  # nothing present (the empty state) and everything present
    got = game.event_values(rows)
    window = lh.history.slice(int(lh.window(50)[0]), len(lh))
    b = make_batch([window], 50).index(torch.zeros(len(rows), dtype=torch.long))
    b.mask[:, -game.n_events :] = torch.from_numpy(rows)
    with torch.no_grad():
        expected = loaded.model(b)[:, game.target].double().numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert got[1] == pytest.approx(game.full(), abs=1e-6)


def test_older_events_are_grouped_by_the_finest_period_that_fits():
    # 6 older events: two sessions on Monday, one on Tuesday, one the next week; then 3 recent events
    minutes = [0, 10, 200, 210, 60 * 24 + 5, 60 * 24 * 8, 60 * 24 * 9, 60 * 24 * 9 + 1, 60 * 24 * 9 + 2]
    ts = T0 + 60 * np.asarray(minutes, dtype=np.int64)
    spans = explained_features(ts, recent=3, max_groups=4)
    assert [s.members for s in spans] == [(0, 1), (2, 3), (4,), (5,), (6,), (7,), (8,)]
    assert [s.level for s in spans[:4]] == ["session"] * 4 and spans[0].label == "2024-03-04 09:00–09:10"
    assert spans[4].level is None and spans[4].label == ""
    by_day = explained_features(ts, recent=3, max_groups=3)  # 4 sessions are too many: days (3)
    assert [s.members for s in by_day[:3]] == [(0, 1, 2, 3), (4,), (5,)] and by_day[0].level == "day"
    by_week = explained_features(ts, recent=3, max_groups=2)
    assert [s.members for s in by_week[:2]] == [(0, 1, 2, 3, 4), (5,)] and by_week[0].label == "2024-W10 (Mar)"
    months = T0 + DAY * np.array([0, 31, 62, 93, 124, 200], dtype=np.int64)  # 5 months, then 1 recent
    merged = explained_features(months, recent=1, max_groups=2)
    assert [s.members for s in merged] == [(0, 1, 2), (3, 4), (5,)]
    assert merged[0].level == "months" and merged[0].label == "2024-03 – 2024-05"
    assert explained_features(ts, recent=9) == explained_features(ts, recent=50)  # short: one player per event
    assert all(s.level is None for s in explained_features(ts, recent=9))


def test_period_label_reads_as_its_events():
    t = dt.datetime(2024, 3, 4, 9, 0)
    events = [EventLabel(4 + i, f"m{i}", f"Film {i}", ("Drama",) if i % 2 else ("Comedy", "Drama"), t) for i in range(3)]
    lab = EventLabel.period(events, "session", "2024-03-04 09:00–09:40")
    assert lab.text() == "#4–#6 3 earlier events · session 2024-03-04 09:00–09:40"
    assert lab.categories == ("Drama", "Comedy") and lab.n_events == 3 and lab.last_step == 6


def test_grouped_explanation_is_additive_and_its_players_cover_the_window(synthetic_db, trained_model_dir):
    loaded, lh = _history(synthetic_db, trained_model_dir, "u007")
    explainer = HistoryExplainer(loaded, event_evals=300, window_evals=200, recent=10, older_groups=3)
    expl = explainer.explain(lh)
    n = len(expl.positions)
    assert n > 10
    members = [m.tolist() for m in expl.members]
    assert sorted(i for m in members for i in m) == list(range(n))  # every event in exactly one player
    assert members[-10:] == [[i] for i in range(n - 10, n)]  # the 10 newest one by one
    assert 1 <= len(members) - 10 <= 3 and all(lab.n_events > 1 or len(m) == 1 for lab, m in zip(expl.labels, members, strict=True))
    assert len(expl.labels) == len(expl.values) == len(members)
    tol = 1e-4 * max(1.0, abs(expl.fx))
    for part in (expl.events, expl.periods, expl.groups):
        assert abs(part.values.sum() + part.base_values - expl.fx) <= tol
    assert len(expl.periods.values) == n  # periods stay per event (sessions to months)
    # a player's value is what its events do together: removing a group removes all its events
    game = explainer.game_for(lh, expl)
    first = np.ones((1, game.n), bool)
    first[0, 0] = False
    rows = np.ones((1, n), bool)
    rows[0, members[0]] = False
    assert game.events(first)[0] == pytest.approx(game.event_values(rows)[0], abs=1e-9)
    curves = deletion_curves(explainer, lh, expl, n_random=2)
    assert all(len(c.scores) == len(members) + 1 for c in curves.curves.values())
    assert curves.curves["shap"].scores[-1] == pytest.approx(expl.base, abs=1e-5)
    assert curves.attention is not None and curves.attention.sum() == pytest.approx(1.0, abs=1e-6)
