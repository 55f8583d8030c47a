"""Ingestion: public log formats (presets) and DataFrames into the event store, one transaction per run."""

from core.ingest.api import ingest
from core.ingest.frames import ingest_frames
from core.ingest.presets import PRESETS, IngestOptions, Preset, get_preset, preset_names
from core.ingest.result import ColumnMapping, IngestResult

__all__ = [
    "ingest",
    "ingest_frames",
    "PRESETS",
    "Preset",
    "IngestOptions",
    "get_preset",
    "preset_names",
    "ColumnMapping",
    "IngestResult",
]
