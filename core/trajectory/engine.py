"""Per-step model outputs for whole histories, in batched forward passes.

A history no longer than the model's `max_len` is encoded in one pass and every step is read out exactly as the
model reads it. A longer history is covered by overlapping windows of `max_len` events whose ends are `stride`
events apart (the last window ends at the last event): each step is read out from the first window that ends at
or after it, so it sees at least `max_len − stride` earlier events (all of them for the first `max_len` steps),
and the last step is read exactly as recommendations read it (the latest `max_len` events). The default stride,
`max_len // 2`, gives every step at least half a window of context and costs about 1.3 forward passes per event
on MovieLens-100k (stride 1 is the exact sliding window: one pass per step). All windows of all
histories go through the model together, `batch_size` windows at a time, shortest with shortest.

A model without per-step states (an external model behind `core.contract`) is traced from each prefix's scores
instead (`core.trajectory.prefix`): no gate, no long/short components.

Events whose item the model does not know are skipped by the model (as `make_batch` does): their step repeats
the interest after the last known event before them; steps before any known event get the model's learned empty
state (gate NaN).

A model with the social branch reads its friends when `encode_steps` gets a `friends` hook
(`core.friends.context.SocialContext.history_hook`): each window's batch then carries the friends' states and
recent items strictly before every step, and the gated distribution is the one the model scores with (fused states,
and with the copy path the mixture with friends' recent items). The long- and short-term components stay the user's
own. Without the hook a social model is read without friends, as before.

Shapes: B windows, T steps, D hidden, I items (+1 padding), C categories, N read-out steps.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from core.contract import InterestScorer, RecModel, module_of, supports
from core.model import Batch, InterestModel
from core.model.model import Encoding
from core.model.social import copy_categories, copy_log_probs
from core.sequences import History, make_batch
from core.trajectory.measures import category_distribution
from core.trajectory.prefix import score_steps

__all__ = ["StepOutputs", "plan_windows", "encode_steps"]

log = logging.getLogger(__name__)

_SCORE_CELLS = 1 << 21  # states x items scored at a time: ~8 MB of logits, so the softmax and the category sum
# read them from cache (bench: 3 x 264 steps x 49k items went from ~255 ms to ~155 ms with 1 << 21 and the fused
# softmax, against 1 << 23 and a separate max / exp)


@dataclass
class StepOutputs:
    """The model's interest after every step of one history (row k = after the first k+1 events)."""

    distribution: np.ndarray  # [n, C] from the gated state (what recommendations use)
    long_term: np.ndarray | None  # [n, C] from the long-term interest alone (None when not asked for)
    short_term: np.ndarray | None  # [n, C] from the short-term interest alone (None when not asked for)
    gate: np.ndarray  # [n] weight on the long-term interest (NaN before the first known event)
    head: np.ndarray | None = None  # [n, C] the category head's forecast from the gated state (None: no head)


def plan_windows(m: int, max_len: int, stride: int) -> list[tuple[int, int, int]]:
    """Windows covering m steps: (start, end_exclusive, first_step_read) per window, in order.

    Window k holds steps [start, end) and is read out for steps [first_step_read, end). Every step is read
    exactly once; each read step has at least `max_len − stride` earlier steps in its window, or all of them.
    """
    if m <= 0:
        return []
    if m <= max_len:
        return [(0, m, 0)]
    stride = max(1, min(int(stride), max_len))
    ends = list(range(max_len, m, stride))
    if ends[-1] != m:
        ends.append(m)
    plan, read_from = [], 0
    for end in ends:
        plan.append((end - max_len, end, read_from))
        read_from = end
    return plan


def encode_steps(
    model: RecModel | InterestModel,
    histories: Sequence[History],
    item_categories: torch.Tensor,
    stride: int | None = None,
    batch_size: int = 256,
    components: bool = True,
    friends: Callable[[Batch, np.ndarray], Batch] | None = None,
) -> list[StepOutputs]:
    """Per-step distributions and gates for each history (see the module docstring for long histories).

    Parameters
    ----------
    model
        The model behind the contract (`LoadedModel.scorer`), or our network itself, in eval mode.
    histories
        Histories in model indices (`Sequences.history` or `History.from_arrays`).
    item_categories
        [I+1, C] item→category weights (`Vocab.category_weights()`).
    stride
        Distance between the ends of consecutive windows of a long history; default `max_len // 2`.
    batch_size
        Windows per forward pass.
    components
        Also score the long-term and short-term interests (False: only the gated one, a third of the work, which
        is all that drift summaries need).
    friends
        For a model with the social branch: fills a window batch's friends' inputs, given each window's history
        number (module docstring); None reads every model without friends.
    """
    scorer = InterestScorer(model, [], model.config.max_len) if isinstance(model, InterestModel) else model
    if not supports(scorer, "states"):
        return [_assemble(h, k, [(d, np.full(len(k), np.nan))], empty)
                for h, (k, d, empty) in zip(histories, score_steps(scorer, histories, item_categories, batch_size), strict=True)]
    model = module_of(scorer)
    L = model.config.max_len
    stride = stride or max(1, L // 2)
    device = next(model.parameters()).device
    w_cat = item_categories.to(device).float()
    known = [np.flatnonzero(h.items > 0) for h in histories]
    windows: list[tuple[int, int, History, int]] = []  # (history, window number, window events, read from)
    for h_idx, (h, k) in enumerate(zip(histories, known, strict=True)):
        kh = History(h.items[k], h.gaps[k], h.event_types[k], h.context[k], h.ts[k])
        for n, (lo, hi, read) in enumerate(plan_windows(len(k), L, stride)):
            windows.append((h_idx, n, kh.slice(lo, hi), read - lo))
    windows.sort(key=lambda w: len(w[2]))  # similar lengths together: less padding
    n_ctx = histories[0].context.shape[1] if histories else 0
    pieces: dict[tuple[int, int], tuple[np.ndarray, ...]] = {}  # (history, window) -> 3 x [n_read, C], [n_read]
    with_head = getattr(model, "cat_head", None) is not None
    with torch.inference_mode():
        item_vectors = model.item_vectors()  # [I+1, D]
        for b0 in range(0, len(windows), batch_size):
            chunk = windows[b0 : b0 + batch_size]
            batch = make_batch([w[2] for w in chunk], L, n_context=n_ctx)
            if friends is not None and getattr(model, "social", None) is not None:
                batch = friends(batch, np.array([w[0] for w in chunk]))
            batch = batch.to(device)
            enc = model.encode(batch)
            T = batch.items.shape[1]
            # the read positions of every window in the chunk, gathered at once
            rows = np.concatenate([np.full(len(w[2]) - w[3], r) for r, w in enumerate(chunk)])
            cols = np.concatenate([np.arange(T - len(w[2]) + w[3], T) for w in chunk])
            r_t, c_t = torch.from_numpy(rows).to(device), torch.from_numpy(cols).to(device)
            g_t = enc.gate[r_t, c_t]
            if components:
                dists = _component_distributions(enc.long[r_t, c_t], enc.short[r_t, c_t], g_t, item_vectors, w_cat)
            else:
                dists = [_distributions(enc.states[r_t, c_t], item_vectors, w_cat)]
            if enc.social_share is not None:  # friends fused in: the gated series is what the model scores with
                dists[0] = _social_distributions(enc, batch, r_t, c_t, item_vectors, w_cat, copy_categories(model))
            if with_head:  # the category head reads the same gated state
                dists.append(model.category_forecast(enc.states[r_t, c_t]).double().cpu().numpy())
            gate = g_t.double().cpu().numpy()
            at = 0
            for h_idx, n, win, read in chunk:
                sl = slice(at, at + len(win) - read)
                pieces[h_idx, n] = (*(d[sl] for d in dists), gate[sl])
                at = sl.stop
        empty = _distributions(model.empty[None, :], item_vectors, w_cat)  # [1,C]
        empties = [empty[0]] * (3 if components else 1)
        if with_head:
            empties.append(model.category_forecast(model.empty[None, :]).double().cpu().numpy()[0])
    parts: dict[int, list[tuple[np.ndarray, ...]]] = {h: [] for h in range(len(histories))}
    for (h_idx, _), piece in sorted(pieces.items()):  # windows of a history in step order
        parts[h_idx].append(piece)
    return [_assemble(h, k, parts[i], empties, components, with_head)
            for i, (h, k) in enumerate(zip(histories, known, strict=True))]


def _assemble(h: History, known: np.ndarray, pieces: list[tuple[np.ndarray, ...]], empty: np.ndarray | list[np.ndarray],
              components: bool = False, with_head: bool = False) -> StepOutputs:
    """One history's outputs at every step from its windows' read-out pieces (known events only).

    A piece is (gated [, long, short] [, head], gate); `empty` is the empty state's row for each of those series
    (one array: the same for all). Step i reads the latest known event <= i, or the model's empty state before any.
    """
    n_d = (3 if components else 1) + int(with_head)
    empties = empty if isinstance(empty, list) else [empty] * n_d
    C = len(empties[0])
    dists = [np.concatenate([p[j] for p in pieces]) if pieces else np.zeros((0, C)) for j in range(n_d)]
    gates = np.concatenate([p[n_d] for p in pieces]) if pieces else np.zeros(0)
    last = np.maximum.accumulate(np.where(h.items > 0, np.arange(len(h)), -1)) if len(h) else np.zeros(0, int)
    src = np.searchsorted(known, last)  # row among the known events
    seen = last >= 0
    rows: list[np.ndarray | None] = []
    for d, e in zip(dists, empties, strict=True):
        r = np.tile(e, (len(h), 1))  # [n,C]
        r[seen] = d[src[seen]]
        rows.append(r)
    gate = np.full(len(h), np.nan)
    gate[seen] = gates[src[seen]]
    head = rows.pop() if with_head else None
    rows += [None] * (3 - len(rows))
    return StepOutputs(*rows, gate=gate, head=head)


def _distributions(states: torch.Tensor, item_vectors: torch.Tensor, w_cat: torch.Tensor) -> np.ndarray:
    """`category_distribution(model.score(states), w_cat)`, in chunks that bound the [N, I+1] logits. [N, C]"""
    step = max(1, _SCORE_CELLS // w_cat.shape[0])
    out = []
    for i in range(0, len(states), step):
        logits = states[i : i + step] @ item_vectors.t()  # [n,I+1], as InterestModel.score
        logits[:, 0] = float("-inf")
        out.append(category_distribution(logits, w_cat))
    return torch.cat(out).cpu().numpy() if out else np.zeros((0, w_cat.shape[1]))


def _social_distributions(enc: Encoding, batch: Batch, r: torch.Tensor, c: torch.Tensor, item_vectors: torch.Tensor,
                          w_cat: torch.Tensor, cats: torch.Tensor | None = None) -> np.ndarray:  # fmt: skip
    """The category distributions [N, C] of the fused states at (r, c), with the copy path's mixture when it has one
    (`InterestModel.scores` at each step; `cats`: the mixture within categories), in chunks like `_distributions`:
    the category marginal of the model's whole next-item distribution."""
    step = max(1, _SCORE_CELLS // w_cat.shape[0])
    out = []
    for i in range(0, len(r), step):
        ri, ci = r[i : i + step], c[i : i + step]
        logits = enc.states[ri, ci] @ item_vectors.t()  # [n,I+1]
        logits[:, 0] = float("-inf")
        if enc.social_copy is not None:
            logits = copy_log_probs(logits, enc.social_copy[ri, ci], enc.social_attention[ri, ci],
                                    batch.social.recent[ri, ci], cats)  # fmt: skip
        out.append(category_distribution(logits, w_cat))
    return torch.cat(out).cpu().numpy() if out else np.zeros((0, w_cat.shape[1]))


def _component_distributions(
    long: torch.Tensor, short: torch.Tensor, gate: torch.Tensor, item_vectors: torch.Tensor, w_cat: torch.Tensor
) -> list[np.ndarray]:
    """The distributions of the gated state, the long-term and the short-term interest. 3 x [N, C]

    The gated state is g·long + (1 − g)·short (`InterestModel._encode`) and scoring is linear, so its logits are
    the same mix of the two components' logits: two catalogue products instead of three.
    """
    step = max(1, _SCORE_CELLS // w_cat.shape[0])
    out: list[list[torch.Tensor]] = [[], [], []]
    for i in range(0, len(long), step):
        lg_long = long[i : i + step] @ item_vectors.t()  # [n,I+1]
        lg_short = short[i : i + step] @ item_vectors.t()
        g = gate[i : i + step, None].to(lg_long.dtype)
        lg_state = torch.lerp(lg_short, lg_long, g)  # g·long + (1 − g)·short
        for j, lg in enumerate((lg_state, lg_long, lg_short)):
            lg[:, 0] = float("-inf")
            out[j].append(category_distribution(lg, w_cat))
    C = w_cat.shape[1]
    return [torch.cat(o).cpu().numpy() if o else np.zeros((0, C)) for o in out]
