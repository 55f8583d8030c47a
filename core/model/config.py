"""Model configuration (what the analyst or trainer chooses) and sizes (what the data dictates)."""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, field

from core.errors import SettingError, UserInputError
from core.model.batch import N_GAP_BUCKETS

__all__ = ["ModelConfig", "ModelSizes"]


@dataclass(frozen=True)
class ModelConfig:
    d_model: int = 64  # width of every step embedding and hidden state
    n_layers: int = 2  # number of pre-LayerNorm causal self-attention blocks
    n_heads: int = 2  # attention heads per block (d_model must divide evenly)
    max_len: int = 50  # longest history window the model reads (the latest events); 50 scored best on ML-100k
    dropout: float = 0.2  # dropout on embeddings, attention weights and block outputs (training only)
    use_time_gaps: bool = True  # fuse the log-bucketed time gap to the previous event into each step
    use_event_types: bool = True  # fuse the event type (view, cart, rating, ...) into each step
    use_categories: bool = True  # fuse the mean embedding of the item's categories into each step
    use_context: bool = True  # fuse categorical context columns (device, ...) into each step
    n_gap_buckets: int = N_GAP_BUCKETS  # number of time-gap buckets (bucket 0 = first event / unknown)
    text_dim: int = 0  # width of pretrained item text vectors fused into item embeddings; 0 = no text
    text_id_dropout: float = 0.25  # with text, share of items scored by their text alone in each training step
    # weight of the auxiliary next-category loss; above 0 (and with categories) a linear head on every step's state
    # predicts the next event's category split, trained jointly with the next-item loss (core.trajectory.forecast)
    category_loss: float = 0.0
    # label smoothing of the next-item cross-entropy (full softmax only): this share of each target's probability
    # is spread uniformly over the catalogue; 0 = plain cross-entropy, the behaviour before 2026-12-07
    label_smoothing: float = 0.0
    # a learned logit offset for items already in the history window up to each step (core.model.repeat): two
    # scalars, "seen" and "is the last event", learned negative on logs without repeats, positive with them;
    # off = scores exactly as before. A checkpoint saved before this field existed loads with it off.
    repeat_term: bool = False

    def __post_init__(self) -> None:
        """Refuse shapes the model cannot be built with, in one sentence (SettingError naming the field)."""
        for name, value, low in (("max_len", self.max_len, 1), ("d_model", self.d_model, 1),
                                 ("n_heads", self.n_heads, 1), ("n_layers", self.n_layers, 1),
                                 ("n_gap_buckets", self.n_gap_buckets, 1), ("text_dim", self.text_dim, 0)):  # fmt: skip
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
                raise SettingError(f"{{{name}}} must be a whole number of at least {{low}}, not {{value!r}}.", name,
                                   low=low, value=value)
        if self.d_model % self.n_heads:
            raise UserInputError(f"d_model ({self.d_model}) must be a multiple of n_heads ({self.n_heads}).")
        cl = self.category_loss
        if isinstance(cl, bool) or not isinstance(cl, numbers.Real) or not math.isfinite(cl) or cl < 0:
            raise UserInputError(f"category_loss must be a finite number of at least 0, not {cl!r}.")
        for name, value, closed in (("dropout", self.dropout, False), ("text_id_dropout", self.text_id_dropout, True),
                                    ("label_smoothing", self.label_smoothing, False)):
            ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and not math.isnan(value)
            if not ok or value < 0 or value > 1 or (value == 1 and not closed):
                span = "from 0 to 1" if closed else "at least 0 and below 1"
                raise UserInputError(f"{name} must be {span}, not {value!r}.")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        known.setdefault("repeat_term", False)  # saved before the term existed: the model had none
        return cls(**known)


@dataclass(frozen=True)
class ModelSizes:
    n_items: int  # catalogue size I (model item index 1..I; 0 is padding)
    n_categories: int = 0  # number of item categories C
    n_event_types: int = 0  # number of event types (index 1..n; 0 = unknown)
    context_sizes: tuple[int, ...] = field(default_factory=tuple)  # values per context column (index 0 = unknown)

    def to_dict(self) -> dict:
        return {**asdict(self), "context_sizes": list(self.context_sizes)}

    @classmethod
    def from_dict(cls, d: dict) -> ModelSizes:
        return cls(
            n_items=int(d["n_items"]),
            n_categories=int(d.get("n_categories", 0)),
            n_event_types=int(d.get("n_event_types", 0)),
            context_sizes=tuple(int(x) for x in d.get("context_sizes", ())),
        )
