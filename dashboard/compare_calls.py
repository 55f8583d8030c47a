"""The Compare page's cached calls into `core.compare`, `core.trajectory` and `core.explain` (typed results)."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard import cache

__all__ = ["comparison", "comparison_page", "protocols", "user_side"]


@st.cache_data(show_spinner="Comparing the two models…", max_entries=8)
def comparison(db: str, model_a: str, model_b: str, stamp: tuple[int, int, int], recbole: bool = False) -> Any:
    """`core.compare.compare_models` (a Comparison; `recbole`: RecBole's protocol too), cached until the database
    changes."""
    from core.compare import compare_models

    return compare_models(db, model_a, model_b, recbole=recbole)


@st.cache_data(show_spinner=False, max_entries=8)
def comparison_page(db: str, model_a: str, model_b: str, stamp: tuple[int, int, int], recbole: bool = False) -> str:
    """The self-contained HTML export of the comparison (`core.compare.comparison_html`)."""
    from core.compare import comparison_html

    return comparison_html(comparison(db, model_a, model_b, stamp, recbole))


@st.cache_data(show_spinner=False, max_entries=8)
def protocols(db: str, model_a: str, model_b: str, stamp: tuple[int, int, int], recbole: bool = False) -> Any:
    """The comparison's accuracy per protocol as a table (`core.compare.protocol_table`)."""
    from core.compare import protocol_table

    return protocol_table(comparison(db, model_a, model_b, stamp, recbole).protocols)


@st.cache_data(show_spinner=False, max_entries=32)
def user_side(db: str, model_dir: str, user_id: str, stamp: tuple[int, int, int]) -> tuple[Any, Any]:
    """(trajectory, explanation of the top-1) of one user under one model; either None when not available."""
    from core.errors import InterestLensError
    from core.explain import HistoryExplainer, load_labelled_history
    from core.store import connect_read
    from core.trajectory import TrajectoryAnalyzer

    loaded = cache.loaded_model(cache.model_ref(model_dir))
    with connect_read(db) as con:
        try:
            traj = TrajectoryAnalyzer(loaded).user(con, user_id)
        except InterestLensError:
            traj = None
        try:
            expl = HistoryExplainer(loaded).explain(load_labelled_history(con, loaded, user_id), windows=False)
        except InterestLensError:
            expl = None
    return traj, expl
