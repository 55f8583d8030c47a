"""External models behind the model contract (`core.contract`): ONNX, TorchScript and Python entry points."""

from core.external.adapters import (
    SCORE_CELLS,
    EntryModel,
    ExternalModel,
    HistoryInput,
    OnnxModel,
    TorchScriptModel,
)
from core.external.registry import (
    EXTERNAL_FILE,
    ModelInfo,
    add_model,
    is_external,
    list_models,
    load_external,
    model_folders,
)
from core.external.sidecar import Sidecar, read_item_map, read_sidecar

__all__ = [
    "SCORE_CELLS",
    "HistoryInput",
    "ExternalModel",
    "OnnxModel",
    "TorchScriptModel",
    "EntryModel",
    "EXTERNAL_FILE",
    "ModelInfo",
    "add_model",
    "is_external",
    "list_models",
    "load_external",
    "model_folders",
    "Sidecar",
    "read_sidecar",
    "read_item_map",
]
