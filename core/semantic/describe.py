"""Interests in words: the category names, tags and item texts nearest to a user's interest state.

The interest after step t is the model's distribution over items, softmax(s_t) (as in ../shared/METRICS.md §2).
Its text vector is the expectation of the item text vectors under that distribution, normalised to unit length:
u_t = Σ_i softmax(s_t)_i · text_i / ‖·‖. This works for any model behind the contract (ours, with or without text
features, or an external one: `interest_scores` reads `LoadedModel.scorer`): only the item texts need encoding.

Described relative to the catalogue (the default of `describe_user`), the vector is the expectation minus the mean
text of the catalogue's items, r_t = (Σ_i softmax(s_t)_i · text_i − mean_i text_i) / ‖·‖: the words are those that
set this user's interest apart. Without that, every user whose interest is still spread over many items is nearest
to the catalogue's own centre, and all are described with the same few words.

Shapes: N states, D hidden, I items (+1 padding), d text width.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from core.checkpoint import LoadedModel
from core.errors import UserInputError
from core.model import InterestModel
from core.semantic.vectors import Match, TextVectors, nearest
from core.sequences import History, Sequences, make_batch

__all__ = [
    "InterestWords",
    "UserInterestWords",
    "interest_text",
    "scores_text",
    "interest_scores",
    "catalogue_centre",
    "words_for",
    "interest_states",
    "current_interest_text",
    "describe_user",
]


@dataclass
class InterestWords:
    """The words nearest to the interest after one step of a history."""

    step: int  # 0-based index of the last event read (the interest after it)
    ts: dt.datetime | None  # time of that event (naive UTC)
    terms: list[Match] = field(default_factory=list)  # nearest categories / tags, best first
    items: list[Match] = field(default_factory=list)  # nearest item texts, best first

    @property
    def summary(self) -> str:
        """The nearest terms as one short phrase, e.g. "Sci-Fi, Adventure, Action"."""
        return ", ".join(m.key for m in self.terms)


@dataclass
class UserInterestWords:
    """A user's interest in words at a few points of their history; the last point is the current interest."""

    user_id: str
    n_events: int
    points: list[InterestWords]

    @property
    def current(self) -> InterestWords:
        return self.points[-1]


def catalogue_centre(item_text: torch.Tensor) -> torch.Tensor:
    """[d] the mean text vector of the items that have one (item_text [I+1,d]; padding and text-less rows, which are
    zero, are left out)."""
    has = item_text.norm(dim=-1) > 0  # [I+1]
    return item_text[has].mean(0) if bool(has.any()) else torch.zeros(item_text.shape[-1], dtype=item_text.dtype)


def interest_text(
    model: InterestModel, states: torch.Tensor, item_text: torch.Tensor, centre: torch.Tensor | None = None
) -> np.ndarray:
    """Text vectors of interest states: states [N,D], item_text [I+1,d] (row = model index) -> [N,d] unit rows;
    with a `centre` [d] (`catalogue_centre`), the expectation minus the centre, normalised."""
    with torch.no_grad():
        return scores_text(model.score(states), item_text, centre)


def scores_text(scores: torch.Tensor, item_text: torch.Tensor, centre: torch.Tensor | None = None) -> np.ndarray:
    """Text vectors of score rows: scores [N,I+1] (column 0 = padding, -inf), item_text [I+1,d] -> [N,d] unit rows
    (the softmax-weighted mean item text; minus `centre` when given). Any model's scores will do."""
    with torch.no_grad():
        p = scores.float().softmax(-1)  # [N,I+1]; padding scores -inf so gets 0
        u = p @ item_text.to(p.device, p.dtype)  # [N,d]
        if centre is not None:
            u = u - centre.to(p.device, p.dtype)  # [N,d]
        u = u / u.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return u.cpu().numpy().astype(np.float32)


def words_for(u: np.ndarray, tv: TextVectors, k: int = 5) -> tuple[list[Match], list[Match]]:
    """The k terms and k item texts nearest to one text-space interest u [d]."""
    t_rows, t_sims = nearest(tv.term_vectors, u, k)
    i_rows, i_sims = nearest(tv.vectors, u, k)
    terms = [Match(tv.terms[r], tv.terms[r], float(s)) for r, s in zip(t_rows, t_sims, strict=True)]
    items = [Match(tv.item_ids[r], tv.texts[r], float(s)) for r, s in zip(i_rows, i_sims, strict=True)]
    return terms, items


def interest_states(loaded: LoadedModel, histories: Sequence[History], batch_size: int = 256) -> torch.Tensor:
    """The interest after the last event of each history (its latest `max_len` events), as recommendations read it.

    Returns [N,D] on the model's device.
    """
    model, max_len = loaded.model, loaded.config.max_len
    out = []
    with torch.no_grad():
        for b0 in range(0, len(histories), batch_size):
            batch = make_batch(histories[b0 : b0 + batch_size], max_len, len(loaded.vocab.context)).to(loaded.device)
            out.append(model.readout(model.encode(batch), batch))  # [B,D]
    return torch.cat(out) if out else torch.zeros(0, loaded.config.d_model, device=loaded.device)


def interest_scores(loaded: LoadedModel, histories: Sequence[History], batch_size: int = 256) -> torch.Tensor:
    """Scores [N,I+1] after the last event of each history (its latest `max_len` events), through the model
    contract (`LoadedModel.scorer`): ours or an external model alike. For ours this is
    `model.score(interest_states(...))`."""
    scorer = loaded.scorer
    out = []
    with torch.no_grad():
        for b0 in range(0, len(histories), batch_size):
            batch = make_batch(histories[b0 : b0 + batch_size], scorer.max_len, len(loaded.vocab.context))
            out.append(scorer.score(batch).float().cpu())  # [B,I+1]
    return torch.cat(out) if out else torch.zeros(0, loaded.vocab.n_items + 1)


def _item_text(loaded: LoadedModel, tv: TextVectors) -> torch.Tensor:
    return torch.from_numpy(tv.aligned(loaded.vocab.items))  # [I+1,d]


def current_interest_text(loaded: LoadedModel, tv: TextVectors, seqs: Sequences, batch_size: int = 256) -> np.ndarray:
    """[U,d] the text vector of every user's current interest (rows in `seqs` order); any model."""
    histories = [seqs.history(r) for r in range(seqs.n_users)]
    return scores_text(interest_scores(loaded, histories, batch_size), _item_text(loaded, tv))


def _default_steps(n: int, points: int) -> list[int]:
    ends = np.round(np.linspace(n / points, n, points)).astype(np.int64) - 1
    return sorted({int(s) for s in np.clip(ends, 0, n - 1)})


def describe_user(
    loaded: LoadedModel,
    tv: TextVectors,
    seqs: Sequences,
    user_id: str,
    points: int = 4,
    k: int = 5,
    steps: Sequence[int] | None = None,
    relative: bool = True,
) -> UserInterestWords:
    """A user's interest in words after `steps` (default: `points` evenly spaced steps ending at the last event);
    `relative`: the words that set the interest apart from the catalogue's mean text (see the module docstring).

    Raises NotFoundError for a user without events and UserInputError for a step outside the history.
    """
    row = seqs.row(user_id)
    history = seqs.history(row)
    n = len(history)
    chosen = list(steps) if steps is not None else _default_steps(n, max(1, int(points)))
    if any(s < 0 or s >= n for s in chosen):
        raise UserInputError(f"User {user_id!r} has {n} events; steps must be between 0 and {n - 1}.")
    max_len = loaded.scorer.max_len
    windows = [history.slice(max(0, s + 1 - max_len), s + 1) for s in chosen]
    item_text = _item_text(loaded, tv)  # [I+1,d]
    centre = catalogue_centre(item_text) if relative else None
    u = scores_text(interest_scores(loaded, windows), item_text, centre)  # [P,d]
    out = []
    for s, vec in zip(chosen, u, strict=True):
        terms, items = words_for(vec, tv, k)
        ts = dt.datetime.fromtimestamp(int(history.ts[s]), dt.UTC).replace(tzinfo=None)
        out.append(InterestWords(int(s), ts, terms, items))
    return UserInterestWords(str(user_id), n, out)
