"""The model-backed calls behind `data.model_call`: each is `fn(loaded, con, *args)` and returns a picklable result
from a core capability (so `st.cache_data` can keep it). They only call `core` and join in titles to show;
nothing here computes a number of its own.

Analysers and explainers are built once per loaded model (they precompute category weights) and kept here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd

from core.store import queries

__all__ = [
    "APP_TORCH_THREADS",
    "MAX_K",
    "recommend",
    "trajectory",
    "user_view",
    "attention",
    "explain",
    "periods",
    "deletion",
    "ExplainView",
    "what_if",
    "fairness",
    "FairnessView",
    "cohort_trajectories",
    "analyzer",
]

# Torch threads for the app's inference. One view's work is many small forward passes; with several intra-op
# threads on a busy 2-core machine they spin-wait on each other (bench/dashboard.py --threads 1 vs 2), and
# several sessions already run in parallel threads of their own.
APP_TORCH_THREADS = 1
MAX_K = 50  # the user view ranks this many; the explorer's slider shows the first k of them

_BUILT: dict[tuple[str, int], tuple[Any, Any]] = {}  # (kind, id(loaded)) -> (loaded, built object)


def analyzer(kind: str, loaded: Any) -> Any:
    """The `kind` analyser ("trajectory", "attention", "explain") for a loaded model, built once."""
    key = (kind, id(loaded))
    hit = _BUILT.get(key)
    if hit is not None and hit[0] is loaded:
        return hit[1]
    if kind == "trajectory":
        from core.trajectory import TrajectoryAnalyzer

        built = TrajectoryAnalyzer(loaded)
    elif kind == "attention":
        from core.attention import AttentionAnalyzer

        built = AttentionAnalyzer(loaded)
    elif kind == "explain":
        from core.explain import HistoryExplainer

        built = HistoryExplainer(loaded)
    else:
        raise ValueError(f"unknown analyser {kind!r}")
    _BUILT[key] = (loaded, built)
    return built


def recommend(loaded: Any, con: duckdb.DuckDBPyConnection, user_id: str, k: int) -> pd.DataFrame:
    """The user's top-K (rank, item_id, score) with titles and categories from the store."""
    from core.recommend import recommend_users

    recs = recommend_users(loaded, con, [str(user_id)], int(k))
    recs = recs[recs["user_id"].astype(str) == str(user_id)].sort_values("rank").reset_index(drop=True)
    info = queries.item_lookup(con, recs["item_id"].astype(str).tolist())
    out = recs[["rank", "item_id", "score"]].assign(item_id=recs["item_id"].astype(str))
    out = out.merge(info[["item_id", "title", "categories"]], on="item_id", how="left")
    out["categories"] = out["categories"].map(lambda c: list(c) if isinstance(c, list) else [])
    return out


def trajectory(loaded: Any, con: duckdb.DuckDBPyConnection, user_id: str) -> Any:
    """`core.trajectory.TrajectoryAnalyzer.user` — the user's full trajectory."""
    return analyzer("trajectory", loaded).user(con, str(user_id))


def user_view(loaded: Any, con: duckdb.DuckDBPyConnection, user_id: str) -> Any:
    """`core.trajectory.user_view`: history, trajectory, top-`MAX_K` and attention at the last step from one read."""
    from core.contract import supports
    from core.trajectory import user_view as core_user_view

    attn = analyzer("attention", loaded) if supports(loaded.scorer, "attention") else None  # external: none
    return core_user_view(analyzer("trajectory", loaded), con, str(user_id), MAX_K, attn)


def attention(loaded: Any, con: duckdb.DuckDBPyConnection, user_id: str, step: int | None = None) -> Any:
    """`core.attention.AttentionAnalyzer.user` — attention at one step (default the last)."""
    return analyzer("attention", loaded).user(con, str(user_id), step)


@dataclass
class ExplainView:
    """One explanation (events and feature groups); its periods and deletion curves are computed when their tab
    is opened (`periods`, `deletion`)."""

    explanation: Any  # core.explain.HistoryExplanation (windows empty: see `periods`)
    curves: Any = None  # core.explain.DeletionCurves, filled by `deletion`


_EXPLAINED: dict[tuple, Any] = {}  # (model, user, item, history digest) -> explanation, the latest few


def _explained(loaded: Any, con: duckdb.DuckDBPyConnection, user_id: str, item_id: str | None) -> tuple[Any, Any]:
    """(labelled history, its explanation for `item_id`), the explanation reused while the history is unchanged."""
    import hashlib

    from core.explain import load_labelled_history

    lh = load_labelled_history(con, loaded, str(user_id))
    h = lh.history
    digest = hashlib.sha256(b"".join(a.tobytes() for a in (h.items, h.ts, h.event_types, h.context))).hexdigest()
    key = (id(loaded), str(user_id), item_id, digest)
    expl = _EXPLAINED.get(key)
    if expl is None or expl[0] is not loaded:
        expl = (loaded, analyzer("explain", loaded).explain(lh, target=item_id, windows=False))
        _EXPLAINED[key] = expl
        while len(_EXPLAINED) > 8:
            _EXPLAINED.pop(next(iter(_EXPLAINED)))
    return lh, expl[1]


def explain(loaded: Any, con: duckdb.DuckDBPyConnection, user_id: str, item_id: str | None = None) -> ExplainView:
    """`core.explain.HistoryExplainer.explain` (events and feature groups) for the user's history and one item."""
    return ExplainView(_explained(loaded, con, user_id, item_id)[1])


def periods(loaded: Any, con: duckdb.DuckDBPyConnection, user_id: str, item_id: str) -> Any:
    """`core.explain.HistoryExplainer.periods`: the values of the history's sessions, days, weeks and months."""
    from core.explain import load_labelled_history

    lh = load_labelled_history(con, loaded, str(user_id))
    return analyzer("explain", loaded).periods(lh, target=item_id)[1]


def deletion(loaded: Any, con: duckdb.DuckDBPyConnection, user_id: str, item_id: str) -> ExplainView:
    """The explanation with `core.explain.deletion_curves` (SHAP against attention, recency and chance)."""
    from core.explain import deletion_curves

    lh, expl = _explained(loaded, con, user_id, item_id)
    return ExplainView(expl, deletion_curves(analyzer("explain", loaded), lh, expl))


def what_if(loaded: Any, con: duckdb.DuckDBPyConnection, user_id: str, edits: tuple, k: int, target: str) -> Any:
    """`core.explain.what_if`: the user's history with `edits` applied, re-ranked, `target` followed through it
    (nothing is written)."""
    from core.explain import load_labelled_history
    from core.explain import what_if as core_what_if

    lh = load_labelled_history(con, loaded, str(user_id))
    inserted = [e.item_id for e in edits if hasattr(e, "item_id")]
    known = queries.item_lookup(con, inserted) if inserted else None
    titles = dict(zip(known["item_id"], known["title"], strict=True)) if known is not None else None
    return core_what_if(analyzer("explain", loaded), lh, list(edits), k=int(k), target=str(target), explain=False,
                        titles=titles)


@dataclass
class FairnessView:
    """The fairness report plus what its charts need beyond it."""

    report: Any  # core.fairness.FairnessReport
    counts: pd.Series  # c_i: times each catalogue item is in a top-K list (zeros included), for the Lorenz curve
    notes: list[str]  # inputs that had to be computed because a file beside the model was missing


def fairness(db: str, model_dir: str, k: int, by: tuple[str, ...], freq: str, n_boot: int, trend: bool) -> FairnessView:
    """`core.fairness.fairness_report` over `core.fairness.inputs.load_inputs` (the CLI's path)."""
    from core.fairness import TREND_USERS, fairness_report, recommendation_counts
    from core.fairness.inputs import load_inputs

    loaded = load_inputs(db, model_dir, k=int(k), by=list(by) or None)
    report = fairness_report(
        loaded.inputs, k=int(k), by=list(by) or None, n_boot=int(n_boot) or None,
        recommend_fn=loaded.recommend_fn if trend else None, freq=freq, trend_users=TREND_USERS,
    )
    recs = loaded.inputs.recs
    counts = recommendation_counts(recs[recs["rank"] <= int(k)], loaded.inputs.catalogue)
    return FairnessView(report, counts, list(loaded.notes))


def cohort_trajectories(
    loaded: Any, con: duckdb.DuckDBPyConnection, attributes: tuple[tuple[str, str], ...], period: str
) -> Any:
    """`core.trajectory.cohort_trajectory`: the segment's mean model interest by calendar period."""
    from core.trajectory import cohort_trajectory

    return cohort_trajectory(con, analyzer("trajectory", loaded), attributes, period=period)
