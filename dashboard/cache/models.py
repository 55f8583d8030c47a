"""Cached model-backed results: each is an `st.cache_data` function of a `DbRef`, a `ModelRef` and plain arguments
that calls one core capability with the analysers of `dashboard.cache.resources`. They only call `core` and join in
titles to show; nothing here computes a number of its own. Results are picklable dataclasses and DataFrames."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from core.store import queries
from dashboard import demo
from dashboard.cache.handles import DbRef, ModelRef
from dashboard.cache.queries import cohort_members
from dashboard.cache.queries import user_history as queries_user_history
from dashboard.cache.resources import (
    attention_analyser,
    explainer,
    loaded_model,
    trajectory_analyser,
    warm_explanations,
)
from dashboard.cache.shared import per_user
from dashboard.cache.social import friend_context
from dashboard.cache.views import user_views
from dashboard.explain_pool import explain_here, read_job, shared_pool
from dashboard.reader import READER

if TYPE_CHECKING:  # imported on first use: a page without a model never loads torch or shap
    from core.attention import StepAttention
    from core.explain import DeletionCurves, HistoryExplanation, WhatIfResult, WindowValue
    from core.fairness import FairnessReport, LoadedInputs, WindowRow
    from core.social.evidence import FriendExplanation
    from core.trajectory import CohortTrajectory, Trajectory, UserView

__all__ = [
    "MAX_K",
    "recommend",
    "trajectory",
    "user_view",
    "attention",
    "explain",
    "periods",
    "deletion",
    "Deletion",
    "what_if",
    "friend_values",
    "fairness",
    "fairness_trend",
    "FairnessView",
    "cohort_trajectories",
]

MAX_K = 50  # the user view ranks this many; the explorer's slider shows the first k of them
_PER_USER = 64  # model results per user: a few hundred KB each (trajectories, attention)
_EXPLAINED = 128  # explanations (SHAP, the costliest result the app keeps: ~0.3 s CPU and ~10 KB each on ML-100k)


@st.cache_data(show_spinner=False, max_entries=_PER_USER)
def recommend(db: DbRef, model: ModelRef, user_id: str, k: int) -> pd.DataFrame:
    """The user's top-K: rank, item_id, title, score, categories (`core.recommend.recommend_users`)."""
    from core.recommend import recommend_users

    warm_explanations(db, model)  # the Explain page starts here: its first explanation should find SHAP loaded
    with READER.cursor(db.path, db.stamp) as con, demo.stored_user(con, user_id) as uid:
        recs = recommend_users(loaded_model(model), con, [uid], int(k))
        recs = recs[recs["user_id"].astype(str) == uid].sort_values("rank").reset_index(drop=True)
        info = queries.item_lookup(con, recs["item_id"].astype(str).tolist())
    out = recs[["rank", "item_id", "score"]].assign(item_id=recs["item_id"].astype(str))
    out = out.merge(info[["item_id", "title", "categories"]], on="item_id", how="left")
    out["categories"] = out["categories"].map(lambda c: list(c) if isinstance(c, list) else [])
    return out[["rank", "title", "item_id", "score", "categories"]]


@st.cache_data(show_spinner=False, max_entries=_PER_USER)
def trajectory(db: DbRef, model: ModelRef, user_id: str) -> Trajectory:
    """`core.trajectory.TrajectoryAnalyzer.user`: the user's full trajectory."""
    with READER.cursor(db.path, db.stamp) as con, demo.stored_user(con, user_id) as uid:
        return demo.shown(trajectory_analyser(model).user(con, uid))


@per_user
def user_view(db: DbRef, model: ModelRef, user_id: str) -> UserView:
    """`core.trajectory.user_view`: history, trajectory and top-`MAX_K` from one read (`attention` is None).

    Shared by every session and never copied (`st.cache_resource`, bounded like the explorer's other per-user
    entries, `dashboard.cache.shared`): callers only read it. As a `cache_data` entry it was unpickled twice per explorer
    run, and 64 entries were fewer than the users many analysts visit (docs/serving-memory.md)."""
    from core.trajectory import user_view as core_user_view

    warm_explanations(db, model)  # a shared link opens the explorer first: warm the explainers meanwhile
    analyser = trajectory_analyser(model)
    # The trajectory and top-K come from the model's views file when it holds this user's very history
    # (`dashboard.cache.views`: a file read instead of the model and the change points; core's user view 31 -> 14 ms
    # of CPU p50 on ML-100k with the history read, bench/dashboard_ab.py, docs/serving-cpu.md).
    views = user_views(db, model, analyser, MAX_K)
    # The history the page has read already (shared cache); in demo mode that one is scrubbed, so core reads it.
    history = queries_user_history(db, user_id) if demo.active() is None else None
    # No attention: the explorer does not show it (the Attention page asks `attention` itself), and computing it
    # for every user switch, then copying it out of the cache on every rerun, cost ~10 ms a switch on ML-100k.
    with READER.cursor(db.path, db.stamp) as con, demo.stored_user(con, user_id) as uid:
        # a social model: the friend context the Friends panel of this switch reads too (dashboard.cache.social)
        friends = friend_context(db, model, con, uid) if analyser.social else None
        return demo.shown(core_user_view(analyser, con, uid, MAX_K, views=views, history=history, friends=friends))


@st.cache_data(show_spinner=False, max_entries=_PER_USER)
def attention(db: DbRef, model: ModelRef, user_id: str, step: int | None = None) -> StepAttention:
    """`core.attention.AttentionAnalyzer.user`: attention at one step (default the last)."""
    with READER.cursor(db.path, db.stamp) as con, demo.stored_user(con, user_id) as uid:
        return demo.shown(attention_analyser(model).user(con, uid, step))


@st.cache_data(show_spinner=False, max_entries=_EXPLAINED)
def explain(db: DbRef, model: ModelRef, user_id: str, item_id: str | None) -> HistoryExplanation:
    """`core.explain.HistoryExplainer.explain` (events and feature groups; time windows: `periods`), computed in
    an explanation worker (`dashboard.explain_pool`) when the server has them, else here."""
    pool = shared_pool()
    # The history is read here, on the shared reader the page has just used (warm), and sent to the worker: a
    # worker that opened the file itself paid a cold DuckDB open per explanation (docs/dashboard.md).
    with READER.cursor(db.path, db.stamp) as con, demo.stored_user(con, user_id) as uid:
        job = read_job(con, loaded_model(model), model.path, model.stamp, uid, item_id)
    # The cursor is closed before the explanation runs (seconds on a busy server): a writer (live ingest) or the
    # reopen after a new commit would otherwise wait for it. Errors still name the id the page shows.
    with demo.named_as(uid, user_id):
        if pool is not None:  # off this process's interpreter lock: other sessions' switches go on meanwhile
            return demo.shown(pool.explain(job))
        return demo.shown(explain_here(job, explainer(model)))


@st.cache_data(show_spinner=False, max_entries=_EXPLAINED)
def periods(db: DbRef, model: ModelRef, user_id: str, item_id: str) -> list[WindowValue]:
    """`core.explain.HistoryExplainer.periods`: the values of the history's sessions, days, weeks and months."""
    from core.explain import load_labelled_history

    with READER.cursor(db.path, db.stamp) as con, demo.stored_user(con, user_id) as uid:
        lh = load_labelled_history(con, loaded_model(model), uid)
    return explainer(model).periods(lh, target=item_id)[1]


@dataclass(frozen=True)
class Deletion:
    """An explanation with its deletion curves (SHAP against attention, recency and chance)."""

    explanation: HistoryExplanation
    curves: DeletionCurves


@st.cache_data(show_spinner=False, max_entries=_EXPLAINED)
def deletion(db: DbRef, model: ModelRef, user_id: str, item_id: str) -> Deletion:
    """`core.explain.deletion_curves` over the (cached) explanation of `explain`."""
    from core.explain import deletion_curves, load_labelled_history

    expl = explain(db, model, user_id, item_id)
    with READER.cursor(db.path, db.stamp) as con, demo.stored_user(con, user_id) as uid:
        lh = load_labelled_history(con, loaded_model(model), uid)
    return Deletion(expl, deletion_curves(explainer(model), lh, expl))


@st.cache_data(show_spinner=False, max_entries=_EXPLAINED)
def what_if(db: DbRef, model: ModelRef, user_id: str, edits: tuple, k: int, target: str) -> WhatIfResult:
    """`core.explain.what_if`: the history with `edits` applied, re-ranked, `target` followed (nothing written)."""
    from core.explain import load_labelled_history
    from core.explain import what_if as core_what_if

    inserted = [e.item_id for e in edits if hasattr(e, "item_id")]
    with READER.cursor(db.path, db.stamp) as con, demo.stored_user(con, user_id) as uid:
        lh = load_labelled_history(con, loaded_model(model), uid)
        known = queries.item_lookup(con, inserted) if inserted else None
    titles = dict(zip(known["item_id"], known["title"], strict=True)) if known is not None else None
    return core_what_if(explainer(model), lh, list(edits), k=int(k), target=str(target), explain=False, titles=titles)


@st.cache_data(show_spinner=False, max_entries=_EXPLAINED)
def friend_values(db: DbRef, model: ModelRef, user_id: str, item_id: str) -> FriendExplanation | None:
    """`core.social.evidence.explain_friends`: the user's friends as players beside the latest window's events
    (friends shown as pseudonyms in demo mode); None for a model without the social branch."""
    from core.social.evidence import explain_friends

    loaded = loaded_model(model)
    if loaded.model is None or loaded.model.social is None:
        return None
    with READER.cursor(db.path, db.stamp) as con, demo.stored_user(con, user_id) as uid:
        fx = explain_friends(con, loaded, uid, loaded.vocab.item_index(item_id),
                             context=friend_context(db, model, con, uid))
    p = demo.active()
    return fx if p is None else replace(fx, friends=p.pseudonyms(fx.friends))


@dataclass(frozen=True)
class FairnessView:
    """The fairness report plus what its charts need beyond it."""

    report: FairnessReport
    counts: pd.Series  # c_i: times each catalogue item is in a top-K list (zeros included), for the Lorenz curve
    computed: bool  # some inputs were computed now because they were not saved beside the model


def grouped_by(by: tuple[str, ...]) -> list[str] | None:
    """The fairness grouping as core takes it (None: core's default); demo mode keeps derived attributes only."""
    from core.fairness import DERIVED_ATTRIBUTES

    if demo.hides_attributes():  # demo mode: group by derived attributes only
        by = tuple(b for b in by if b in DERIVED_ATTRIBUTES)
    return list(by) or None


@st.cache_resource(show_spinner=False, max_entries=2)
def _fairness_inputs(db: DbRef, model: ModelRef, k: int) -> LoadedInputs:
    """`core.fairness.inputs.load_inputs` (read-only afterwards), shared by the report and its trend; what had to
    be computed is saved beside the model for the next open."""
    from core.fairness.inputs import load_inputs

    return load_inputs(db.path, model.path, k=int(k), save=True)


@st.cache_data(show_spinner=False, max_entries=8)
def fairness(db: DbRef, model: ModelRef, k: int, by: tuple[str, ...], n_boot: int, min_group_size: int) -> FairnessView:
    """`core.fairness.fairness_report` without the trend (`fairness_trend`), over the saved or computed inputs."""
    from core.fairness import fairness_report, recommendation_counts

    loaded = _fairness_inputs(db, model, int(k))
    report = fairness_report(loaded.inputs, k=int(k), by=grouped_by(by), n_boot=int(n_boot) or None,
                             recommend_fn=None, min_group_size=int(min_group_size))
    recs = loaded.inputs.recs
    counts = recommendation_counts(recs[recs["rank"] <= int(k)], loaded.inputs.catalogue)
    return FairnessView(report, counts, bool(loaded.notes))


@st.cache_data(show_spinner=False, max_entries=8)
def fairness_trend(db: DbRef, model: ModelRef, k: int, by: tuple[str, ...], freq: str,
                   min_users: int) -> list[WindowRow]:
    """`core.fairness.over_time` per calendar window (the trend windows' lists read back when saved); windows
    with fewer than `min_users` scored users are marked by core, each window's means carry bootstrap intervals."""
    from core.fairness import TREND_USERS, over_time

    loaded = _fairness_inputs(db, model, int(k))
    inp = loaded.inputs
    return over_time(inp.events, loaded.recommend_fn, int(k), inp.item_categories, inp.user_attributes,
                     grouped_by(by), freq, min_users=int(min_users), max_users=TREND_USERS)


@st.cache_data(show_spinner=False, max_entries=16)
def cohort_trajectories(db: DbRef, model: ModelRef, attributes: tuple[tuple[str, str], ...],
                        period: str, groups: tuple[tuple[str, str], ...] = ()) -> CohortTrajectory:
    """`core.trajectory.cohort_trajectory`: the segment's mean model interest by calendar period (attributes, and
    activity/tenure groups)."""
    from core.trajectory import cohort_trajectory

    users = cohort_members(db, groups)
    with READER.cursor(db.path, db.stamp) as con:
        return cohort_trajectory(con, trajectory_analyser(model), attributes, period=period, users=users)
