"""Data & models: add a log file (a preset or a column mapping), preview it, ingest it with progress and see what
was rejected; list the trained models and train one."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.errors import InterestLensError
from core.ingest import PRESETS, preset_names
from dashboard import cache
from dashboard.components import data_panels, upload
from dashboard.components.charts import md_text

st.title("Data & models")

# State set-up.
db = cache.db_path()
limit_mb = int(st.get_option("server.maxUploadSize"))
st.caption(f"Database: `{db}`" + ("" if db.exists() else " (not created yet: the first ingest creates it)"))

add_tab, runs_tab, models_tab = st.tabs(["Add data", "Ingest runs", "Models"], key="data_tab", bind="query-params")
with add_tab:
    # Inputs: the files, then the preset (and a column mapping for generic files).
    files = st.file_uploader(
        f"Log files (at most {limit_mb} MB each; for MovieLens-100k upload u.data, u.item and u.user together)",
        accept_multiple_files=True, key="data_upload", type=list(upload.ALLOWED_TYPES),
    )
    if not files:
        upload.discard(st.session_state.pop("data_upload_dir", None))
        st.info("Upload a file to preview and ingest it. Large logs are better ingested from a terminal:")
        st.code(f"interestlens ingest --db {db} --preset generic events.csv --user-col uid --item-col sku "
                "--time-col ts", language="bash")
    else:
        signature = tuple(sorted((f.name, f.size) for f in files))
        if st.session_state.get("data_upload_sig") != signature:
            upload.discard(st.session_state.pop("data_upload_dir", None))
            st.session_state.pop("data_upload_sig", None)
            try:
                st.session_state["data_upload_dir"] = upload.save_uploads(files, limit_mb)
            except InterestLensError as exc:
                st.error(md_text(exc))
                st.stop()
            st.session_state["data_upload_sig"] = signature
        folder: Path = st.session_state["data_upload_dir"]
        saved = sorted(folder.iterdir())
        names = preset_names()
        preset = st.selectbox("Format", names, index=names.index("generic") if "generic" in names else 0,
                              key="data_preset", format_func=lambda n: f"{n} — {PRESETS[n].description}"
                              if n in PRESETS else n)
        source = folder if len(saved) > 1 else saved[0]
        if preset in PRESETS:
            st.caption(f"This format expects {PRESETS[preset].source}.")

        # Preview (as text: nothing in an uploaded file is ever rendered as markup).
        shown = st.selectbox("Preview", [p.name for p in saved], key="data_preview_file") if len(saved) > 1 \
            else saved[0].name
        table = upload.preview_table(folder / shown)
        if table is not None:
            st.dataframe(table, hide_index=True, width="stretch")
        else:
            st.code(upload.preview_lines(folder / shown), language=None)
        mapping = None
        if preset == "generic":
            st.subheader("Column mapping")
            mapping = data_panels.mapping_inputs(upload.column_names(source if source.is_file() else folder / shown))
        ready = preset != "generic" or mapping is not None
        if st.button("Ingest", key="data_ingest_go", type="primary", disabled=not ready, icon=":material/upload:"):
            run_id = data_panels.run_ingest(db, preset, source, mapping)
            if run_id is not None:
                st.session_state["data_last_run"] = run_id
        if st.session_state.get("data_last_run") is not None:
            st.subheader(f"Rejected rows of run {st.session_state['data_last_run']}")
            data_panels.reject_report(int(st.session_state["data_last_run"]))

with runs_tab:
    if not db.exists():
        st.info("No database yet.")
    else:
        runs = cache.ingest_runs(cache.database(), 50)
        if runs.empty:
            st.info("Nothing has been ingested into this database yet.")
        else:
            st.dataframe(runs, hide_index=True, width="stretch")
            run = st.selectbox("Rejected rows of run", runs["run_id"].tolist(), key="data_runs_pick", bind="query-params",
                               help="The rows one ingest refused, each with its reason.")
            data_panels.reject_report(int(run))

with models_tab:
    models = cache.list_models()
    if models:
        st.dataframe(data_panels.models_table(models), hide_index=True, width="stretch")
        st.caption("Pick the active model in the sidebar.")
        data_panels.reliability_panel(models)
        active = cache.active_model()
        if active is not None and db.exists():
            st.subheader("Derived data")
            data_panels.drift_panel(db, active.dir)
    else:
        st.info(f"No trained model under `{cache.models_root()}` yet.")
    if db.exists():
        data_panels.vectors_panel(db)
        st.subheader("Train a model")
        data_panels.train_panel(db)
