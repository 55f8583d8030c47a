"""Explanations: SHAP over history events and time windows, faithfulness against attention, what-if edits."""

from core.explain.explainer import (
    TOLERANCE,
    AdditivityError,
    HistoryExplainer,
    HistoryExplanation,
    WindowValue,
    additivity_error,
)
from core.explain.faithfulness import (
    ORDERINGS,
    DeletionCurve,
    DeletionCurves,
    FaithfulnessSummary,
    OrderingSummary,
    attention_scores,
    deletion_curves,
    normalised_auc,
    summarise_faithfulness,
)
from core.explain.game import HistoryGame, PresenceMasker
from core.explain.hierarchy import LEVELS, SESSION_GAP_SECONDS, TimeHierarchy, Window, build_time_hierarchy
from core.explain.history import EventLabel, LabelledHistory, load_labelled_history
from core.explain.whatif import (
    Edit,
    InsertItem,
    InterestPath,
    MoveEvent,
    Recommendation,
    RemoveEvents,
    WhatIfResult,
    apply_edits,
    interest_path,
    what_if,
)

__all__ = [
    "TOLERANCE",
    "AdditivityError",
    "HistoryExplainer",
    "HistoryExplanation",
    "WindowValue",
    "additivity_error",
    "ORDERINGS",
    "DeletionCurve",
    "DeletionCurves",
    "FaithfulnessSummary",
    "OrderingSummary",
    "attention_scores",
    "deletion_curves",
    "normalised_auc",
    "summarise_faithfulness",
    "HistoryGame",
    "PresenceMasker",
    "LEVELS",
    "SESSION_GAP_SECONDS",
    "TimeHierarchy",
    "Window",
    "build_time_hierarchy",
    "EventLabel",
    "LabelledHistory",
    "load_labelled_history",
    "Edit",
    "InsertItem",
    "InterestPath",
    "MoveEvent",
    "Recommendation",
    "RemoveEvents",
    "WhatIfResult",
    "apply_edits",
    "interest_path",
    "what_if",
]
