"""Pieces of the Explain page: an explanation as tables, attention against SHAP with deletion curves, and the
what-if editor. Every number comes from `core.explain` / `core.attention`; these only reshape and lay out."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import data
from dashboard.components import model_charts, panels

__all__ = ["md_text", "event_table", "window_table", "group_table", "attention_vs_shap", "what_if_editor"]

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def md_text(text: object) -> str:
    """Log text for a Markdown element, shown literally (every Markdown character escaped)."""
    return _MD_SPECIAL.sub(r"\\\1", str(text))


def event_table(expl: Any) -> pd.DataFrame:
    """One row per explained event: step, time, item, title, categories, SHAP value; largest |value| first."""
    df = pd.DataFrame(
        {
            "step": [lab.step for lab in expl.labels],
            "time": [lab.time for lab in expl.labels],
            "item_id": [lab.item_id for lab in expl.labels],
            "title": [lab.title for lab in expl.labels],
            "categories": [", ".join(lab.categories) for lab in expl.labels],
            "shap": expl.values,
        }
    )
    return df.iloc[np.argsort(-np.abs(df["shap"].to_numpy()), kind="stable")].reset_index(drop=True)


def window_table(expl: Any) -> pd.DataFrame:
    """Time windows (session, day, week, month) with their Owen values."""
    return pd.DataFrame(
        [{"level": w.level, "label": w.label, "start": w.start, "end": w.end, "events": w.n_events, "value": w.value}
         for w in expl.windows]
    )


def group_table(expl: Any) -> pd.DataFrame:
    """Feature-group Shapley values (their own base: every group unknown is in `attrs['base']`)."""
    g = expl.groups
    if g is None:
        return pd.DataFrame()
    df = pd.DataFrame({"group": list(g.feature_names), "value": np.asarray(g.values, dtype=float)})
    df.attrs["base"] = float(np.asarray(g.base_values).reshape(-1)[0])
    return df


@st.fragment
def attention_vs_shap(model_dir: Path, user: str, item: str, expl: Any) -> None:
    """SHAP values and rolled-out attention over the same events, then the deletion curves (when available)."""
    att = panels.model_result("attention", model_dir, user, None)
    if att is None:
        return
    shap_by_step = pd.Series(expl.values, index=[lab.step for lab in expl.labels])
    both = pd.DataFrame({"step": att.steps, "attention": att.rollout})
    both["shap"] = both["step"].map(shap_by_step)
    both = both.dropna()
    long = both.assign(event="#" + both["step"].astype(str)).melt(
        id_vars="event", value_vars=["shap", "attention"], var_name="measure"
    )
    left, right = st.columns(2)
    with left:
        st.plotly_chart(model_charts.bars(long[long["measure"] == "shap"], "event", "value", "SHAP value per event"),
                        key="explain_shap_bars")
    with right:
        st.plotly_chart(model_charts.bars(long[long["measure"] == "attention"], "event", "value",
                                          "Attention (rollout) per event"), key="explain_att_bars")
    if len(both) > 2:
        rho = both[["shap", "attention"]].rank().corr().iloc[0, 1]
        st.caption(f"Rank correlation between SHAP values and attention over {len(both)} events: {rho:+.2f}. "
                   "Attention says where the model looked; SHAP says what moved the score.")
    curves = panels.model_result("deletion", model_dir, user, item)
    if curves is not None:
        st.plotly_chart(model_charts.deletion_curves(curves), key="explain_deletion")


@st.fragment
def what_if_editor(model_dir: Path, user: str, item: str, positions: np.ndarray, recs: pd.DataFrame) -> None:
    """Untick events to remove them (or add an item) and re-rank; nothing is written to the database."""
    history = data.query("user_history", user)
    window = history.set_index("step").loc[[int(p) for p in positions]].reset_index()
    table = pd.DataFrame({"keep": True, "step": window["step"], "time": window["ts"], "item_id": window["item_id"],
                          "title": window["title"]})
    edited = st.data_editor(
        table, hide_index=True, width="stretch", key="explain_whatif_table", disabled=["step", "time", "item_id", "title"],
        column_config={"keep": st.column_config.CheckboxColumn("keep", help="Untick to remove this event")},
    )
    c = st.columns([2, 1])
    added = c[0].text_input("Add an item (id) as the newest event", key="explain_whatif_add").strip()
    removed = tuple(int(s) for s in edited.loc[~edited["keep"], "step"])
    edits = (("remove", removed), ("insert", added)) if added else (("remove", removed),)
    if not removed and not added:
        st.caption("Untick events or add an item to see how the recommendations would change.")
        return
    result = panels.model_result("what_if", model_dir, user, edits, 10)
    if result is None:
        return
    before = recs[["rank", "item_id", "title"]].rename(columns={"rank": "rank before"})
    after = result.recommendations.rename(columns={"rank": "rank after"})
    st.dataframe(after.merge(before[["item_id", "rank before"]], on="item_id", how="left"), hide_index=True,
                 width="stretch")
    st.caption(f"Item {item}: score {result.target_score_before:.3f} → {result.target_score_after:.3f} "
               "(the database is unchanged).")
