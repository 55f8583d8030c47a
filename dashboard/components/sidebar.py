"""The sidebar: which database, which model (its card and a switch between saved models), whether the model can be
used at all, whether it still fits the database, and how many events arrived after it was trained; who is signed in
and whether demo mode is on."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pyarrow as pa
import streamlit as st

from core.errors import InterestLensError
from core.privacy import FORGOTTEN_KEY
from dashboard import cache, demo
from dashboard.access import account_menu
from dashboard.components.charts import md_text
from dashboard.components.messages import error_text

__all__ = ["render_sidebar", "MODEL_PARAM", "PENDING_MODEL"]

PENDING_MODEL = "_pending_model"  # a page that trained a model asks for it to become active on the next run
MODEL_PARAM = "model"  # ?model=NAME: the active model's folder name, written when the analyst picks a model
_CARD_FACTS = ("created", "device", "epochs", "best_epoch", "seconds", "stopped", "parameters")


def _parse_ts(value: object) -> dt.datetime | None:
    if value in (None, ""):
        return None
    try:
        t = pd.Timestamp(value, unit="s") if isinstance(value, (int, float)) else pd.Timestamp(str(value))
    except (ValueError, TypeError):
        return None
    return (t.tz_convert("UTC").tz_localize(None) if t.tzinfo else t).to_pydatetime()


def card_tables(card: dict) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The model card as two tables: facts (training and data fingerprint) and metrics (metric × split)."""
    metrics, fp = card["metrics"], card["fingerprint"]
    facts = {k: metrics[k] for k in _CARD_FACTS if k in metrics}
    facts.update({f"data {k}": v for k, v in fp.items() if isinstance(v, (str, int, float))})
    split = metrics.get("split")
    if isinstance(split, dict) and split.get("kind"):
        facts["split"] = split["kind"]
    fact_table = pd.DataFrame({"value": [str(v) for v in facts.values()]}, index=pd.Index(list(facts), name="fact"))
    scores = {s: metrics[s] for s in ("valid", "test") if isinstance(metrics.get(s), dict) and metrics[s]}
    metric_table = pd.DataFrame(scores).rename_axis("metric") if scores else None
    return fact_table, metric_table


_ARROW: dict[str, tuple[dict, pa.Table, pa.Table | None]] = {}  # model folder -> (its card, the card's tables)


def _card_arrow(folder: str, card: dict) -> tuple[pa.Table, pa.Table | None]:
    """`card_tables` as Arrow tables (what `st.dataframe` makes of them, `pa.Table.from_pandas`), made once per card:
    the sidebar is drawn on every run of every session, and building and converting the two small tables was most
    of its time (docs/serving.md, s23). `read_card` hands out the same dict while the files are unchanged."""
    held = _ARROW.get(folder)
    if held is not None and held[0] is card:
        return held[1], held[2]
    facts, metrics = card_tables(card)
    out = (pa.Table.from_pandas(facts), pa.Table.from_pandas(metrics) if metrics is not None else None)
    if len(_ARROW) >= 64:  # a bound on folders held
        _ARROW.clear()
    _ARROW[folder] = (card, *out)
    return out


def _model_fit(db: cache.DbRef, model_dir: Path, card: dict) -> None:
    vocab, fp = card["vocab"], card["fingerprint"]
    if not vocab:
        return
    try:
        fit = cache.model_fit(db, str(model_dir), _parse_ts(fp.get("max_ts")))
    except InterestLensError as exc:
        st.caption(error_text(exc))
        return
    if not fit.fits:
        parts = []
        if fit.unseen_items:
            parts.append(f"{fit.unseen_items:,} {'item' if fit.unseen_items == 1 else 'items'}")
        for what, names in (("category", fit.unseen_categories), ("event type", fit.unseen_event_types)):
            if names:
                plural = "categories" if what == "category" else f"{what}s"
                parts.append(f"the {what if len(names) == 1 else plural} " + ", ".join(map(md_text, names[:5])))
        st.warning(
            "The database has data this model has never seen: " + "; ".join(parts)
            + ". The model skips them in its inputs; retrain it to include them."
        )
    if fit.events_after:
        st.caption(f"{fit.events_after:,} events arrived after this model was trained.")


def _model_health(model_dir: Path, card: dict) -> None:
    """Say when the chosen model cannot be loaded (the pages that need no model keep working) or when users it
    was trained on have been deleted since (`interestlens forget` notes it in the card)."""
    try:
        cache.loaded_model(cache.model_ref(model_dir))
    except InterestLensError as exc:
        st.error(f"This model is unusable, so pages show what they can without it: {error_text(exc)}")
        return
    forgotten = card["metrics"].get(FORGOTTEN_KEY)
    if isinstance(forgotten, dict):
        st.warning(
            f"This model was trained on events of {int(forgotten.get('users', 1)):,} user(s) deleted since "
            "(`interestlens forget`); retrain it to remove what it learned from them."
        )


def _model_to_url() -> None:
    """The model list's callback: the model picked goes into the URL, so a reload or a shared link shows it."""
    st.query_params[MODEL_PARAM] = Path(st.session_state["sidebar_model"]).name


def render_sidebar() -> None:
    """Draw the database and model panel in the sidebar."""
    db = cache.database()
    path = db.file
    with st.sidebar:
        account_menu()
        if demo.active() is not None:
            st.caption("Demo mode: users are shown as pseudonyms and their attributes are hidden.")
        st.caption("Database")
        st.text(path.name if path.exists() else f"{path.name} (missing)", help=str(path))
        models = cache.list_models()
        st.caption("Model")
        if not models:
            st.text("none trained yet")
            return
        options = [str(m) for m in models]
        pending = st.session_state.pop(PENDING_MODEL, None)
        if pending in options:
            st.session_state["sidebar_model"] = pending
        if st.session_state.get("sidebar_model") not in options:
            # A new session (a link, a reload) takes the model its URL names; only a pick writes the URL, so the
            # server never rewrites the address of a link without one.
            linked = st.query_params.get(MODEL_PARAM)
            by_name = {Path(o).name: o for o in options}
            if linked in by_name:
                st.session_state["sidebar_model"] = by_name[linked]
            else:
                current = cache.active_model()
                st.session_state["sidebar_model"] = current.path if current is not None and current.path in options else options[0]
                if linked:
                    st.warning(md_text(f"The link names the model {linked!r}, which is not in this app's models "
                                       f"folder; showing {Path(st.session_state['sidebar_model']).name} instead."))
        chosen = st.selectbox("Active model", options, format_func=lambda p: Path(p).name, key="sidebar_model",
                              on_change=_model_to_url)
        card = cache.read_card(Path(chosen))
        with st.expander("Model card", expanded=False):
            facts, metrics = _card_arrow(chosen, card)
            if facts.num_rows == 0 and metrics is None:
                st.text("metrics.json is missing from this checkpoint.")
            else:
                st.dataframe(facts, width="stretch")
            if metrics is not None:
                st.dataframe(metrics, width="stretch", column_config={c: st.column_config.NumberColumn(format="%.4f")
                                                                      for c in metrics.column_names
                                                                      if c != "metric"})
        _model_health(Path(chosen), card)
        if db.exists:
            _model_fit(db, Path(chosen), card)
