"""The sidebar: which database, which model (its card and a switch between saved models), and whether the model
still fits the database."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import streamlit as st

from core.errors import InterestLensError
from dashboard import data

__all__ = ["render_sidebar"]


def _scalar_items(d: dict) -> dict:
    return {k: v for k, v in d.items() if isinstance(v, (str, int, float, bool)) or v is None}


def _metrics_table(metrics: dict) -> pd.DataFrame | None:
    """Nested metric dicts ({"validation": {"recall@10": …}, …}) as one table: metric × split."""
    nested = {k: _scalar_items(v) for k, v in metrics.items() if isinstance(v, dict) and v}
    if not nested:
        return None
    return pd.DataFrame(nested).rename_axis("metric")


def _parse_ts(value: object) -> dt.datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(value, dt.UTC).replace(tzinfo=None)
    try:
        t = pd.Timestamp(str(value))
    except ValueError:
        return None
    return (t.tz_convert("UTC").tz_localize(None) if t.tzinfo else t).to_pydatetime()


def _model_fit(card: dict) -> None:
    vocab, fp = card["vocab"], card["fingerprint"]
    if not vocab:
        return
    trained_until = _parse_ts(fp.get("max_ts") or fp.get("last_event"))
    try:
        fit = data.query(
            "model_fit",
            tuple(vocab.get("items", [])),
            tuple(vocab.get("categories", [])),
            tuple(vocab.get("event_types", [])),
            trained_until,
        )
    except InterestLensError as exc:
        st.caption(str(exc))
        return
    if not fit.fits:
        parts = []
        if fit.unseen_items:
            parts.append(f"{fit.unseen_items:,} items")
        if fit.unseen_categories:
            parts.append("categories " + ", ".join(fit.unseen_categories[:5]))
        if fit.unseen_event_types:
            parts.append("event types " + ", ".join(fit.unseen_event_types[:5]))
        st.warning(
            "This model no longer fits the database: it has never seen " + "; ".join(parts)
            + ". They are skipped; retrain to include them."
        )
    if fit.events_after:
        st.caption(f"{fit.events_after:,} events arrived after this model was trained.")


def render_sidebar() -> None:
    """Draw the database and model panel in the sidebar."""
    path = data.db_path()
    with st.sidebar:
        st.caption("Database")
        st.text(str(path) if path.exists() else f"{path} (missing)")
        models = data.list_models()
        st.caption("Model")
        if not models:
            st.text("none trained yet")
            return
        current = data.active_model_dir()
        options = [str(m) for m in models]
        index = options.index(str(current)) if current is not None and str(current) in options else 0
        chosen = st.selectbox(
            "Active model", options, index=index, format_func=lambda p: Path(p).name, key="sidebar_model"
        )
        card = data.read_card(Path(chosen))
        metrics = card["metrics"]
        with st.expander("Model card", expanded=False):
            facts = {**_scalar_items(metrics), **{f"data {k}": v for k, v in _scalar_items(card["fingerprint"]).items()}}
            if facts:
                st.dataframe(pd.DataFrame({"value": [str(v) for v in facts.values()]}, index=list(facts)), width="stretch")
            table = _metrics_table(metrics)
            if table is not None:
                st.dataframe(table, width="stretch")
            if not facts and table is None:
                st.text("metrics.json is missing from this checkpoint.")
        if path.exists():
            _model_fit(card)
