"""Served-recommendation logs: what a production system showed, loaded and audited without any model."""

from core.served.ingest import SERVED_TABLE, ensure_served_table, ingest_served
from core.served.metrics import ServedWindow, latest_lists, read_served, served_lists, served_over_time
from core.served.report import served_inputs, served_report, served_variants

__all__ = [
    "SERVED_TABLE",
    "ensure_served_table",
    "ingest_served",
    "ServedWindow",
    "latest_lists",
    "read_served",
    "served_lists",
    "served_over_time",
    "served_inputs",
    "served_report",
    "served_variants",
]
