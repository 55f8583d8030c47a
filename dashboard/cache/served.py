"""Cached reads of a served-recommendation log (`core.served`): its variants and the fairness report of what
production served, shown by the Fairness page when its source is a served log. Only calls `core`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from dashboard.cache.handles import DbRef
from dashboard.cache.models import FairnessView, grouped_by

if TYPE_CHECKING:
    from core.fairness import WindowRow

__all__ = ["served_variants", "served_fairness", "served_fairness_trend"]


@st.cache_data(show_spinner=False, max_entries=16)
def served_variants(db: DbRef) -> list[str]:
    """The variants of the database's served log (`core.served.served_variants`); [] without one."""
    from core.served import served_variants as core_variants

    return core_variants(db.path) if db.exists else []


@st.cache_data(show_spinner=False, max_entries=8)
def served_fairness(db: DbRef, variant: str, k: int, by: tuple[str, ...], n_boot: int,
                    min_group_size: int) -> FairnessView:
    """`core.served.served_report` for one variant (no trend: `served_fairness_trend` draws it when its tab opens),
    with the item counts of its Lorenz curve."""
    from core.fairness import recommendation_counts
    from core.served import served_inputs, served_report

    inputs = served_inputs(db.path, variant, int(k))
    report = served_report(db.path, variant, k=int(k), by=grouped_by(by), n_boot=int(n_boot) or None,
                           trend=False, min_group_size=int(min_group_size), inputs=inputs)
    return FairnessView(report, recommendation_counts(inputs.recs, inputs.catalogue), False)


@st.cache_data(show_spinner=False, max_entries=8)
def served_fairness_trend(db: DbRef, variant: str, k: int, by: tuple[str, ...], freq: str,
                          min_users: int) -> list[WindowRow]:
    """`core.served.served_trend`: the served lists of one variant per calendar window."""
    from core.fairness import TREND_USERS
    from core.served.fairness import served_trend

    return served_trend(db.path, variant, int(k), grouped_by(by), freq, max_users=TREND_USERS,
                        min_users=int(min_users))
