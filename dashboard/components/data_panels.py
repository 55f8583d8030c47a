"""The Data & models page's panels: column mapping for generic files, ingest with progress, the reject report,
the checkpoint list and training with live progress.

Connection policy: an ingest opens the database for writing only inside `core.ingest.ingest` (one short
transaction, then closed); the app's shared read connection is closed and held back meanwhile
(`dashboard.reader.READER.writing`), and readers in other processes retry while the file is held.
Training reads the database read-only and writes only its checkpoint folder.
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path

import pandas as pd
import streamlit as st

from core.errors import InterestLensError
from dashboard import cache
from dashboard.components.messages import error_text
from dashboard.components.sidebar import PENDING_MODEL
from dashboard.components.upload import safe_name
from dashboard.reader import READER

__all__ = ["mapping_inputs", "run_ingest", "reject_report", "models_table", "train_panel", "reliability_figure",
           "reliability_panel", "drift_panel", "vectors_panel"]

_NONE = "(none)"


def mapping_inputs(columns: list[str]):
    """Widgets for a generic file's column mapping; returns a `core.ingest.ColumnMapping` (or None if incomplete)."""
    from core.ingest import ColumnMapping

    if not columns:
        st.warning("The columns of this file cannot be told from its first line; check the delimiter and header.")
        return None

    def pick(label: str, guess: tuple[str, ...], required: bool, key: str) -> str | None:
        options = columns if required else [_NONE, *columns]
        found = next((i for i, c in enumerate(options) if c.lower() in guess), 0)
        v = st.selectbox(label, options, index=found, key=f"data_map_{key}")
        return None if v == _NONE else v

    c = st.columns(3)
    with c[0]:
        user = pick("User column", ("user_id", "user", "userid", "visitorid", "reviewerid", "uid"), True, "user")
        item = pick("Item column", ("item_id", "item", "itemid", "movieid", "asin", "sku"), True, "item")
        when = pick("Time column", ("timestamp", "ts", "time", "unixreviewtime", "datetime", "date"), True, "time")
    with c[1]:
        event = pick("Event type column", ("event", "event_type", "behavior_type", "action"), False, "event")
        value = pick("Value column", ("rating", "value", "overall", "weight"), False, "value")
        unit = st.selectbox("Time unit", ["auto", "s", "ms", "iso"], key="data_map_unit",
                            help="How the time column is written: seconds (s) or milliseconds (ms) since 1970, or "
                                 "dates such as 2024-05-01 12:00 (iso); auto guesses from the values.")
    with c[2]:
        category = pick("Category column", ("category", "categories", "genres", "genre"), False, "category")
        title = pick("Title column", ("title", "name"), False, "title")
        context = st.multiselect("Context columns", [x for x in columns if x not in {user, item, when}],
                                 key="data_map_context", help="Other columns that describe the moment of an event "
                                 "(device, country…): the model reads them beside the item.")
    if len({user, item, when}) < 3:
        st.warning("User, item and time must be three different columns.")
        return None
    try:
        return ColumnMapping(user=user, item=item, time=when, event=event, value=value, category=category,
                             title=title, context=tuple(context), time_unit=unit)
    except InterestLensError as exc:
        st.error(error_text(exc))
        return None


def run_ingest(db: Path, preset: str, source: Path, mapping) -> int | None:
    """Ingest with progress in an `st.status`; returns the run id (None after a clear error)."""
    from core.ingest import ingest

    with st.status(f"Ingesting {source.name} with the {preset} preset…", expanded=True) as status:
        t0 = time.perf_counter()

        def progress(stage: str) -> None:
            status.update(label=f"Ingest: {stage}…")
            st.write(f"{stage} ({time.perf_counter() - t0:.1f} s)")

        try:
            with READER.writing():  # this process must not hold the file read-only while it writes
                result = ingest(db, preset, source, mapping=mapping, progress=progress)
        except InterestLensError as exc:
            status.update(label="Ingest failed; the database is unchanged.", state="error")
            st.error(error_text(exc))
            return None
        status.update(label=f"Ingested: {result.accepted:,} events added, {result.rejected:,} rejected, "
                            f"{result.duplicates:,} duplicates dropped.", state="complete", expanded=False)
    for note in result.assumptions:
        st.info(note)
    return int(result.run_id)


def reject_report(run_id: int) -> None:
    """The rows a run rejected, with reasons; the raw text is shown as text."""
    rejects = cache.run_rejects(cache.database(), run_id)
    if rejects.empty:
        st.success(f"Run {run_id} rejected no rows.")
        return
    reasons = rejects.groupby("reason").size().rename("rows").reset_index().sort_values("rows", ascending=False)
    st.dataframe(reasons, hide_index=True, width="stretch")
    st.dataframe(rejects, hide_index=True, width="stretch", height=240)
    from dashboard.components.panels import csv

    st.download_button("Download rejected rows (CSV)", csv(rejects), f"rejects_run_{run_id}.csv", "text/csv",
                       key=f"data_rejects_csv_{run_id}")


def models_table(models: list[Path]) -> pd.DataFrame:
    """One row per checkpoint: name, created, epochs, device, validation NDCG@10, test NDCG@10, drift built."""
    rows = []
    for m in models:
        card = cache.read_card(m)["metrics"]
        valid, test = card.get("valid") or card.get("validation") or {}, card.get("test") or {}
        rows.append({
            "model": m.name, "created": card.get("created", ""), "epochs": card.get("epochs"),
            "device": card.get("device", ""),
            "valid NDCG@10": valid.get("NDCG@10") if isinstance(valid, dict) else None,
            "test NDCG@10": test.get("NDCG@10") if isinstance(test, dict) else None,
            "drift summaries": (m / "drift.parquet").exists(), "folder": str(m),
        })
    return pd.DataFrame(rows)


def reliability_figure(interest: dict):
    """The category forecast's reliability diagram from a card's `interest` section: per bin of forecast
    probability, the mean forecast against the observed share (test targets; the diagonal is perfect)."""
    import plotly.graph_objects as go

    bins = [b for b in interest.get("reliability", []) if b.get("count")]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfectly calibrated",
                             line=dict(color="#9ca3af", dash="dash")))
    fig.add_trace(go.Scatter(
        x=[b["forecast"] for b in bins], y=[b["observed"] for b in bins], mode="lines+markers", name="forecast",
        customdata=[b["count"] for b in bins], line_color="#2563eb",
        hovertemplate="forecast %{x:.3f}<br>observed %{y:.3f}<br>%{customdata:,} (event, category) pairs<extra></extra>",
    ))
    f = interest.get("forecast", {})
    title = f"Category forecast: ECE {f.get('ece', float('nan')):.3f}, log-loss {f.get('log_loss', float('nan')):.3f}"
    fig.update_layout(title=title, xaxis_title="forecast probability", yaxis_title="observed share",
                      xaxis_range=[0, 1], yaxis_range=[0, 1], margin=dict(l=10, r=10, t=40, b=10), height=320)
    return fig


def reliability_panel(models: list[Path]) -> None:
    """The reliability diagram of the newest model whose card has one (`interestlens train` or `evaluate` writes it)."""
    for m in models:
        interest = cache.read_card(m)["metrics"].get("interest") or {}
        if interest.get("reliability"):
            st.plotly_chart(reliability_figure(interest), key="data_reliability")
            st.caption(f"Is the interest forecast calibrated? When model {m.name} gives a category probability p, "
                       "the category should come next about p of the time (the diagonal); test targets "
                       f"(histogram log-loss {interest.get('histogram', {}).get('log_loss', float('nan')):.3f} beside it).")
            return


def train_panel(db: Path) -> None:
    """Train a model here with live progress, or copy the CLI command."""
    root = cache.models_root()
    c = st.columns([2, 1, 1])
    name = c[0].text_input("Model name", value="default", key="data_train_name").strip()
    minutes = c[1].number_input("At most (minutes)", 1, 120, 8, key="data_train_minutes")
    drift = c[2].checkbox("Build drift summaries after", value=True, key="data_train_drift")
    out = root / (name or "default")
    if name and (name != safe_name(name) or name.startswith(".")):  # a folder name, never a path out of the root
        st.error("A model name may use letters, digits, '.', '_' and '-' only (no folders).")
        return
    st.caption("Or from a terminal (the app keeps working meanwhile):")
    st.code(f"interestlens train --db {shlex.quote(str(db))} --out {shlex.quote(str(out))}", language="bash")
    if not st.button("Train here", key="data_train_go", icon=":material/model_training:", type="primary"):
        return
    from core.train import TrainConfig, train

    with st.status(f"Training {out.name}…", expanded=True) as status:
        def progress(r) -> None:
            ndcg = r.valid.get("NDCG@10", float("nan"))
            status.update(label=f"Training {out.name}: epoch {r.epoch}, valid NDCG@10 {ndcg:.4f}")
            st.write(f"epoch {r.epoch}: loss {r.loss:.3f}, valid NDCG@10 {ndcg:.4f}{' (best)' if r.improved else ''}")

        try:
            result = train(db, out, None, TrainConfig(time_budget=float(minutes) * 60.0), progress=progress)
            if drift:
                from core.checkpoint import load_checkpoint
                from core.trajectory import build_drift

                status.update(label="Building drift summaries…")
                build_drift(db, load_checkpoint(out))
            from core.fairness import save_inputs

            status.update(label="Saving the fairness report's inputs (so the Fairness page opens in seconds)…")
            save_inputs(db, out)
        except InterestLensError as exc:
            status.update(label="Training stopped.", state="error")
            st.error(error_text(exc))
            return
        status.update(label=f"Trained {out.name}: {result.epochs} epoch{'' if result.epochs == 1 else 's'}, "
                               f"best {result.best_epoch}.",
                      state="complete", expanded=False)
    st.session_state[PENDING_MODEL] = str(out)


def drift_panel(db: Path, model_dir: Path) -> None:
    """A button that builds the drift summaries of the active model (`core.trajectory.build_drift`: the "interests
    changed most" list) with a progress bar over the users."""
    built = (model_dir / "drift.parquet").is_file()
    st.caption(f"Drift summaries of {model_dir.name}: " + ("built." if built else "not built yet; the explorer's "
               "“Interests changed most” list needs them."))
    if not st.button("Rebuild drift summaries" if built else "Build drift summaries", key="data_drift_go",
                     icon=":material/trending_up:", help="For every user, how far their interests moved at their "
                     "largest change point: what ranks the explorer's “Interests changed most” list."):
        return
    from core.checkpoint import load_checkpoint
    from core.trajectory import build_drift

    bar = st.progress(0.0, text="Reading the users…")

    def progress(done: int, total: int) -> None:
        bar.progress(done / max(total, 1), text=f"Drift of {done:,} of {total:,} users")

    try:
        result = build_drift(db, load_checkpoint(model_dir), progress=progress)
    except InterestLensError as exc:
        bar.empty()
        st.error(error_text(exc))
        return
    bar.progress(1.0, text="Done")
    st.success(f"Drift summaries of {result.users:,} users built in {result.seconds:.0f} s.")


def vectors_panel(db: Path) -> None:
    """A button that computes the item text vectors (`core.semantic.encode_items`), which interests in words,
    similar items and search by meaning read; the status shows each stage and its time."""
    from core.semantic import semantic_status

    s = semantic_status(db)
    st.caption("Item text vectors: " + ("up to date." if s.fresh else "out of date (the items changed)."
                                        if s.cached else "not computed yet."))
    if not s.encoder_installed:
        st.info(s.message)
        return
    if not st.button("Recompute text vectors" if s.fresh else "Compute text vectors", key="data_vectors_go",
                     icon=":material/translate:", help="A vector of numbers per item that encodes the meaning of its "
                     "title, categories and tags: search by meaning and interests in words compare them."):
        return
    from core.semantic import encode_items

    with st.status("Computing the item text vectors…", expanded=True) as status:
        t0 = time.perf_counter()
        st.write("Loading the text encoder and reading the item texts…")
        try:
            tv = encode_items(db)
        except InterestLensError as exc:
            status.update(label="Computing the text vectors failed.", state="error")
            st.error(error_text(exc))
            return
        status.update(label=f"Text vectors of {len(tv.item_ids):,} items ready: {tv.encoded:,} texts encoded in "
                            f"{time.perf_counter() - t0:.0f} s.", state="complete", expanded=False)
