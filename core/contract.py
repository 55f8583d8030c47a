"""The model contract: what every model offers the analyses, ours and external ones alike.

`evaluate`, `recommend`, `trajectory`, `explain`, `fairness` and `compare` need only `RecModel.score`: a batch of
histories in, full-catalogue scores out. Richer views (per-step states, attention weights, the long/short-term
gate) exist only for models that declare them in `capabilities`; callers ask `supports(model, name)` and show
"not available for this model" otherwise, rather than probing attributes.

Shapes: B histories, T steps, I items of the catalogue (score column 0 is padding and is -inf).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol, runtime_checkable

import torch

from core.model import Batch, InterestModel

__all__ = ["CAPABILITIES", "Capability", "RecModel", "InterestScorer", "supports", "module_of"]

Capability = Literal["states", "attention", "gate"]
CAPABILITIES: tuple[Capability, ...] = ("states", "attention", "gate")


@runtime_checkable
class RecModel(Protocol):
    """A next-item model over a catalogue, as the analyses see it.

    `score(batch)` reads each row's present events (`batch.mask`, items > 0), the latest `max_len` of them, and
    returns `[B, I+1]` float scores where column j is item `item_ids[j-1]` and column 0 is -inf. An event that is
    absent (mask False) must not influence the row's scores; how a model realises absence is its own (ours masks
    attention, external adapters drop the event from the sequence).
    """

    item_ids: Sequence[str]  # [I] database item ids of score columns 1..I
    max_len: int  # events read per history (the latest)
    kind: str  # "interestlens", "onnx", "torchscript" or "entry"
    capabilities: frozenset[str]  # a subset of CAPABILITIES
    device: torch.device  # where `score` wants its batch

    def score(self, batch: Batch) -> torch.Tensor: ...


def supports(model: RecModel, capability: Capability) -> bool:
    """Whether `model` offers `capability` ("states", "attention" or "gate")."""
    if capability not in CAPABILITIES:
        raise ValueError(f"unknown capability {capability!r}; known: {', '.join(CAPABILITIES)}")
    return capability in model.capabilities


def module_of(model: RecModel) -> InterestModel:
    """The interest network behind a model that supports "states" (ours); ValueError for any other."""
    if not supports(model, "states") or not isinstance(model, InterestScorer):
        raise ValueError(f"a {model.kind} model has no per-step states")
    return model.module


class InterestScorer:
    """`InterestModel` behind the contract: scores after each row's last present event, every capability.

    Parameters
    ----------
    module
        The trained network, in eval mode.
    item_ids
        The vocabulary's items (`Vocab.items`), column j of the scores being item_ids[j-1].
    max_len
        The model's window (`ModelConfig.max_len`).
    """

    kind = "interestlens"
    capabilities = frozenset(CAPABILITIES)

    def __init__(self, module: InterestModel, item_ids: Sequence[str], max_len: int):
        self.module = module
        self.item_ids = item_ids
        self.max_len = int(max_len)

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    def score(self, batch: Batch) -> torch.Tensor:
        """Scores `[B, I+1]` after each row's last present event (`InterestModel.forward`, in eval mode)."""
        if self.module.training:  # a model straight from training still has dropout on
            self.module.eval()
        return self.module(batch.to(self.device))
