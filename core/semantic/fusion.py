"""Text vectors in the interest model: fill its frozen `item_text` buffer, and represent new items by text alone.

With `ModelConfig.text_dim > 0` the model adds a learned projection of each item's frozen text vector to the item's
own embedding (`InterestModel.item_vectors`), both where the item is an input step and where it is scored. The
text vectors are a buffer, so they are saved in `model.safetensors` and load back with the model.

An item that had no training events has no embedding of its own; `extend_catalogue` gives it one of zeros, so its
representation is the projection of its text alone and it is scored like every other item. A model trained
without text has nothing to tell such items apart: they all get the same score.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence

import numpy as np
import torch

from core.checkpoint import LoadedModel
from core.errors import InterestLensError
from core.model import InterestModel, ModelConfig, ModelSizes
from core.semantic.vectors import TextVectors, encode_items
from core.sequences import Vocab

__all__ = ["text_config", "text_for_training", "attach_text", "extend_catalogue"]

log = logging.getLogger(__name__)


def text_config(config: ModelConfig, tv: TextVectors) -> ModelConfig:
    """`config` with the text input switched on at the width of these vectors."""
    return dataclasses.replace(config, text_dim=tv.dim)


def text_for_training(db: str | os.PathLike | None, config: ModelConfig) -> tuple[ModelConfig, TextVectors]:
    """The item text vectors of `db` (cached beside it; the encoder loads only when texts changed) and `config`
    with the text input switched on at their width. Called by `core.train` when text features are asked for.

    Raises SemanticUnavailable when texts must be encoded and the `semantic` extra is not installed.
    """
    tv = encode_items(db)
    if config.text_dim and config.text_dim != tv.dim:
        raise InterestLensError(f"text_dim is {config.text_dim} but the encoder {tv.encoder} gives {tv.dim}-wide vectors.")
    return text_config(config, tv), tv


def attach_text(model: InterestModel, vocab: Vocab, tv: TextVectors) -> int:
    """Copy the text vector of every vocabulary item into the model's `item_text` buffer (row = model index).

    Returns the number of vocabulary items that have a text (the others keep a zero vector).
    """
    if model.text_proj is None:
        raise InterestLensError("This model has no text input; train it with text features switched on.")
    if model.config.text_dim != tv.dim:
        raise InterestLensError(
            f"The model reads {model.config.text_dim}-wide text vectors but the encoder {tv.encoder} gives {tv.dim}."
        )
    rows = tv.aligned(vocab.items)  # [I+1, d]
    with torch.no_grad():
        model.item_text.copy_(torch.from_numpy(rows).to(model.item_text.device))
    n = int((np.abs(rows[1:]).sum(1) > 0).sum())
    if n < vocab.n_items:
        log.info("%d of %d items have no text; their text vector is zero", vocab.n_items - n, vocab.n_items)
    return n


def extend_catalogue(
    loaded: LoadedModel,
    item_ids: Sequence[str],
    tv: TextVectors | None = None,
    categories: Sequence[Sequence[str]] | None = None,
) -> LoadedModel:
    """The model with `item_ids` (items it never trained on) appended to its catalogue.

    Parameters
    ----------
    loaded
        A loaded model; it is not modified.
    item_ids
        New items (ids the vocabulary does not hold yet; known ids are ignored). They get model indices
        I+1 .. I+n in this order and an item embedding of zeros.
    tv
        Text vectors; a text model's new items read theirs (a new item without one gets zero). Needed when the
        model has a text input.
    categories
        Category names per new item (names the vocabulary does not know are ignored).

    Returns
    -------
    LoadedModel
        A new model (eval mode, same device) over I + n items whose scores for the old items are unchanged.
    """
    vocab = loaded.vocab
    keep = [n for n, i in enumerate(item_ids) if vocab.item_index(str(i)) == 0]
    new_ids = [str(item_ids[n]) for n in keep]
    cat_index = {c: k for k, c in enumerate(vocab.categories)}
    new_cats = [
        sorted({cat_index[c] for c in (categories[n] if categories is not None else []) if c in cat_index})
        for n in keep
    ]
    vocab2 = Vocab(
        items=vocab.items + new_ids,
        categories=list(vocab.categories),
        event_types=list(vocab.event_types),
        context={k: list(v) for k, v in vocab.context.items()},
        item_categories=[list(c) for c in vocab.item_categories] + new_cats,
    )
    sizes2 = dataclasses.replace(loaded.sizes, n_items=vocab2.n_items)
    model = _grown_model(loaded.model, loaded.config, sizes2, vocab2, len(new_ids), tv)
    return dataclasses.replace(loaded, model=model, vocab=vocab2, sizes=sizes2)


def _grown_model(
    old: InterestModel, cfg: ModelConfig, sizes: ModelSizes, vocab: Vocab, n_new: int, tv: TextVectors | None
) -> InterestModel:
    device = next(old.parameters()).device
    weights = vocab.category_weights() if sizes.n_categories else None
    model = InterestModel(cfg, sizes, weights)
    state = {k: v.detach().clone() for k, v in old.state_dict().items()}
    emb = state["item_emb.weight"]  # [I+1, D]
    state["item_emb.weight"] = torch.cat([emb, emb.new_zeros(n_new, emb.shape[1])])  # [I+1+n, D]
    state["item_cats"] = model.item_cats
    if cfg.text_dim:
        if tv is None:
            raise InterestLensError("This model reads item texts, and they are not encoded yet.", next_step="encode_texts")
        if tv.dim != cfg.text_dim:
            raise InterestLensError(f"The model reads {cfg.text_dim}-wide text vectors but these are {tv.dim} wide.")
        new_rows = torch.from_numpy(tv.aligned(vocab.items[-n_new:] if n_new else [])[1:])  # [n, d]
        state["item_text"] = torch.cat([state["item_text"], new_rows.to(state["item_text"].dtype)])
    model.load_state_dict(state, strict=True)
    return model.to(device).eval()
