"""The DuckDB event store: schema, connection policy and the read API."""

from core.store.connection import (
    DEFAULT_DB,
    SCHEMA_VERSION,
    StoreError,
    connect_read,
    connect_write,
    default_db_path,
    init_schema,
)
from core.store.queries import (
    category_share_over_time,
    dataset_summary,
    events_over_time,
    item_lookup,
    list_users,
    user_history,
)

__all__ = [
    "DEFAULT_DB",
    "SCHEMA_VERSION",
    "StoreError",
    "connect_read",
    "connect_write",
    "default_db_path",
    "init_schema",
    "dataset_summary",
    "list_users",
    "user_history",
    "events_over_time",
    "category_share_over_time",
    "item_lookup",
]
