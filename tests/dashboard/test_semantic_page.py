"""Semantics on screen: interests in words on the user's trajectory, similar items for a recommendation, search by
meaning over items and users — all equal to `core.semantic` with the tiny deterministic test encoder — and one clear
sentence (with everything else working) where the vectors or the encoder are missing."""

from __future__ import annotations

from pathlib import Path

import pytest
from dashboard_helpers import USER, figure, open_page, problems

from core.checkpoint import load_checkpoint
from core.semantic import describe_user, read_vectors, search_items, search_users, similar_items
from core.semantic.vectors import default_vectors_path
from core.sequences import load_sequences
from core.store import connect_read
from core.trajectory import TrajectoryAnalyzer
from dashboard.cache import semantic as sem

QUERY = "falcon scarf"


@pytest.fixture
def text_env(monkeypatch, semantic_db, text_model_dir) -> tuple[Path, Path]:
    """The app on the database whose item vectors the tiny encoder made, with the model trained with text."""
    monkeypatch.setenv("INTERESTLENS_DB", str(semantic_db))
    monkeypatch.setenv("INTERESTLENS_MODEL", str(text_model_dir))
    monkeypatch.setenv("INTERESTLENS_MODELS", str(text_model_dir.parent))
    return semantic_db, text_model_dir


@pytest.fixture
def encoder(tiny_text_encoder):
    """The tiny encoder registered with the app, as a process embedding the app would register its own."""
    sem.register_text_encoder(tiny_text_encoder)
    yield tiny_text_encoder
    sem.unregister_text_encoder(tiny_text_encoder.name)


def _table(at, column: str):
    return next(d.value for d in at.dataframe if column in d.value.columns)


def test_interests_in_words_at_each_segment_end_are_cores(text_env):
    db, model = text_env
    loaded = load_checkpoint(model)
    tv = read_vectors(default_vectors_path(db))
    with connect_read(db) as con:
        traj = TrajectoryAnalyzer(loaded).user(con, USER)
        seqs = load_sequences(con, loaded.vocab, users=[USER])
    steps = sorted({max(0, c - 1) for c in traj.change_points} | {len(traj) - 1})
    expected = describe_user(loaded, tv, seqs, USER, steps=steps, k=5)
    at = open_page("user_explorer", user=USER)
    assert not problems(at)
    words = _table(at, "interest in words")
    assert words["interest in words"].tolist() == [p.summary for p in expected.points]
    assert words["until"].iloc[-1] == "now" and len(words) == len(steps)
    assert figure(at, "user_trajectory")["data"]  # the trajectory is still drawn beside it


def test_similar_items_for_a_picked_recommendation(text_env):
    db, _ = text_env
    at = open_page("user_explorer", user=USER)
    recs = _table(at, "score")
    at.session_state["user_recs"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    assert not problems(at)
    expected = similar_items(read_vectors(default_vectors_path(db)), str(recs["item_id"].iloc[0]), 5)
    shown = _table(at, "similarity")
    assert shown["item_id"].tolist() == [m.key for m in expected]
    assert shown["similarity"].round(6).tolist() == [round(m.score, 6) for m in expected]


def test_search_by_meaning_over_items_and_users(text_env, encoder):
    db, model = text_env
    tv = read_vectors(default_vectors_path(db))
    at = open_page("search", q=QUERY)
    assert not problems(at)
    items = _table(at, "item_id")
    expected = search_items(tv, QUERY, encoder, 10)
    assert items["item_id"].tolist() == [m.key for m in expected]
    for text, why in zip(items["text"], items["why"], strict=True):  # every reason names a term of that item
        assert why == "its wording as a whole" or why.split("“")[1].split("”")[0].lower() in text.lower()
    planted = tv.item_ids[7]  # an item whose whole text is the query: its own neighbour, at similarity 1
    exact = open_page("search", q=tv.texts[7])
    assert _table(exact, "item_id")["item_id"].iloc[0] == planted
    assert _table(exact, "similarity")["similarity"].iloc[0] == pytest.approx(1.0, abs=1e-5)
    at.segmented_control(key="search_what").set_value("users").run()
    assert not problems(at)
    loaded = load_checkpoint(model)
    with connect_read(db) as con:
        users = search_users(loaded, tv, load_sequences(con, loaded.vocab), QUERY, encoder, 10)
    assert _table(at, "user_id")["user_id"].tolist() == [u.user_id for u in users]
    assert at.query_params["q"] == QUERY  # the search is a link
    linked = open_page("search", q=QUERY, search_what="users", search_k="5")
    assert linked.segmented_control(key="search_what").value == "users" and linked.slider(key="search_k").value == 5
    assert _table(linked, "user_id")["user_id"].tolist() == [u.user_id for u in users][:5]  # ?search_k= is the count


def test_vectors_made_by_another_encoder_say_so_on_the_search_page(text_env):
    at = open_page("search", q=QUERY)  # no encoder registered: the installed one (if any) did not make the vectors
    assert not at.exception
    assert any("tiny-test-encoder" in i.value or "text encoder" in i.value for i in at.info)
    explorer = open_page("user_explorer", user=USER)  # words need no encoder: they still show
    assert not problems(explorer) and len(_table(explorer, "interest in words"))


def test_without_vectors_one_sentence_and_everything_else_works(dash_env):
    at = open_page("user_explorer", user=USER)
    assert not problems(at)
    info = [i.value for i in at.info if "text vectors" in i.value or "text encoder" in i.value]
    assert len(info) == 1 and info[0].count(". ") == 0  # one sentence
    assert figure(at, "user_trajectory")["data"] and figure(at, "user_timeline")["data"]
    search = open_page("search", q=QUERY)
    assert not search.exception and any(i.value == info[0] for i in search.info)
