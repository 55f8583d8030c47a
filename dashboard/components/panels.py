"""Small pieces the pages share: a model result or a clear message, tables shown as text, CSV bytes, the report
download."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from core.errors import InterestLensError
from dashboard import data
from dashboard.components.charts import md_text
from dashboard.components.guards import train_command

log = logging.getLogger(__name__)

__all__ = [
    "no_model",
    "model_result",
    "csv",
    "history_table",
    "recommendation_table",
    "trajectory_caption",
    "report_download",
]


def no_model() -> None:
    """Say that this panel needs a trained model, and how to get one."""
    st.info("This panel needs a trained model. Train the default one with:")
    st.code(train_command(data.db_path()), language="bash")


def model_result(name: str, model_dir: Path, *args: Any) -> Any:
    """`data.model_call(name, …)`, or None after a clear message (an error sentence, or a missing capability)."""
    try:
        with st.spinner("Computing…", show_time=True):
            return data.model_call(name, model_dir, *args)
    except InterestLensError as exc:
        st.error(md_text(exc))
    except ImportError as exc:  # a core capability still being written
        log.info("model call %s unavailable: %s", name, exc)
        st.info("This view is not available in this build of InterestLens yet.")
    except Exception:  # never a traceback on screen: say so, keep the details in the server log
        log.exception("model call %s failed", name)
        st.error(f"Computing this view ({name}) failed unexpectedly; the details are in the server log.")
    return None


def csv(df: pd.DataFrame) -> bytes:
    """A table as CSV bytes; cells that a spreadsheet would run as a formula are prefixed with a quote."""
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(_cell, na_action="ignore")
    return out.to_csv(index=False).encode("utf-8")


def _cell(v: object) -> object:
    if isinstance(v, (list, tuple)):
        v = ", ".join(map(str, v))
    elif isinstance(v, dict):
        v = ", ".join(f"{k}={x}" for k, x in sorted(v.items()))
    if isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + v
    return v


def history_table(history: pd.DataFrame) -> pd.DataFrame:
    """`user_history` as a flat table (lists and maps joined into text)."""
    return history.assign(
        categories=history["categories"].map(", ".join),
        context=history["context"].map(lambda m: ", ".join(f"{k}={v}" for k, v in sorted(m.items()))),
    )


def recommendation_table(recs: pd.DataFrame, key: str) -> str | None:
    """The top-K list as a selectable table; returns the picked item id (None when no row is picked)."""
    table = recs.assign(categories=recs["categories"].map(", ".join))[["rank", "item_id", "title", "score", "categories"]]
    event = st.dataframe(
        table, hide_index=True, width="stretch", key=key, on_select="rerun", selection_mode="single-row",
        column_config={"score": st.column_config.NumberColumn(format="%.3f")},
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


def report_download(model_dir: Path, user: str, history: pd.DataFrame) -> None:
    """A button that builds and downloads the self-contained HTML report of one user."""
    from dashboard.components.report import user_report

    if st.button("Build an HTML report of this user", key="user_report_build", icon=":material/description:"):
        traj = model_result("trajectory", model_dir, user)
        recs = model_result("recommend", model_dir, user, 10)
        explanation = None
        if recs is not None and len(recs):
            view = model_result("explain", model_dir, user, str(recs["item_id"].iloc[0]))
            explanation = view.explanation if view is not None else None
        html_text = user_report(user, history, traj, recs, explanation, model_name=model_dir.name)
        st.download_button(
            "Download the report (HTML)", html_text.encode("utf-8"), f"interestlens_user_{user}.html", "text/html",
            key="user_report_download",
        )
