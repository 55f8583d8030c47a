"""The repeat term: a learned logit offset for the items a history already holds (`ModelConfig.repeat_term`).

With tied input/output item vectors the state after an event scores that very event (and the events just before
it) high. On logs where users rarely take an item twice (ratings, one-off purchases) that puts the user's own last
item at the top of an unmasked ranking; on logs where they do (listening, groceries) it is the right prior. The term
lets the model learn which: for the state after step t, every item among the present events at positions <= t gets

    offset(item) = w_seen + w_last * [item is the event read out at t (the last present one)]

with w = (w_seen, w_last) two learned scalars starting at 0 (so a fresh model scores exactly as without the term).
**Duplicates count once**: an item present three times in the window gets w_seen once, i.e. the term reads "seen
within the window", not "how often". Only the model's window (the latest `max_len` events) counts, and an absent
event (mask False) counts for nothing, as everywhere else in the model. The offset is strictly causal: position t
never sees an item first taken at a later position.

It is added by scatters over the B x T x T history indices, never by a dense B x T x I mask: the full-softmax
logits get `scatter_add_` along the catalogue axis, the sampled-softmax logits look the history items up among the
(sorted) sampled negatives.

Shapes: B histories, T steps, N selected (step) rows, S sampled negatives, I items (+1 padding column 0).
"""

from __future__ import annotations

import torch

__all__ = ["history_offsets", "add_full", "add_sampled", "add_last"]


def history_offsets(items: torch.Tensor, present: torch.Tensor, last: torch.Tensor, weights: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per step, the history items and their offsets. ([B,T,T] long item ids, [B,T,T] float offsets)

    Parameters
    ----------
    items, present
        [B,T] the window's items and which of them are present events (padding and absent events False).
    last
        [B,T] long: the position read out at each step (`InterestModel.readout_index`), i.e. the last present
        position <= t (unused where no event is present up to t: such a step has no history items at all).
    weights
        [2] (w_seen, w_last).

    Row [b, t, j] is item items[b, j] with offset w_seen (+ w_last when j is the position read out at t) when j <= t,
    event j is present and it is the item's first present occurrence in the window; otherwise item 0 (padding) with
    offset 0. Each item therefore appears at most once per step row (duplicates count once).
    """
    B, T = items.shape
    dev = items.device
    earlier = torch.ones(T, T, dtype=torch.bool, device=dev).tril(-1)  # [j, j'] j' < j
    same = items[:, :, None] == items[:, None, :]  # [B,T,T] items[j] == items[j']
    repeated = (same & present[:, None, :] & earlier).any(-1)  # [B,T] j repeats an earlier present event
    first = present & ~repeated  # [B,T] the first present occurrence of each item
    causal = torch.ones(T, T, dtype=torch.bool, device=dev).tril()  # [t, j] j <= t
    # the item read out at t (a repeat of an earlier item reads out that item too)
    last_item = items.gather(1, last)  # [B,T]
    is_last = items[:, None, :] == last_item[:, :, None]  # [B,T,T] items[j] is the item read out at t
    keep = causal[None] & first[:, None, :]  # [B,T,T]
    w = weights.to(torch.float32)
    off = w[0] + w[1] * is_last.float()  # [B,T,T]
    idx = torch.where(keep, items[:, None, :].expand(B, T, T), torch.zeros((), dtype=items.dtype, device=dev))
    return idx, torch.where(keep, off, torch.zeros((), device=dev))


def add_full(logits: torch.Tensor, idx: torch.Tensor, off: torch.Tensor) -> torch.Tensor:
    """Full-catalogue logits [N,I+1] plus each row's offsets (idx, off [N,T]); column 0 stays -inf. New tensor."""
    out = logits.float().scatter_add(1, idx, off)
    out[:, 0] = float("-inf")
    return out


def add_last(logits: torch.Tensor, idx: torch.Tensor, off: torch.Tensor) -> torch.Tensor:
    """`add_full` for scores after each row's last step: logits [B,I+1], idx/off [B,T,T] (their row T-1)."""
    return add_full(logits, idx[:, -1], off[:, -1]).to(logits.dtype)


def add_sampled(pos_logit: torch.Tensor, neg_logit: torch.Tensor, y: torch.Tensor, neg: torch.Tensor,
                idx: torch.Tensor, off: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sampled-softmax logits plus offsets: pos [N,1] for targets y [N], neg [N,S] for the shared negatives [S].

    `neg` must be sorted (the loss does not depend on the negatives' order), so the copies of a negative drawn
    more than once are adjacent; each copy gets the offset. idx/off [N,T] as in `add_full`.
    """
    pos = pos_logit.float() + (off * (idx == y[:, None]) * (idx > 0)).sum(-1, keepdim=True)  # [N,1]
    lo = torch.searchsorted(neg, idx, right=False)  # [N,T] first copy of each history item among the negatives
    hi = torch.searchsorted(neg, idx, right=True)  # [N,T] one past its last copy
    count = (hi - lo) * (idx > 0)  # [N,T] copies drawn (padding never counts)
    out = neg_logit.float()
    for k in range(int(count.max()) if count.numel() else 0):  # at most the largest number of copies of one item
        hit = count > k  # [N,T]
        col = torch.where(hit, lo + k, torch.zeros_like(lo)).clamp(max=neg.numel() - 1)
        out = out.scatter_add(1, col, torch.where(hit, off, torch.zeros_like(off)))
    return pos, out
