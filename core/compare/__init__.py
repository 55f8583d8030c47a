"""Two models side by side: accuracy with a paired bootstrap, fairness gaps, exposure and top-K overlap."""

from core.compare.compare import Comparison, ModelSide, compare_loaded, compare_models
from core.compare.overlap import jaccard, rbo
from core.compare.protocols import COMPARE_PROTOCOLS, PROTOCOL_TEXT, ProtocolComparison, protocol_table
from core.compare.report import comparison_html

__all__ = ["Comparison", "ModelSide", "compare_loaded", "compare_models", "jaccard", "rbo", "comparison_html",
           "COMPARE_PROTOCOLS", "PROTOCOL_TEXT", "ProtocolComparison", "protocol_table"]
