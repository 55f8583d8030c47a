"""Live mode: the switch, the watcher that redraws a page when new events land, and what is new for one user.

The watcher is a small `st.fragment(run_every=…)`: every few seconds it asks `cache.version()` (a `stat` of the
database file while nothing changed, `core.live.data_version` after a writer committed) and reruns the page only
when the version differs from the one the page was drawn with, so an idle live page does no work. The shared read
connection is closed after each check and each redraw (`cache.release`): a live view holds no connection between
refreshes, so `interestlens follow` never waits for the app.

What is new for a user (`user_marks`): events written since the switch was turned on (`core.live.events_since`),
events later than the model's training cut-off, and items and categories the model has never seen (it skips them).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from core.live import trained_until_of
from dashboard import cache
from dashboard.cache import DbRef, ModelRef
from dashboard.cache.shared import per_user
from dashboard.components.charts import md_text

__all__ = ["LIVE_KEY", "Marks", "controls", "since", "watch", "user_marks", "caption"]

LIVE_KEY = "live"  # the switch's widget key and URL parameter (shared by the pages that have one)
_SINCE = "_live_since"  # the data version when the switch was turned on
_DRAWN = "_live_drawn"  # the data version the page was last drawn with


def controls(page: str) -> float | None:
    """The live switch (in the URL as ?live=true) and its refresh interval; the interval in seconds when on."""
    c = st.columns([1, 1, 5], vertical_alignment="center")
    on = c[0].toggle("Live", key=LIVE_KEY, bind="query-params",
                     help="Redraw as new events arrive (e.g. from `interestlens follow`) and mark what is new.")
    if not on:
        st.session_state.pop(_SINCE, None)
        return None
    every = c[1].selectbox("Refresh every", [1, 2, 5, 10], index=1, key=f"{page}_live_every", bind="query-params",
                           format_func=lambda s: f"every {s} s", label_visibility="collapsed")
    if _SINCE not in st.session_state:
        st.session_state[_SINCE] = cache.version()
    start = st.session_state[_SINCE]
    c[2].caption(f"Live since run {start.last_run_id} ({start.events:,} events then); new events are ringed.")
    return float(every)


def since() -> int | None:
    """The last ingest run that was already there when the switch was turned on (None while it is off)."""
    v = st.session_state.get(_SINCE)
    return None if v is None else int(v.last_run_id)


def watch(every: float | None, drawn) -> None:
    """At the end of a live page: remember the version it was drawn with and check for a new one every `every` s."""
    if every is None:
        return
    st.session_state[_DRAWN] = drawn
    cache.release()

    @st.fragment(run_every=every)
    def _watch() -> None:
        now = cache.version()
        cache.release()
        if now != st.session_state.get(_DRAWN):
            st.rerun()
        st.caption(f"Live · checked {dt.datetime.now():%H:%M:%S} · latest run {now.last_run_id}")

    _watch()


@dataclass
class Marks:
    """What is new in one user's history (steps index `user_history`)."""

    new_steps: np.ndarray  # written since the live switch was turned on
    after_training: np.ndarray  # later than the model's training cut-off
    skipped_steps: np.ndarray  # items the model has never seen: it skips these events
    trained_until: dt.datetime | None = None
    unknown_items: list[str] = field(default_factory=list)
    new_categories: list[str] = field(default_factory=list)
    new_user: bool = False  # every event is later than the training cut-off


@st.cache_resource(show_spinner=False, max_entries=8)  # frozensets: shared read-only, never copied per run
def _vocab_sets(model_dir: str, stamp: int) -> tuple[frozenset, frozenset]:
    vocab = cache.read_card(Path(model_dir))["vocab"]
    return frozenset(map(str, vocab.get("items", []))), frozenset(map(str, vocab.get("categories", [])))


def user_marks(db: DbRef, user: str, history: pd.DataFrame, model: ModelRef | None) -> Marks:
    """Mark the user's events that are new since the switch was turned on or unknown to the model. `history` is
    `cache.user_history(db, user)`. The marks against the model are shared by every session (`_model_marks`);
    only the live "new" steps are this session's own."""
    marks = _model_marks(db, user, model)
    run = since()
    if run is None:
        return marks
    added = cache.events_since(db, run, user)
    keys = set(zip(added["item_id"].astype(str), pd.to_datetime(added["ts"]), added["event_type"].astype(str), strict=True))
    hist_keys = zip(history["item_id"].astype(str), pd.to_datetime(history["ts"]), history["event_type"].astype(str), strict=True)
    new = np.array([s for s, k in zip(history["step"], hist_keys, strict=True) if k in keys], dtype=np.int64)
    return replace(marks, new_steps=new)


@per_user
def _model_marks(db: DbRef, user: str, model: ModelRef | None) -> Marks:
    """The marks of `cache.user_history(db, user)` against the model: skipped items, events after training."""
    empty = np.zeros(0, np.int64)
    model_dir = model.dir if model is not None else None
    if model_dir is None or not (model_dir / "vocab.json").is_file():
        return Marks(empty, empty, empty)
    history = cache.user_history(db, user)
    items, categories = _vocab_sets(str(model_dir), (model_dir / "vocab.json").stat().st_mtime_ns)
    until = trained_until_of(cache.read_card(model_dir)["metrics"])
    # a set lookup per event: `Series.isin(items)` on the Arrow string column rebuilt an array of the whole
    # vocabulary on every run (ML-100k's 1,682 items: most of this function's time, docs/serving.md)
    ids = history["item_id"].astype(str)
    known = np.fromiter((i in items for i in ids), dtype=bool, count=len(ids))
    skipped = history["step"].to_numpy()[~known]
    after = history["step"].to_numpy()[pd.to_datetime(history["ts"]).to_numpy() > np.datetime64(until)] if until else empty
    seen_cats = dict.fromkeys(c for cats in history["categories"] for c in cats)
    return Marks(
        empty, np.asarray(after, np.int64), np.asarray(skipped, np.int64), until,
        list(dict.fromkeys(ids[~known])), [c for c in seen_cats if c not in categories],
        bool(until) and len(after) == len(history),
    )


def caption(m: Marks, live: bool) -> str | None:
    """One line saying what is new (None when nothing is)."""
    parts = []
    if live:
        parts.append(f"{len(m.new_steps):,} event{'s' if len(m.new_steps) != 1 else ''} since live mode was switched on (ringed)")
    if m.new_user:
        parts.append("a **new user** since the model was trained")
    elif len(m.after_training):
        parts.append(f"{len(m.after_training):,} events after the model's training cut-off ({m.trained_until:%Y-%m-%d %H:%M})")
    if m.unknown_items:
        shown = ", ".join(md_text(i) for i in m.unknown_items[:5]) + (" …" if len(m.unknown_items) > 5 else "")
        parts.append(f"{len(m.unknown_items):,} new item{'s' if len(m.unknown_items) != 1 else ''} the model has never "
                     f"seen, skipped by it (✕): {shown}")
    if m.new_categories:
        parts.append("new categories: " + ", ".join(md_text(c) for c in m.new_categories[:5]))
    return " · ".join(parts) if parts else None
