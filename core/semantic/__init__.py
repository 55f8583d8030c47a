"""Language-model item semantics: item texts encoded by a pretrained sentence encoder, cached in Parquet, fused
into the interest model, searched by meaning, and used to describe interests in words.

Only `load_encoder` (and encoding new texts) needs the optional `semantic` extra; reading cached vectors,
similar items, model fusion and describing interests work without it.
"""

from core.semantic.coldstart import (
    ColdStartRanks,
    cold_start_ranks,
    cold_start_targets,
    held_out_items,
    without_items,
)
from core.semantic.describe import (
    InterestWords,
    UserInterestWords,
    catalogue_centre,
    current_interest_text,
    describe_user,
    interest_scores,
    interest_states,
    interest_text,
    scores_text,
    words_for,
)
from core.semantic.encoder import (
    DEFAULT_ENCODER,
    INSTALL_HINT,
    SemanticUnavailable,
    SentenceEncoder,
    TextEncoder,
    encoder_available,
    load_encoder,
)
from core.semantic.fusion import attach_text, extend_catalogue, text_config, text_for_training
from core.semantic.reasons import MatchReason, match_reasons
from core.semantic.search import (
    UserMatch,
    query_vector,
    search_items,
    search_users,
    similar_items,
)
from core.semantic.status import SemanticStatus, semantic_status
from core.semantic.text import TEXT_ATTRIBUTES, ItemTexts, compose_text, item_texts
from core.semantic.vectors import (
    VECTORS_FILE,
    Match,
    TextVectors,
    default_vectors_path,
    encode_items,
    nearest,
    read_vectors,
    write_vectors,
)

__all__ = [
    "SemanticStatus",
    "semantic_status",
    "ColdStartRanks",
    "cold_start_ranks",
    "cold_start_targets",
    "held_out_items",
    "without_items",
    "DEFAULT_ENCODER",
    "INSTALL_HINT",
    "TEXT_ATTRIBUTES",
    "VECTORS_FILE",
    "InterestWords",
    "ItemTexts",
    "Match",
    "SemanticUnavailable",
    "SentenceEncoder",
    "TextEncoder",
    "TextVectors",
    "UserInterestWords",
    "UserMatch",
    "attach_text",
    "compose_text",
    "catalogue_centre",
    "current_interest_text",
    "default_vectors_path",
    "describe_user",
    "encode_items",
    "encoder_available",
    "extend_catalogue",
    "interest_scores",
    "interest_states",
    "interest_text",
    "scores_text",
    "item_texts",
    "load_encoder",
    "nearest",
    "query_vector",
    "MatchReason",
    "match_reasons",
    "read_vectors",
    "search_items",
    "search_users",
    "similar_items",
    "text_config",
    "text_for_training",
    "words_for",
    "write_vectors",
]
