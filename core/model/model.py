"""The interest model: fused step embeddings, causal self-attention, and a gated long/short-term interest.

Shapes use the letters of core/model/batch.py: B batch, T steps, D hidden, I items (+1 padding), H heads,
C categories, K context columns.

Absent events (the rule explanations rely on): an event whose `mask` is False is attended by nothing (its key is
masked in every attention layer for every other position) and pooled by nothing (it is excluded from long-term
pooling). The readout for step t is taken at the last present position <= t; a history with no present event
reads out the learned `empty` state. Positions are counted over the window's real slots and are not renumbered when
an event is absent, and the time gap of the next event is unchanged, so masking an event is "this event is unseen"
rather than "this event never happened".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from core.model import repeat
from core.model.batch import FEATURE_GROUPS, Batch
from core.model.config import ModelConfig, ModelSizes

__all__ = ["Encoding", "InterestModel"]


@dataclass
class Encoding:
    """Per-step outputs of `InterestModel.encode`."""

    states: torch.Tensor  # [B,T,D] gated interest after each step
    long: torch.Tensor  # [B,T,D] long-term interest (attention pooling over the present history so far)
    short: torch.Tensor  # [B,T,D] short-term interest (the step's own hidden state)
    gate: torch.Tensor  # [B,T] weight of the long-term interest, in (0, 1)
    attention: list[torch.Tensor] | None = None  # per layer [B,H,T,T], rows = queries; explain path only
    social_share: torch.Tensor | None = None  # [B,T] share of each step's state from friends (social branch only)
    social_attention: torch.Tensor | None = None  # [B,T,K] attention over friends (social branch only)
    social_copy: torch.Tensor | None = None  # [B,T] copy share of friends' recent items (branch with copy path only)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        assert cfg.d_model % cfg.n_heads == 0, "d_model must be divisible by n_heads"
        self.n_heads = cfg.n_heads
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.dropout = cfg.dropout
        self.resid_drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor, return_attention: bool):
        B, T, D = x.shape
        q, k, v = self.qkv(x).split(D, dim=2)  # 3 x [B,T,D]
        q, k, v = (t.view(B, T, self.n_heads, D // self.n_heads).transpose(1, 2) for t in (q, k, v))  # [B,H,T,D/H]
        if return_attention:
            # Explain path: the same computation written out, so the weights can be returned.
            att = (q @ k.transpose(-2, -1)) / math.sqrt(k.size(-1))  # [B,H,T,T]
            att = att.masked_fill(~allowed, float("-inf")).softmax(dim=-1)
            weights = att
            att = F.dropout(att, self.dropout, self.training)
            y = att @ v  # [B,H,T,D/H]
        else:
            weights = None
            y = F.scaled_dot_product_attention(
                q, k, v, attn_mask=allowed, dropout_p=self.dropout if self.training else 0.0
            )  # [B,H,T,D/H]
        y = y.transpose(1, 2).contiguous().view(B, T, D)  # [B,T,D]
        return self.resid_drop(self.proj(y)), weights


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.attn = CausalSelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.d_model, 4 * cfg.d_model),
            nn.GELU(),
            nn.Linear(4 * cfg.d_model, cfg.d_model),
            nn.Dropout(cfg.dropout),
        )

    def forward(self, x: torch.Tensor, allowed: torch.Tensor, return_attention: bool):
        a, w = self.attn(self.ln1(x), allowed, return_attention)
        x = x + a
        x = x + self.mlp(self.ln2(x))
        return x, w


class InterestModel(nn.Module):
    """Sequential interest model; see the module docstring for the masking rule."""

    def __init__(self, config: ModelConfig, sizes: ModelSizes, item_category_weights: torch.Tensor | None = None):
        super().__init__()
        cfg = self.config = config
        self.sizes = sizes
        D = cfg.d_model
        self.item_emb = nn.Embedding(sizes.n_items + 1, D, padding_idx=0)
        self.pos_emb = nn.Embedding(cfg.max_len, D)
        self.gap_emb = nn.Embedding(cfg.n_gap_buckets, D) if cfg.use_time_gaps else None
        self.type_emb = nn.Embedding(sizes.n_event_types + 1, D) if cfg.use_event_types else None
        use_cats = cfg.use_categories and sizes.n_categories > 0
        with_head = cfg.category_loss > 0 and sizes.n_categories > 0  # the category head (see below)
        self.cat_emb = nn.Parameter(torch.zeros(sizes.n_categories, D)) if use_cats else None
        self.cat_unknown = nn.Parameter(torch.zeros(D)) if use_cats else None
        if use_cats or with_head:
            w = item_category_weights
            if w is None or tuple(w.shape) != (sizes.n_items + 1, sizes.n_categories):
                raise ValueError("item_category_weights must have shape [n_items + 1, n_categories]")
            self.register_buffer("item_cats", w.float().clone())  # [I,C], rows sum to 1 (0 for no category)
        else:
            self.register_buffer("item_cats", torch.zeros(0))
        self.ctx_emb = nn.ModuleList(
            nn.Embedding(n + 1, D) for n in (sizes.context_sizes if cfg.use_context else ())
        )
        if cfg.text_dim:
            self.register_buffer("item_text", torch.zeros(sizes.n_items + 1, cfg.text_dim))  # frozen text vectors
            self.text_proj = nn.Linear(cfg.text_dim, D, bias=False)
        else:
            self.text_proj = None
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_f = nn.LayerNorm(D)
        self.pool_key = nn.Linear(D, D)
        self.pool_query = nn.Parameter(torch.zeros(D))
        self.gate = nn.Linear(2 * D, 1)
        self.empty = nn.Parameter(torch.zeros(D))
        # (w_seen, w_last) of the repeat term (core.model.repeat), zero at the start: scores begin as without it
        self.repeat = nn.Parameter(torch.zeros(2)) if cfg.repeat_term else None
        # The social branch (core.social.SocialBranch) is attached after construction when a model is trained
        # with friends; without it the model is exactly the model without a social modality.
        self.social: nn.Module | None = None
        self.apply(self._init_weights)
        nn.init.normal_(self.pool_query, std=0.02)
        if self.cat_emb is not None:
            nn.init.normal_(self.cat_emb, std=0.02)
        # The category head: logits over C categories from a step's (gated) state, trained on the next event's
        # category split beside the next-item loss; what the calibrated interest forecast can read instead of the
        # item-softmax marginal, which next-item training leaves too flat. Built and drawn last, so every other
        # weight starts as it does without the head (same seed, same start).
        self.cat_head: nn.Linear | None = None
        if with_head:
            self.cat_head = nn.utils.skip_init(nn.Linear, D, sizes.n_categories)
            nn.init.normal_(self.cat_head.weight, std=0.02)
            nn.init.zeros_(self.cat_head.bias)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)
            if module.padding_idx is not None:
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()

    # ----------------------------------------------------------------------------------------------
    def item_vectors(self) -> torch.Tensor:
        """Item representations used both as step inputs and as output scorers. [I,D]

        With text, an item is its own embedding plus the projection of its frozen text vector. In training, each
        item's own embedding is dropped with probability `text_id_dropout` (per call), so text alone learns to
        stand for an item: that is all a new item, one with no training events, has.
        """
        w = self.item_emb.weight
        if self.text_proj is not None:
            p = self.config.text_id_dropout
            if self.training and p > 0:
                keep = (torch.rand(w.shape[0], 1, device=w.device) >= p).to(w.dtype)  # [I,1]
                w = w * keep
            w = w + self.text_proj(self.item_text)
        return w

    def embed(self, batch: Batch) -> torch.Tensor:
        """Fuse every feature of every step into one vector. [B,T,D]"""
        cfg = self.config
        items = batch.items  # [B,T]
        B, T = items.shape
        present = {g: None for g in FEATURE_GROUPS}
        if batch.group_present is not None:
            present = {g: batch.group_present[:, i].view(B, 1) for i, g in enumerate(FEATURE_GROUPS)}  # [B,1]
        real = items > 0  # [B,T]
        x = self.item_vectors()[items] * math.sqrt(cfg.d_model)  # [B,T,D]
        pos = (real.long().cumsum(1) - 1).clamp(min=0)  # [B,T] slot index from the window's first event
        x = x + self.pos_emb(pos)
        if self.gap_emb is not None:
            gaps = batch.gaps if present["time_gap"] is None else batch.gaps * present["time_gap"]
            x = x + self.gap_emb(gaps)
        if self.type_emb is not None:
            et = batch.event_types if present["event_type"] is None else batch.event_types * present["event_type"]
            x = x + self.type_emb(et)
        if self.cat_emb is not None:
            cats = self.item_cats[items] @ self.cat_emb  # [B,T,D]
            if present["category"] is not None:
                keep = present["category"].unsqueeze(-1).float()  # [B,1,1]
                cats = keep * cats + (1 - keep) * self.cat_unknown
            x = x + cats
        for k, emb in enumerate(self.ctx_emb):
            ctx = batch.context[:, :, k]  # [B,T]
            if present["context"] is not None:
                ctx = ctx * present["context"]
            x = x + emb(ctx)
        return self.drop(x * real.unsqueeze(-1))

    def encode(self, batch: Batch, return_attention: bool = False) -> Encoding:
        """Encode histories into per-step interests.

        Step t's state depends only on present events at positions <= t (causality and the masking rule).
        """
        mask = batch.mask & (batch.items > 0)  # [B,T]
        allowed = self._allowed(mask)
        enc = self._encode(self.embed(batch), allowed, return_attention)
        if self.social is not None and batch.social is not None:
            present_items = batch.items * mask  # the copy path's overlap cue reads the user's present items
            enc.states, enc.social_share, enc.social_attention, enc.social_copy = self.social(enc.states, batch.social,
                                                                                             present_items)
        return enc

    def encode_embedded(self, x: torch.Tensor, mask: torch.Tensor, return_attention: bool = False) -> Encoding:
        """`encode` from step embeddings x [B,T,D] (`embed`) and the present events mask [B,T] (padding False).

        An event's embedding does not depend on which other events are present, so callers that evaluate many
        subsets of one history (explanations) embed it once and pass the present events' rows here, keeping
        their positions (`embed` counts them over the whole window); absent events need no slot at all.
        """
        return self._encode(x, self._allowed(mask), return_attention)

    @staticmethod
    def _allowed(mask: torch.Tensor) -> torch.Tensor:
        """[B,T,T] which keys each query may attend (see `encode`)."""
        T = mask.shape[1]
        causal = torch.ones(T, T, dtype=torch.bool, device=mask.device).tril()  # [T,T]
        eye = torch.eye(T, dtype=torch.bool, device=mask.device)
        # Query i may attend key j when j <= i and j is present; every query also sees itself so no row is empty
        # (an absent query's own state is never read out, see `readout`).
        return (causal & mask[:, None, :]) | eye  # [B,T,T]

    def _encode(self, x: torch.Tensor, allowed: torch.Tensor, return_attention: bool) -> Encoding:
        B, T, _ = x.shape
        weights = []
        for block in self.blocks:
            x, w = block(x, allowed[:, None], return_attention)
            weights.append(w)
        h = self.ln_f(x)  # [B,T,D]
        # Long-term interest: attention pooling with one learned query over present states j <= t.
        a = (torch.tanh(self.pool_key(h)) @ self.pool_query) / math.sqrt(h.size(-1))  # [B,T]
        pool = a[:, None, :].expand(B, T, T).masked_fill(~allowed, float("-inf")).softmax(-1)  # [B,T,T]
        long = pool @ h  # [B,T,D]
        g = torch.sigmoid(self.gate(torch.cat([long, h], dim=-1))).squeeze(-1)  # [B,T]
        states = g.unsqueeze(-1) * long + (1 - g.unsqueeze(-1)) * h  # [B,T,D]
        return Encoding(states=states, long=long, short=h, gate=g, attention=weights if return_attention else None)

    def readout_index(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """For every step t: the last present position <= t, and whether one exists. ([B,T] long, [B,T] bool)"""
        mask = batch.mask & (batch.items > 0)
        T = mask.shape[1]
        ar = torch.arange(T, device=mask.device).expand_as(mask)
        idx = torch.where(mask, ar, torch.full_like(ar, -1)).cummax(dim=1).values  # [B,T]
        return idx.clamp(min=0), idx >= 0

    def readout(self, enc: Encoding, batch: Batch, per_step: bool = False, which: str = "states") -> torch.Tensor:
        """The interest after the last present event: [B,D], or for every step [B,T,D] with `per_step`.

        `which` picks states (gated), long or short. Rows with no present event get the learned empty state.
        """
        src = getattr(enc, which)  # [B,T,D]
        idx, has = self.readout_index(batch)  # [B,T]
        out = src.gather(1, idx.unsqueeze(-1).expand_as(src))  # [B,T,D]
        out = torch.where(has.unsqueeze(-1), out, self.empty.expand_as(out))
        return out if per_step else out[:, -1]

    def score(self, states: torch.Tensor) -> torch.Tensor:
        """Logits over the catalogue: [..., D] -> [..., I+1], padding index 0 set to -inf."""
        logits = states @ self.item_vectors().t()
        logits[..., 0] = float("-inf")
        return logits

    def forward(self, batch: Batch) -> torch.Tensor:
        """Scores after the last present event of each history, with the repeat term if the model has one. [B,I+1]"""
        return self.scores(self.encode(batch), batch)

    def scores(self, enc: Encoding, batch: Batch) -> torch.Tensor:
        """Scores [B,I+1] after the last present event: the logits plus the repeat term, or with the social copy path
        the log of the mixture with friends' recent items (`core.model.social.copy_log_probs`; same scores where
        g = 0)."""
        logits = self.with_repeat(self.score(self.readout(enc, batch)), batch)
        if enc.social_copy is None:
            return logits
        from core.model.social import copy_categories, copy_log_probs

        idx, has = self.readout_index(batch)
        r, i = torch.arange(len(idx), device=idx.device), idx[:, -1]
        g = enc.social_copy[r, i] * has[:, -1]
        return copy_log_probs(logits, g, enc.social_attention[r, i], batch.social.recent[r, i], copy_categories(self))

    def repeat_offsets(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Per step, the window's items and their repeat offsets ([B,T,T] each, `repeat.history_offsets`), or None
        for a model without the term."""
        if self.repeat is None:
            return None
        present = batch.mask & (batch.items > 0)
        return repeat.history_offsets(batch.items, present, self.readout_index(batch)[0], self.repeat)

    def with_repeat(self, scores: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Scores [B,I+1] after each row's last step (`score(readout(...))`) plus the repeat term; unchanged (the
        same tensor) for a model without it."""
        ro = self.repeat_offsets(batch)
        return scores if ro is None else repeat.add_last(scores, *ro)

    def category_forecast(self, states: torch.Tensor) -> torch.Tensor | None:
        """The category head's forecast of the next event's category: [..., D] -> [..., C] (rows sum to one), or
        None for a model trained without the head (`ModelConfig.category_loss` 0 or no categories)."""
        if self.cat_head is None:
            return None
        return self.cat_head(states).float().softmax(-1)

    def _category_loss(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Cross-entropy −Σ_c w(y, c) log softmax(head(h))_c over the targets whose item has a category (a
        multi-category item's mass split equally, `Vocab.category_weights`); 0 when none has. h [N,D], y [N]."""
        split = self.item_cats[y]  # [N,C]
        has = split.sum(-1) > 0
        if not bool(has.any()):
            return h.sum() * 0.0
        logp = self.cat_head(h[has]).float().log_softmax(-1)  # [N',C]
        return -(split[has] * logp).sum(-1).mean()

    def loss(self, batch: Batch, targets: torch.Tensor, n_negatives: int | None = None) -> torch.Tensor:
        """Next-item cross-entropy at every step with a target (targets [B,T], 0 = no target), plus the first
        present event of each row predicted from the learned empty-history state.

        Full softmax over the catalogue by default; with `n_negatives`, a sampled softmax against that many
        uniformly drawn items shared across the batch (accidental hits masked), for large catalogues.
        """
        enc = self.encode(batch)
        states = enc.states  # [B,T,D]
        sel = targets > 0
        h = states[sel]  # [N,D]
        y = targets[sel]  # [N]
        ro = self.repeat_offsets(batch)
        if ro is not None:  # each target step's history items and offsets; the empty-history rows get none
            n_empty = int((batch.mask & (batch.items > 0)).any(1).sum())
            pad = torch.zeros(n_empty, ro[0].shape[-1], dtype=ro[0].dtype, device=h.device)
            ro = (torch.cat([ro[0][sel], pad]), torch.cat([ro[1][sel], pad.float()]))  # [N+B',T] each
        # The empty-history state learns to predict each window's first event, so "no history" reads as a
        # popularity prior (the base value of explanations) rather than an untrained vector.
        present = batch.mask & (batch.items > 0)  # [B,T]
        has = present.any(1)  # [B]
        first = batch.items.gather(1, present.float().argmax(1, keepdim=True)).squeeze(1)[has]  # [B']
        h = torch.cat([h, self.empty.to(h.dtype).expand(len(first), -1)])  # [N+B',D]
        y = torch.cat([y, first])  # [N+B']
        if h.numel() == 0:
            return states.sum() * 0.0
        # the category head's auxiliary loss on the same targets (0 when the model has no head)
        aux = self.config.category_loss * self._category_loss(h, y) if self.cat_head is not None else 0.0
        items = self.item_vectors()  # [I,D]
        if enc.social_copy is not None:
            from core.model.social import copy_loss

            return copy_loss(self, enc, batch, sel, h, y, items, n_negatives, ro) + aux
        full = n_negatives is None or n_negatives >= self.sizes.n_items
        logits = self._target_logits(h, y, items, None if full else n_negatives, ro)
        if not full:
            return F.cross_entropy(logits.float(), torch.zeros_like(y)) + aux
        if self.config.label_smoothing > 0:
            # smoothing over the real items only: the padding column's -inf must not receive target mass
            ls = self.config.label_smoothing
            return F.cross_entropy(logits[:, 1:].float(), y - 1, label_smoothing=ls) + aux
        return F.cross_entropy(logits.float(), y) + aux

    def _target_logits(self, h: torch.Tensor, y: torch.Tensor, items: torch.Tensor, n_negatives: int | None,
                       ro: tuple[torch.Tensor, torch.Tensor] | None, drawn: list | None = None) -> torch.Tensor:  # fmt: skip
        """The logits both losses read, with the repeat term (`ro`, rows as `h`) when the model has one: over the
        whole catalogue [N,I+1] (column 0 -inf) when `n_negatives` is None, else the target's logit then those of
        `n_negatives` uniformly drawn items shared across the rows [N,1+S] (accidental hits masked); the drawn
        items [S] are appended to `drawn` when given (the copy path within categories reads their categories)."""
        if n_negatives is None:
            logits = h @ items.t()  # [N,I+1]
            logits[:, 0] = float("-inf")
            return logits if ro is None else repeat.add_full(logits, *ro)
        neg = torch.randint(1, self.sizes.n_items + 1, (n_negatives,), device=h.device)  # [S]
        if ro is not None:
            neg = neg.sort().values  # the copies of a twice-drawn item adjacent (the loss ignores the order)
        if drawn is not None:
            drawn.append(neg)
        pos_logit = (h * items[y]).sum(-1, keepdim=True)  # [N,1]
        neg_logit = h @ items[neg].t()  # [N,S]
        neg_logit = neg_logit.masked_fill(neg[None, :] == y[:, None], float("-inf"))
        if ro is not None:
            pos_logit, neg_logit = repeat.add_sampled(pos_logit, neg_logit, y, neg, *ro)
        return torch.cat([pos_logit, neg_logit], dim=1)  # [N,1+S]
