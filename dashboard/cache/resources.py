"""Objects built once per model and shared by every session: the loaded checkpoint and the analysers and explainer
built over it (they precompute category weights). Keyed by `ModelRef`, so a retrained model is built anew."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import streamlit as st

from core.errors import InterestLensError
from dashboard.cache.handles import DbRef, ModelRef
from dashboard.explain_pool import shared_pool

if TYPE_CHECKING:  # imported when first built: a page without a model never loads torch or shap
    from core.attention import AttentionAnalyzer
    from core.checkpoint import LoadedModel
    from core.explain import HistoryExplainer
    from core.trajectory import TrajectoryAnalyzer

__all__ = ["APP_TORCH_THREADS", "loaded_model", "trajectory_analyser", "attention_analyser", "explainer",
           "warm_explanations", "plotly_js"]

log = logging.getLogger(__name__)

# Torch threads for the app's inference. One view's work is many small forward passes; with several intra-op
# threads on a busy 2-core machine they spin-wait on each other (bench/dashboard.py --threads 1 vs 2), and
# several sessions already run in parallel threads of their own.
APP_TORCH_THREADS = 1
_MODELS = 4  # checkpoints kept loaded at once (the sidebar switches between a few)


@st.cache_resource(show_spinner="Loading the model…", max_entries=_MODELS)
def loaded_model(model: ModelRef) -> LoadedModel:
    """`core.checkpoint.load_checkpoint` on the CPU (InterestLensError when the folder is unusable)."""
    import torch

    from core.checkpoint import load_checkpoint

    torch.set_num_threads(APP_TORCH_THREADS)
    return load_checkpoint(model.path, "cpu")


@st.cache_resource(show_spinner=False, max_entries=_MODELS)
def trajectory_analyser(model: ModelRef) -> TrajectoryAnalyzer:
    """`core.trajectory.TrajectoryAnalyzer` over the loaded model."""
    from core.trajectory import TrajectoryAnalyzer

    return TrajectoryAnalyzer(loaded_model(model))


@st.cache_resource(show_spinner=False, max_entries=_MODELS)
def attention_analyser(model: ModelRef) -> AttentionAnalyzer:
    """`core.attention.AttentionAnalyzer` over the loaded model."""
    from core.attention import AttentionAnalyzer

    return AttentionAnalyzer(loaded_model(model))


@st.cache_resource(show_spinner=False, max_entries=_MODELS)
def explainer(model: ModelRef) -> HistoryExplainer:
    """`core.explain.HistoryExplainer` over the loaded model."""
    from core.explain import HistoryExplainer

    return HistoryExplainer(loaded_model(model))


@st.cache_resource(show_spinner=False, max_entries=1)
def plotly_js() -> str:
    """The HTML report's script element carrying the installed plotly.js, packed
    (`dashboard.components.report_assets.plotly_block`): ~3 s of LZMA, so built once per server and shared by every
    session; the same string for every report (a resource: handed out, never copied)."""
    from dashboard.components.report_assets import plotly_block

    return plotly_block()


def warm_explanations(db: DbRef, model: ModelRef) -> None:
    """Warm the explanation workers for this database and model in the background (once; returns at once): they
    load the model and SHAP and explain one user, so the first analyst who asks for an explanation does not pay
    the ~5 s of CPU that costs (docs/serving-memory.md). Without workers (`$INTERESTLENS_EXPLAIN_WORKERS=0`) nothing is
    warmed: a warm-up thread in the server would hold the interpreter lock the first pages need."""
    try:
        pool = shared_pool()
    except InterestLensError as exc:  # a bad $INTERESTLENS_EXPLAIN_WORKERS: the Explain page says so, not the explorer
        log.warning("explanation workers not started: %s", exc)
        return
    if pool is not None:
        pool.warm(db.path, model.path, model.stamp)
