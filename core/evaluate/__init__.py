"""Next-item evaluation: splits, full-ranking metrics, baselines and per-user results (../shared/METRICS.md §1)."""

from core.evaluate.baselines import markov_scorer, most_popular_scorer, popularity
from core.evaluate.evaluate import (
    EVAL_USERS_FILE,
    EvalResult,
    ProtocolResult,
    evaluate_loaded,
    evaluate_model,
    evaluate_split,
    evaluate_split_protocols,
)
from core.evaluate.metrics import METRIC_KEYS, coverage, hit_rate, mrr, ndcg, summarize
from core.evaluate.protocol import (
    REPEAT_THRESHOLD,
    SEEN_RULES,
    SeenDecision,
    decide_seen,
    repeat_share,
    seen_from_card,
)
from core.evaluate.ranking import PROTOCOLS, Ranked, Scorer, check_finite, model_scorer, rank_targets, top_k
from core.evaluate.split import Split, leave_one_out, make_split, split_from_card, time_split
from core.evaluate.windows import prefix_pairs, window_batch

__all__ = [
    "METRIC_KEYS",
    "hit_rate",
    "ndcg",
    "mrr",
    "coverage",
    "summarize",
    "Split",
    "leave_one_out",
    "time_split",
    "make_split",
    "split_from_card",
    "Ranked",
    "Scorer",
    "rank_targets",
    "top_k",
    "model_scorer",
    "popularity",
    "most_popular_scorer",
    "markov_scorer",
    "EvalResult",
    "EVAL_USERS_FILE",
    "evaluate_split",
    "evaluate_loaded",
    "evaluate_model",
    "ProtocolResult",
    "evaluate_split_protocols",
    "PROTOCOLS",
    "check_finite",
    "SEEN_RULES",
    "REPEAT_THRESHOLD",
    "SeenDecision",
    "decide_seen",
    "repeat_share",
    "seen_from_card",
    "window_batch",
    "prefix_pairs",
]
