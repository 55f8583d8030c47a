"""Defaults that adapt to the log: the one documented rule `interestlens train` applies before training.

The rule reads only the training part of the log (the split's validation and test targets never count) and sets
six things; every other setting keeps its `ModelConfig` / `TrainConfig` default. A flag given on the command
line always wins over the rule.

- **History window** (`max_len`): the smallest multiple of 10 that covers 95 % of users' training histories,
  between 20 and 50. Short-history logs (Amazon sequences, ~9 events a user) get a short window, which costs less
  and loses nothing; long histories keep 50, the window the peers (RecBole SASRec / GRU4Rec) are given too.
- **Dropout**: 0.1 when the log has fewer than 20 training events per item (sparse catalogues such as Amazon's),
  else 0.2 (dense logs such as MovieLens). Chosen on validation NDCG@10 only (docs/accuracy.md): on Amazon Toys
  0.1 > 0.2 > 0.5 (best exclude_seen 0.0597 / 0.0573 within 8 epochs, 0.0467 in 22), on MovieLens-100k 0.2 > 0.1
  (0.1215 / 0.1197, each to early stopping). With a
  full-softmax loss the few events of a rare item are the only signal its embedding gets, and the next item
  depends mostly on the last one (a first-order Markov chain is a strong baseline there), so heavy dropout on the
  inputs mostly removes that signal. The SASRec paper's 0.5 on Amazon was tuned for its sampled binary loss.
- **Depth** (`n_layers`): one self-attention block on every log, not `ModelConfig`'s two. Chosen on validation
  NDCG@10 only (docs/accuracy.md, seed 0, `exclude_seen`): Amazon Toys 0.0629 with one block vs 0.0597 with two
  (best of 8 epochs, dropout 0.1), MovieLens-100k 0.1317 vs 0.1215 (early stopping at 73 vs 37 epochs, dropout
  0.2). Where the next item depends mostly on the recent ones, a second block adds parameters the log cannot fit
  and slows learning (one block is ahead at every Toys epoch).
- **Learning-rate decay** (`lr_decay`): 0.5 when at least 2,000 users validate, else 1 (constant, as before): the
  rate is halved after every epoch that does not improve validation NDCG@10. Chosen on validation only
  (docs/accuracy.md): on Toys (19,412 validation users, one block) validation fell after epoch 6 at a constant
  rate (0.0629, 0.0593, 0.0602); halved after epoch 7 it reached 0.0681 at epoch 8. On ML-100k (943 users) the
  noisy validation misses by chance early, the halvings freeze training (best 0.1102 vs 0.1317 constant), so a
  small validation set keeps the constant rate, as it gets the longer patience.
- **Repeat term** (`repeat_term`): on for every log (core.model.repeat: a learned logit offset for the items
  already in the history window, one for "seen", one for "the last event"). It learns its own sign, so one rule
  serves logs with and without re-consumption. Chosen on validation NDCG@10 only (docs/accuracy.md, seed 0): on
  Amazon Toys (6 epochs) `all_items` 0.0623 vs 0.0466 and `exclude_seen` 0.0624 vs 0.0629; on MovieLens-100k
  (40 epochs) `all_items` 0.1182 vs 0.0643 and `exclude_seen` 0.1345 vs 0.1304. On Toys it learns -5.7 / -6.1
  (a seen item / the last one): without it the tied item vectors ranked the user's own last item first for
  46.9 % of Toys users. Its cost: at 12 epochs Toys `exclude_seen` validation is 0.0677 with it vs 0.0714
  without (test 0.0515 vs 0.0550), while `all_items` rises to 0.0514 from 0.0401 (docs/accuracy.md).
- **Patience**: 20 epochs when fewer than 2,000 users validate (a validation NDCG@10 from a few hundred users
  moves by more than the improvements it should detect), else 10.

Width stays 64 for every catalogue: no log here gave evidence for another width (docs/accuracy.md).
The rule is in `adapt_defaults`; `DataProfile` holds the figures it reads and goes to the model card.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import numpy as np

from core.model import ModelConfig
from core.sequences import Sequences
from core.train.config import TrainConfig

__all__ = ["DataProfile", "profile", "adapt_defaults", "defaults_for_db", "SPARSE_EVENTS_PER_ITEM", "LAYERS",
           "LR_DECAY", "REPEAT_TERM", "SMALL_VALIDATION"]

SPARSE_EVENTS_PER_ITEM = 20.0  # below this many training events per item, dropout 0.1 instead of 0.2
LAYERS = 1  # self-attention blocks on every log (ModelConfig's 2 stays reachable by naming n_layers in `explicit`)
REPEAT_TERM = True  # the learned repeat offset on every log (ModelConfig's False stays reachable via `explicit`)
LR_DECAY = 0.5  # lr factor per non-improving epoch when >= SMALL_VALIDATION users validate (else 1 = constant)
SMALL_VALIDATION = 2_000  # below this many validation users, patience 20 instead of 10
WINDOW_COVER = 0.95  # share of training histories the window must cover
WINDOW_MIN, WINDOW_MAX = 20, 50


@dataclass(frozen=True)
class DataProfile:
    """The figures of a log that the defaults rule reads (training events only)."""

    users: int  # users with at least one training event
    items: int  # catalogue size the model scores
    train_events: int  # events before each user's validation target
    history_p95: int  # 95th percentile of users' training-history lengths
    events_per_item: float  # train_events / items
    valid_users: int  # users with a validation target

    def to_dict(self) -> dict:
        return asdict(self)


def profile(seqs: Sequences, train_end: np.ndarray, valid_users: int, n_items: int) -> DataProfile:
    """Profile of `seqs` given each user's training end (absolute event index, as `Split.train_end`)."""
    lens = np.maximum(0, np.asarray(train_end, np.int64) - seqs.offsets[:-1])  # [U] training history lengths
    train_events = int(lens.sum())
    p95 = int(np.ceil(np.quantile(lens[lens > 0], WINDOW_COVER))) if (lens > 0).any() else 0
    return DataProfile(int((lens > 0).sum()), int(n_items), train_events, p95,
                       train_events / max(1, n_items), int(valid_users))


def adapt_defaults(p: DataProfile, model: ModelConfig | None = None, train: TrainConfig | None = None,
                   explicit: frozenset[str] = frozenset()) -> tuple[ModelConfig, TrainConfig]:
    """Apply the rule (module docstring) to the defaults; fields named in `explicit` keep their given value."""
    model = model or ModelConfig()
    train = train or TrainConfig()
    m: dict = {}
    t: dict = {}
    if "max_len" not in explicit:
        m["max_len"] = int(min(WINDOW_MAX, max(WINDOW_MIN, 10 * math.ceil(p.history_p95 / 10))))
    if "dropout" not in explicit:
        m["dropout"] = 0.1 if p.events_per_item < SPARSE_EVENTS_PER_ITEM else 0.2
    if "n_layers" not in explicit:
        m["n_layers"] = LAYERS
    if "repeat_term" not in explicit:
        m["repeat_term"] = REPEAT_TERM
    if "lr_decay" not in explicit:
        t["lr_decay"] = LR_DECAY if p.valid_users >= SMALL_VALIDATION else 1.0
    if "patience" not in explicit:
        t["patience"] = 20 if p.valid_users < SMALL_VALIDATION else 10
    return replace(model, **m), replace(train, **t)


def defaults_for_db(db, model: ModelConfig | None = None, train: TrainConfig | None = None,
                    explicit: frozenset[str] = frozenset()) -> tuple[ModelConfig, TrainConfig, DataProfile]:
    """`adapt_defaults` for the log in `db` under `train`'s split (the configs `interestlens train` then uses)."""
    from core.evaluate import make_split
    from core.sequences import build_vocab, load_sequences
    from core.store import connect_read

    train = train or TrainConfig()
    with connect_read(db) as con:
        vocab = build_vocab(con)
        seqs = load_sequences(con, vocab)
    split = make_split(seqs, train.split, train.valid_share, train.test_share)
    p = profile(seqs, split.train_end, len(split.targets("valid")[0]), vocab.n_items)
    m, t = adapt_defaults(p, model, train, explicit)
    return m, t, p
