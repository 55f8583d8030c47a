"""Small pieces the pages share: a model result or a clear message, tables shown as text, CSV bytes, the report
download."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import pandas as pd
import streamlit as st

from core.errors import InterestLensError
from dashboard import cache
from dashboard.cache import DbRef, ModelRef
from dashboard.components.guards import train_command
from dashboard.components.messages import error_text

log = logging.getLogger(__name__)

SCORE_HELP = "The model's score for the item (higher ranks first); only the order matters, not the value."
# Titles and categories are shown whole: a cut category list hides what the row is about.
WIDE_TEXT = {"title": st.column_config.TextColumn("title", width="large"),
             "categories": st.column_config.TextColumn("categories", width="large")}
P = ParamSpec("P")
R = TypeVar("R")

__all__ = [
    "no_model",
    "computed",
    "csv",
    "history_table",
    "recommendation_table",
    "trajectory_caption",
    "report_download",
]


def no_model() -> None:
    """Say that this panel needs a trained model, and how to get one."""
    st.info("This panel needs a trained model. Train the default one with:")
    st.code(train_command(cache.db_path()), language="bash")


def computed(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R | None:
    """`fn(*args)` (a `dashboard.cache` function) behind a spinner, or None after one clear sentence: the error's
    own for bad input, a pointer to the server log for anything unexpected (never a traceback)."""
    try:
        with st.spinner("Computing…", show_time=True):
            return fn(*args, **kwargs)
    except InterestLensError as exc:
        st.error(error_text(exc))
    except Exception:
        log.exception("%s failed", getattr(fn, "__name__", fn))
        st.error("Computing this view failed unexpectedly; the details are in the server log.")
    return None


def csv(df: pd.DataFrame) -> bytes:
    """A table as CSV bytes; cells that a spreadsheet would run as a formula are prefixed with a quote."""
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            s = out[col]
            kind = pd.api.types.infer_dtype(s, skipna=True) if len(s) > _VECTOR_ROWS else "short"
            if kind == "empty":  # nothing but missing values
                continue
            if kind == "string":  # a long text-only column: one vectorised pass
                risky = s.str[:1].isin(_FORMULA_STARTS).to_numpy(dtype=bool, na_value=False)
                if risky.any():  # (a per-cell map was most of a long history's CSV)
                    out[col] = s.where(~risky, "'" + s.astype(str))
            else:  # lists, maps, numbers mixed in: cell by cell
                out[col] = s.map(_cell, na_action="ignore")
    return out.to_csv(index=False).encode("utf-8")


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet would run as a formula
_VECTOR_ROWS = 64  # below this many rows the per-cell pass is cheaper than the vectorised one's fixed cost


def _cell(v: object) -> object:
    if isinstance(v, (list, tuple)):
        v = ", ".join(map(str, v))
    elif isinstance(v, dict):
        v = ", ".join(f"{k}={x}" for k, x in sorted(v.items()))
    if isinstance(v, str) and v[:1] in _FORMULA_STARTS:
        return "'" + v
    return v


def history_table(history: pd.DataFrame) -> pd.DataFrame:
    """`user_history` as a flat table (lists and maps joined into text), the title before the item id."""
    flat = history.assign(
        categories=history["categories"].map(", ".join),
        context=history["context"].map(lambda m: ", ".join(f"{k}={v}" for k, v in sorted(m.items()))),
    )
    first = [c for c in ("step", "ts", "title", "item_id") if c in flat.columns]
    return flat[first + [c for c in flat.columns if c not in first]]


def recommendation_table(recs: pd.DataFrame, key: str) -> str | None:
    """The top-K list as a selectable table; returns the picked item id (None when no row is picked)."""
    table = recs.assign(categories=recs["categories"].map(", ".join))[["rank", "title", "item_id", "score", "categories"]]
    event = st.dataframe(
        table, hide_index=True, width="stretch", key=key, on_select="rerun", selection_mode="single-row",
        column_config={"score": st.column_config.NumberColumn(format="%.3f", help=SCORE_HELP), **WIDE_TEXT},
    )
    rows = event.selection.rows if event is not None else []
    return str(table["item_id"].iloc[rows[0]]) if rows else None


def trajectory_caption(grid: Any) -> str:
    """One line on how to read the trajectory chart (a `core.trajectory.GridTrajectory`)."""
    n = len(grid.changes)
    where = "per event" if grid.grain == "event" else f"averaged per {grid.grain}"
    return (
        f"Interest over categories {where} (six named, the rest grey). Drift below: how far apart (JS, bits) the "
        f"categories of the 20 events before and after each moment are, on the same 0–1 scale for every user. "
        f"{n} change point{'s' if n != 1 else ''} (dashed), each on a peak of the drift; a session is one moment."
    )


def report_download(db: DbRef, model: ModelRef, user: str, history: pd.DataFrame) -> None:
    """A button that builds and downloads the self-contained HTML report of one user."""
    from dashboard.components.report import user_report

    if st.button("Build an HTML report of this user", key="user_report_build", icon=":material/description:"):
        traj = computed(cache.trajectory, db, model, user)
        recs = computed(cache.recommend, db, model, user, 10)
        explanation = None
        if recs is not None and len(recs):
            explanation = computed(cache.explain, db, model, user, str(recs["item_id"].iloc[0]))
        html_text = user_report(user, history, traj, recs, explanation, model_name=model.name)
        st.download_button(
            "Download the report (HTML)", html_text.encode("utf-8"), f"interestlens_user_{user}.html", "text/html",
            key="user_report_download",
        )
