"""Fairness and bias of recommendations: user-group quality, item exposure, popularity bias, calibration
and their trends over time (definitions in docs/fairness.md and ../shared/METRICS.md §3).

The metric layer is pure: it reads DataFrames only. `load_inputs` (core/fairness/inputs.py) builds them from a
database and a model directory; `fairness_report` computes everything.
"""

from core.fairness.calibration import ALPHA, category_distribution, item_category_weights, miscalibration
from core.fairness.cohorts import LOG_GROUPS, log_user_groups
from core.fairness.exposure import (
    ExposureRow,
    ExposureTable,
    attribute_groups,
    category_groups,
    exposure_table,
    item_exposure,
    popularity_groups,
    position_weight,
)
from core.fairness.groups import (
    AGE_BANDS,
    DERIVED_ATTRIBUTES,
    age_band,
    derive_user_groups,
    group_members,
    user_group_table,
)
from core.fairness.inputs import LoadedInputs, known_attributes, load_inputs, model_recommender, save_inputs
from core.fairness.items import (
    aplt,
    arp,
    check_recs,
    coverage,
    gini,
    history_popularity,
    item_summary,
    novelty,
    popularity_lift,
    recommendation_counts,
    short_head,
)
from core.fairness.over_time import (
    FREQUENCIES,
    TREND_USERS,
    RecommendFn,
    WindowRow,
    calendar_windows,
    over_time,
    panel_note,
    popularity_recommender,
    shown_windows,
    user_panel,
    window_intervals,
    window_split,
)
from core.fairness.report import (
    CalibrationReport,
    FairnessInputs,
    FairnessReport,
    ItemReport,
    fairness_report,
)
from core.fairness.users import MIN_GROUP_SIZE, GapRow, GroupRow, grouped_metrics, per_user_quality

__all__ = [
    "ALPHA",
    "AGE_BANDS",
    "DERIVED_ATTRIBUTES",
    "FREQUENCIES",
    "TREND_USERS",
    "MIN_GROUP_SIZE",
    "CalibrationReport",
    "ExposureRow",
    "ExposureTable",
    "FairnessInputs",
    "FairnessReport",
    "GapRow",
    "GroupRow",
    "ItemReport",
    "LoadedInputs",
    "RecommendFn",
    "WindowRow",
    "age_band",
    "aplt",
    "arp",
    "attribute_groups",
    "calendar_windows",
    "category_distribution",
    "category_groups",
    "check_recs",
    "coverage",
    "derive_user_groups",
    "group_members",
    "LOG_GROUPS",
    "log_user_groups",
    "exposure_table",
    "fairness_report",
    "gini",
    "grouped_metrics",
    "history_popularity",
    "item_category_weights",
    "item_exposure",
    "item_summary",
    "known_attributes",
    "load_inputs",
    "miscalibration",
    "model_recommender",
    "novelty",
    "over_time",
    "shown_windows",
    "window_intervals",
    "per_user_quality",
    "popularity_groups",
    "popularity_lift",
    "popularity_recommender",
    "position_weight",
    "recommendation_counts",
    "save_inputs",
    "short_head",
    "user_group_table",
    "panel_note",
    "user_panel",
    "window_split",
]
