"""Cached reads of the store: each is an `st.cache_data` function of a `DbRef` (and plain arguments) that calls
`core.store` on the shared read-only connection. A new commit changes the `DbRef`, so nothing stale is shown.

In demo mode user ids that come in are pseudonyms and are resolved inside the call; ids that go out are pseudonyms,
and user attributes are hidden (`dashboard.demo`)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import streamlit as st

from core import live
from core.store import queries, views
from core.store.queries import UserFilter
from core.store.views import ModelFit
from dashboard import demo
from dashboard.cache.handles import DbRef, read_card
from dashboard.cache.shared import per_user
from dashboard.reader import READER

__all__ = [
    "dataset_summary",
    "list_users",
    "user_history",
    "user_exists",
    "user_attributes",
    "user_attribute_keys",
    "attribute_values",
    "events_over_time",
    "category_share_over_time",
    "top_items",
    "activity_distribution",
    "item_lookup",
    "find_items",
    "log_user_groups",
    "group_labels",
    "cohort_members",
    "cohort_sizes",
    "cohort_category_share",
    "model_fit",
    "ingest_runs",
    "run_rejects",
    "events_since",
]

_SMALL = 16  # whole-database summaries: one per database state and setting
_PER_USER = 256  # per-user reads: an analyst moves through a few hundred users between commits


@st.cache_data(show_spinner=False, max_entries=_SMALL)
def dataset_summary(db: DbRef) -> dict:
    """`core.store.queries.dataset_summary`: counts, time span, categories and event types."""
    with READER.cursor(db.path, db.stamp) as con:
        return queries.dataset_summary(con)


@st.cache_data(show_spinner=False, max_entries=64)
def list_users(db: DbRef, flt: UserFilter, order: str, limit: int) -> pd.DataFrame:
    """`core.store.queries.list_users`: users with counts and time span, filtered and ordered."""
    with READER.cursor(db.path, db.stamp) as con:
        return demo.list_users(con, flt, order, limit)


@per_user
def user_history(db: DbRef, user_id: str) -> pd.DataFrame:
    """`core.store.queries.user_history`: the user's events, oldest first, with titles and categories.

    Shared by every session, never copied (`st.cache_resource`, bounded like the explorer's other per-user
    entries, `dashboard.cache.shared`): callers only read it (unpickling its Arrow string columns was a visible part of every
    explorer run, docs/serving-memory.md)."""
    with READER.cursor(db.path, db.stamp) as con, demo.stored_user(con, user_id) as uid:
        return demo.shown(queries.user_history(con, uid))


@st.cache_data(show_spinner=False, max_entries=_PER_USER)
def user_exists(db: DbRef, user_id: str) -> bool:
    """`core.store.views.user_exists`."""
    with READER.cursor(db.path, db.stamp) as con, demo.stored_user(con, user_id) as uid:
        return views.user_exists(con, uid)


@st.cache_data(show_spinner=False, max_entries=_PER_USER)
def user_attributes(db: DbRef, user_id: str) -> dict[str, str]:
    """`core.store.views.user_attributes` ({} in demo mode)."""
    if demo.hides_attributes():
        return {}
    with READER.cursor(db.path, db.stamp) as con:
        return views.user_attributes(con, user_id)


@st.cache_data(show_spinner=False, max_entries=_SMALL)
def user_attribute_keys(db: DbRef) -> list[str]:
    """`core.store.queries.user_attribute_keys` ([] in demo mode)."""
    if demo.hides_attributes():
        return []
    with READER.cursor(db.path, db.stamp) as con:
        return queries.user_attribute_keys(con)


@st.cache_data(show_spinner=False, max_entries=64)
def attribute_values(db: DbRef, key: str) -> list[str]:
    """`core.store.views.attribute_values`: the values of one attribute (at most 200; [] in demo mode)."""
    if demo.hides_attributes():
        return []
    with READER.cursor(db.path, db.stamp) as con:
        return views.attribute_values(con, key)


@st.cache_data(show_spinner=False, max_entries=_SMALL)
def events_over_time(db: DbRef, period: str) -> pd.DataFrame:
    """`core.store.queries.events_over_time`: events per period and event type."""
    with READER.cursor(db.path, db.stamp) as con:
        return queries.events_over_time(con, period)


@st.cache_data(show_spinner=False, max_entries=_SMALL)
def category_share_over_time(db: DbRef, period: str) -> pd.DataFrame:
    """`core.store.queries.category_share_over_time`: each category's share of the events per period."""
    with READER.cursor(db.path, db.stamp) as con:
        return queries.category_share_over_time(con, period)


@st.cache_data(show_spinner=False, max_entries=_SMALL)
def top_items(db: DbRef, limit: int) -> pd.DataFrame:
    """`core.store.queries.top_items`: the most frequent items."""
    with READER.cursor(db.path, db.stamp) as con:
        return queries.top_items(con, limit)


@st.cache_data(show_spinner=False, max_entries=_SMALL)
def activity_distribution(db: DbRef) -> pd.DataFrame:
    """`core.store.queries.activity_distribution`: users by number of events."""
    with READER.cursor(db.path, db.stamp) as con:
        return queries.activity_distribution(con)


@st.cache_data(show_spinner=False, max_entries=_PER_USER)
def item_lookup(db: DbRef, item_ids: tuple[str, ...]) -> pd.DataFrame:
    """`core.store.queries.item_lookup`: titles and categories of the given items."""
    with READER.cursor(db.path, db.stamp) as con:
        return queries.item_lookup(con, list(item_ids))


@st.cache_data(show_spinner=False, max_entries=64)
def find_items(db: DbRef, text: str, limit: int) -> pd.DataFrame:
    """`core.store.queries.find_items`: items whose title (or id) contains the text."""
    with READER.cursor(db.path, db.stamp) as con:
        return queries.find_items(con, text, limit)


@st.cache_data(show_spinner=False, max_entries=_SMALL)
def log_user_groups(db: DbRef) -> pd.DataFrame:
    """`core.fairness.log_user_groups`: every user's activity and tenure quartile over the whole log."""
    from core.fairness.cohorts import log_user_groups as groups

    with READER.cursor(db.path, db.stamp) as con:
        return groups(con)


def group_labels(db: DbRef, grouping: str) -> list[str]:
    """The labels of one of `log_user_groups`' columns, in order (Q1, Q2, …)."""
    return sorted(log_user_groups(db)[grouping].unique())


def cohort_members(db: DbRef, groups: tuple[tuple[str, str], ...]) -> list[str] | None:
    """The users of the activity/tenure groups chosen (`core.fairness.group_members`); None when none is chosen."""
    from core.fairness import group_members

    return group_members(log_user_groups(db), groups) if groups else None


@st.cache_data(show_spinner=False, max_entries=64)
def cohort_sizes(db: DbRef, attributes: tuple[tuple[str, str], ...], groups: tuple[tuple[str, str], ...] = ()) -> dict:
    """`core.store.views.cohort_sizes`: users and events of a segment (attributes, and activity/tenure groups)."""
    users = cohort_members(db, groups)
    with READER.cursor(db.path, db.stamp) as con:
        return views.cohort_sizes(con, attributes, users)


@st.cache_data(show_spinner=False, max_entries=64)
def cohort_category_share(db: DbRef, attributes: tuple[tuple[str, str], ...], period: str,
                          groups: tuple[tuple[str, str], ...] = ()) -> pd.DataFrame:
    """`core.store.views.cohort_category_share`: the segment's category shares per period."""
    users = cohort_members(db, groups)
    with READER.cursor(db.path, db.stamp) as con:
        return views.cohort_category_share(con, attributes, period, users)


def model_fit(db: DbRef, model_dir: str, trained_until: dt.datetime | None) -> ModelFit:
    """`core.store.views.model_fit` for the checkpoint in `model_dir`: what the database holds that its vocabulary
    lacks. Keyed by the folder and its vocabulary's modification time, not by the vocabulary itself: hashing every
    item id for the cache key was most of the sidebar's time on each run on ML-100k (docs/serving-cpu.md)."""
    vocab = Path(model_dir) / "vocab.json"
    stamp = vocab.stat().st_mtime_ns if vocab.is_file() else 0
    return _model_fit(db, str(model_dir), stamp, trained_until)


@st.cache_data(show_spinner=False, max_entries=_SMALL)
def _model_fit(db: DbRef, model_dir: str, vocab_mtime_ns: int, trained_until: dt.datetime | None) -> ModelFit:
    vocab = read_card(Path(model_dir))["vocab"]
    with READER.cursor(db.path, db.stamp) as con:
        return views.model_fit(con, tuple(vocab.get("items", [])), tuple(vocab.get("categories", [])),
                               tuple(vocab.get("event_types", [])), trained_until)


@st.cache_data(show_spinner=False, max_entries=_SMALL)
def ingest_runs(db: DbRef, limit: int) -> pd.DataFrame:
    """`core.store.views.ingest_runs`: the latest ingest runs."""
    with READER.cursor(db.path, db.stamp) as con:
        return views.ingest_runs(con, limit)


@st.cache_data(show_spinner=False, max_entries=_SMALL)
def run_rejects(db: DbRef, run_id: int) -> pd.DataFrame:
    """`core.store.views.run_rejects`: the rows a run rejected, with reasons (raw text hidden in demo mode)."""
    with READER.cursor(db.path, db.stamp) as con:
        return demo.hide_raw(views.run_rejects(con, run_id))


@st.cache_data(show_spinner=False, max_entries=_PER_USER)
def events_since(db: DbRef, run_id: int, user_id: str) -> pd.DataFrame:
    """`core.live.events_since`: one user's events written after run `run_id`."""
    with READER.cursor(db.path, db.stamp) as con, demo.stored_user(con, user_id) as uid:
        return demo.shown(live.events_since(con, run_id, uid))
