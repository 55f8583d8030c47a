"""RecBole's evaluation protocol for sequential models, so a figure can be set beside RecBole's own
(`interestlens evaluate --recbole`; docs/accuracy.md, "RecBole's protocol").

What RecBole 1.2.1 does for a sequential model with `eval_args = {split: {LS: valid_and_test}, order: TO, mode:
full}` (its `SequentialDataset` and `FullSortEvalDataLoader`), and what this module does the same way:

- **Order.** Events sorted by time with a stable sort, so events at the same time keep the order of the source
  file. The store's canonical order (`ORDER BY ts, run_id, seq`) is the same for a log ingested from one file.
- **Samples.** Every event after a user's first is one sample: the target, with the user's earlier events as
  input (the latest `MAX_ITEM_LIST_LENGTH`).
- **Split.** Per user, the last sample is the test sample and the one before it the validation sample, but RecBole
  keeps at least one sample for training: a user with `n` events has `n - 1` samples, so a test target only when
  `n >= 3` and a validation target only when `n >= 4`. (InterestLens's `loo` gives a test target from `n >= 2` and a
  validation target from `n >= 3`; the targets themselves are the same events.)
- **Ranking.** The whole catalogue; only the padding column is masked. Items the user already had are *not*
  removed, because the data loader builds no history index for sequential models.
- **Metrics.** `hit@K`, `ndcg@K` (one relevant item: 1/log2(rank + 1) within K) and `mrr@K` (1/rank within K, else
  0: RecBole's MRR is cut at K, unlike InterestLens's `MRR`), averaged over test samples.
- **Baselines.** Most popular and Markov (`core.evaluate.baselines`) ranked the same way, fitted on this split's
  training events (a user with 2 events gives both), so their figures sit beside the model's under one protocol.

One difference remains and is documented rather than copied: RecBole takes the top K with `torch.topk`, which
orders tied scores in no specified way; here a tie counts against the target (pessimistic, as every InterestLens
rank: ../shared/METRICS.md §1). A model with continuous scores has no ties, so the figures agree; a model that
scores many items alike (most popular, Markov) can only lose here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from core.evaluate.baselines import markov_scorer, most_popular_scorer
from core.evaluate.ranking import Scorer, rank_targets
from core.evaluate.split import Split, _trained_until
from core.model import Batch
from core.sequences import Sequences

__all__ = ["RECBOLE_KS", "RecBoleResult", "recbole_split", "recbole_metrics", "evaluate_recbole", "recbole_baselines"]

RECBOLE_KS: tuple[int, ...] = (5, 10, 20)  # cut-offs reported (RecBole's `topk`)
PROTOCOL_TEXT = ("RecBole 1.2.1 sequential full sort: leave-one-out by time (LS valid_and_test, order TO, a test "
                 "target from 3 events), every item ranked, nothing masked but padding, ties pessimistic")


@dataclass(frozen=True)
class RecBoleResult:
    """A model's test metrics under RecBole's sequential protocol."""

    metrics: dict[str, float]  # hit@K, ndcg@K, mrr@K for K in RECBOLE_KS (RecBole's lower-case keys)
    users: int  # test samples ranked (users with at least 3 events whose target the model knows)
    ranks: np.ndarray  # [users] 1-based rank of each test target (ties pessimistic)
    baselines: dict[str, RecBoleResult] = field(default_factory=dict)  # "most_popular", "markov" under this protocol

    def to_dict(self) -> dict:
        """JSON section `recbole`: the metric keys, `users`, `protocol` (one sentence) and, when ranked,
        `baselines` ({"most_popular": {metric keys}, "markov": {...}}, the shape of `evaluate`'s `baselines`)."""
        out: dict = {**self.metrics, "users": self.users, "protocol": PROTOCOL_TEXT}
        if self.baselines:
            out["baselines"] = {name: dict(b.metrics) for name, b in self.baselines.items()}
        return out


def recbole_split(seqs: Sequences) -> Split:
    """RecBole's leave-one-out over the canonical order: test = last event (users with >= 3 events), validation =
    second-last (>= 4 events), training = the rest (a user with 2 events trains on both and is never tested).

    Returns a `Split` with kind "loo" whose `test` [U] and `valid` [U] are absolute event indices or -1.
    """
    starts, ends = seqs.offsets[:-1], seqs.offsets[1:]
    n = ends - starts
    test = np.where(n >= 3, ends - 1, -1)
    valid = np.where(n >= 4, ends - 2, -1)
    train_end = np.where(n >= 4, ends - 2, np.where(n == 3, ends - 1, ends))
    return Split("loo", train_end, valid, test, _trained_until(seqs, train_end))


def recbole_metrics(ranks: np.ndarray, ks: tuple[int, ...] = RECBOLE_KS) -> dict[str, float]:
    """RecBole's metrics from 1-based target ranks [N]: hit@K, ndcg@K and mrr@K (reciprocal rank cut at K).

    All 0.0 when there are no ranks.
    """
    r = np.asarray(ranks, np.float64)
    out: dict[str, float] = {}
    for k in ks:
        inside = r <= k
        out[f"hit@{k}"] = float(inside.mean()) if r.size else 0.0
        out[f"ndcg@{k}"] = float(np.where(inside, 1.0 / np.log2(r + 1.0), 0.0).mean()) if r.size else 0.0
        out[f"mrr@{k}"] = float(np.where(inside, 1.0 / r, 0.0).mean()) if r.size else 0.0
    return out


def _ranked(scorer: Scorer, seqs: Sequences, split: Split, max_len: int, ks: tuple[int, ...], prepare=None
            ) -> RecBoleResult:
    rows, targets = split.targets("test")
    ranked = rank_targets(scorer, seqs, rows, targets, max_len, k=max(ks), protocol="all_items", prepare=prepare)
    return RecBoleResult(recbole_metrics(ranked.ranks, ks), len(ranked.ranks), ranked.ranks)


def recbole_baselines(
    seqs: Sequences, n_items: int, max_len: int, ks: tuple[int, ...] = RECBOLE_KS,
) -> dict[str, RecBoleResult]:
    """Most popular and Markov under RecBole's protocol: {"most_popular": ..., "markov": ...}.

    Both are fitted on the training events of `recbole_split` (not InterestLens's `loo`: a user with 2 events
    trains on both) and ranked on its test targets exactly as the model is, so the users are the model's.
    `n_items` is the size I of the catalogue the sequences are mapped to.
    """
    split = recbole_split(seqs)
    return {"most_popular": _ranked(most_popular_scorer(seqs, split, n_items), seqs, split, max_len, ks),
            "markov": _ranked(markov_scorer(seqs, split, n_items), seqs, split, max_len, ks)}


def evaluate_recbole(
    scorer: Scorer, seqs: Sequences, max_len: int, ks: tuple[int, ...] = RECBOLE_KS,
    prepare: Callable[[Batch, np.ndarray, np.ndarray], Batch] | None = None, n_items: int | None = None,
) -> RecBoleResult:
    """Rank each RecBole test target among all items (the input: the latest `max_len` earlier events; no item
    removed) and summarise with RecBole's metrics. `prepare` as in `core.evaluate.ranking.rank_targets`.
    With `n_items` (the catalogue size I), the most-popular and Markov baselines are ranked too
    (`recbole_baselines`), in `baselines`.
    """
    out = _ranked(scorer, seqs, recbole_split(seqs), max_len, ks, prepare)
    if n_items is None:
        return out
    return RecBoleResult(out.metrics, out.users, out.ranks, recbole_baselines(seqs, n_items, max_len, ks))
