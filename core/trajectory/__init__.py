"""Interest trajectories: per-step interest over categories, a decayed-histogram baseline, drift, change points,
per-user drift summaries (written beside the model), cohort trajectories, and the time grid (sessions, days,
weeks, months) that charts, drift and change points are read on."""

from core.trajectory.analyzer import TrajectoryAnalyzer, TrajectoryConfig
from core.trajectory.batch import DRIFT_FILE, DriftBatch, build_drift, read_drift, summaries_table
from core.trajectory.changes import (
    MIN_DIVERGENCE,
    PENALTY_SCALE,
    ChangePoint,
    auto_penalty,
    describe_changes,
    detect_change_points,
    noise_variance,
)
from core.trajectory.cohort import (
    CohortTrajectory,
    cohort_mean,
    cohort_members,
    cohort_trajectory,
    period_start,
)
from core.trajectory.engine import StepOutputs, encode_steps, plan_windows
from core.trajectory.grid import (
    TOP_CATEGORIES,
    GridChange,
    GridTrajectory,
    drift_summary,
    grid_view,
    largest_change,
    shift_words,
)
from core.trajectory.grid_changes import ChangeConfig, Changes, contrast, detect_changes, moment_starts
from core.trajectory.measures import (
    category_distribution,
    decayed_histogram,
    drift_series,
    js_divergence,
    total_variation,
)
from core.trajectory.result import OTHER, SERIES, DriftSummary, Trajectory
from core.trajectory.sidecar import VIEWS_FILE, UserViews, ViewsBuild, build_views, views_state
from core.trajectory.timegrid import GRAINS, Bulk, Grain, bucket_index, bulk_entries, choose_grain, sessions
from core.trajectory.validation import ChangePointScore, change_point_scores, match_change_points
from core.trajectory.view import UserView, item_titles, user_view

__all__ = [
    "TrajectoryAnalyzer",
    "TrajectoryConfig",
    "Trajectory",
    "DriftSummary",
    "OTHER",
    "SERIES",
    "StepOutputs",
    "encode_steps",
    "plan_windows",
    "category_distribution",
    "decayed_histogram",
    "drift_series",
    "js_divergence",
    "total_variation",
    "ChangePoint",
    "PENALTY_SCALE",
    "MIN_DIVERGENCE",
    "auto_penalty",
    "noise_variance",
    "detect_change_points",
    "describe_changes",
    "DRIFT_FILE",
    "DriftBatch",
    "build_drift",
    "read_drift",
    "summaries_table",
    "CohortTrajectory",
    "cohort_mean",
    "cohort_members",
    "cohort_trajectory",
    "period_start",
    "ChangePointScore",
    "change_point_scores",
    "match_change_points",
    "TOP_CATEGORIES",
    "GridChange",
    "GridTrajectory",
    "drift_summary",
    "grid_view",
    "largest_change",
    "shift_words",
    "ChangeConfig",
    "Changes",
    "contrast",
    "detect_changes",
    "moment_starts",
    "GRAINS",
    "Bulk",
    "Grain",
    "bucket_index",
    "bulk_entries",
    "choose_grain",
    "sessions",
    "UserView",
    "item_titles",
    "user_view",
    "VIEWS_FILE",
    "UserViews",
    "ViewsBuild",
    "build_views",
    "views_state",
]
