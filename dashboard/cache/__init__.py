"""The app's data layer: typed, cached calls into `core`, one mechanism (Streamlit's caches, with size limits).

- `handles`: which database and model (`DbRef`, `ModelRef`: the keys of every cached result), model cards;
- `resources`: `st.cache_resource` builders (the loaded model, its analysers and explainer, the report's plotly.js);
- `queries`: `st.cache_data` reads of the store;
- `models`: `st.cache_data` model-backed results (recommendations, trajectory, attention, explanations, fairness);
- `semantic`: item text vectors, interests in words, search by meaning;
- `served`: a served-recommendation log's variants and fairness report.

A page calls these by name, e.g. ``cache.user_view(db, model, user)``.
"""

from dashboard.cache.handles import (
    ChangedMost,
    DbRef,
    ModelRef,
    active_model,
    changed_most,
    database,
    db_path,
    list_models,
    model_parquet,
    model_ref,
    models_root,
    read_card,
    release,
    version,
)
from dashboard.cache.models import (
    MAX_K,
    Deletion,
    FairnessView,
    attention,
    cohort_trajectories,
    deletion,
    explain,
    fairness,
    fairness_trend,
    friend_values,
    periods,
    recommend,
    trajectory,
    user_view,
    what_if,
)
from dashboard.cache.queries import (
    activity_distribution,
    attribute_values,
    category_share_over_time,
    cohort_category_share,
    cohort_members,
    cohort_sizes,
    dataset_summary,
    events_over_time,
    events_since,
    find_items,
    group_labels,
    ingest_runs,
    item_lookup,
    list_users,
    log_user_groups,
    model_fit,
    run_rejects,
    top_items,
    user_attribute_keys,
    user_attributes,
    user_exists,
    user_history,
)
from dashboard.cache.resources import (
    APP_TORCH_THREADS,
    attention_analyser,
    explainer,
    loaded_model,
    plotly_js,
    trajectory_analyser,
)
from dashboard.cache.served import served_fairness, served_fairness_trend, served_variants

__all__ = [
    "ChangedMost", "DbRef", "ModelRef", "active_model", "changed_most", "database", "db_path", "list_models",
    "model_parquet", "model_ref",
    "models_root", "read_card", "release", "version",
    "MAX_K", "Deletion", "FairnessView", "attention", "cohort_trajectories", "deletion", "explain", "fairness",
    "fairness_trend", "friend_values",
    "periods", "recommend", "trajectory", "user_view", "what_if",
    "activity_distribution", "attribute_values", "category_share_over_time", "cohort_category_share",
    "cohort_members", "cohort_sizes", "group_labels", "log_user_groups",
    "dataset_summary", "events_over_time", "events_since", "find_items", "ingest_runs", "item_lookup",
    "list_users", "model_fit", "run_rejects", "top_items", "user_attribute_keys", "user_attributes", "user_exists",
    "user_history",
    "served_fairness", "served_fairness_trend", "served_variants",
    "APP_TORCH_THREADS", "attention_analyser", "explainer", "loaded_model", "plotly_js",
    "trajectory_analyser",
]
