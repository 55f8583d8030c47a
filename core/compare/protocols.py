"""Accuracy of two models under every ranking protocol, each with a paired bootstrap of the per-user NDCG@K
difference (A − B).

The protocols are `core.evaluate`'s two, on the comparison's split (model A's), and, when asked, RecBole's
sequential protocol on RecBole's own leave-one-out (`core.evaluate.recbole`):

- `exclude_seen`: every item ranked, the items in the user's input removed (never the target);
- `all_items`: every item ranked, nothing removed;
- `recbole`: RecBole 1.2.1's full sort (a test target from 3 events, nothing removed, hit/ndcg/mrr@K with MRR cut
  at K).

Each protocol pairs the users both models can rank under it (a target item unknown to one model leaves the user
out of that protocol's pairs), so `users` may differ between protocols (RecBole's tests no user with 2 events).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from core.checkpoint import LoadedModel
from core.evaluate import PROTOCOLS, Ranked, summarize
from core.evaluate.ranking import rank_targets, rank_targets_protocols
from core.evaluate.recbole import RECBOLE_KS, recbole_metrics, recbole_split
from core.evaluate.split import Split
from core.sequences import Sequences

__all__ = ["CompareProtocol", "COMPARE_PROTOCOLS", "PROTOCOL_TEXT", "ProtocolComparison", "rank_protocols",
           "compare_protocol", "paired_bootstrap", "per_user_ndcg", "protocol_table"]

CompareProtocol = Literal["exclude_seen", "all_items", "recbole"]
COMPARE_PROTOCOLS: tuple[CompareProtocol, ...] = ("exclude_seen", "all_items", "recbole")  # reporting order
PROTOCOL_TEXT: dict[str, str] = {
    "exclude_seen": "every item ranked, items in the input excluded",
    "all_items": "every item ranked, nothing excluded",
    "recbole": "RecBole 1.2.1's sequential full sort: its leave-one-out (test target from 3 events), nothing "
               "excluded, MRR cut at K",
}


@dataclass
class ProtocolComparison:
    """Both models' accuracy under one protocol, on the users both can rank under it."""

    protocol: CompareProtocol  # which items are ranked and which targets (see the module docstring)
    split: str  # the split of the targets: model A's ("loo" or "time"), or "recbole" (RecBole's leave-one-out)
    users: int  # paired users (a test target both models know)
    k: int  # the K of the NDCG difference
    metrics_a: dict[str, float]  # model A on the paired users: core.evaluate's keys, or RecBole's (hit@K, ...)
    metrics_b: dict[str, float]  # model B, the same keys
    ndcg_a: float  # mean per-user NDCG@K of A on the paired users (NaN without any)
    ndcg_b: float  # the same for B
    ndcg_diff: float  # mean per-user NDCG@K of A minus B (NaN without paired users)
    ndcg_diff_low: float  # 2.5% quantile of the paired bootstrap
    ndcg_diff_high: float  # 97.5% quantile
    paired_a: pd.Series  # [U] per-user NDCG@K of A on the paired users, indexed by user id (A's user order)
    paired_b: pd.Series  # [U] the same for B, the same index

    def to_dict(self) -> dict:
        """JSON: protocol, description, split, users, `a` and `b` metrics, NDCG@K_a, NDCG@K_b and
        NDCG@K_diff(_low, _high)."""
        k = self.k
        return {"protocol": self.protocol, "description": PROTOCOL_TEXT[self.protocol], "split": self.split,
                "users": self.users, "a": dict(self.metrics_a), "b": dict(self.metrics_b),
                f"NDCG@{k}_a": self.ndcg_a, f"NDCG@{k}_b": self.ndcg_b,
                f"NDCG@{k}_diff": self.ndcg_diff, f"NDCG@{k}_diff_low": self.ndcg_diff_low,
                f"NDCG@{k}_diff_high": self.ndcg_diff_high}


def per_user_ndcg(ranked: Ranked, seqs: Sequences, k: int) -> pd.Series:
    """NDCG@K of each ranked target (one relevant item: 1/log2(rank + 1) within K), indexed by user id."""
    nd = np.where(ranked.ranks <= k, 1.0 / np.log2(ranked.ranks.astype(np.float64) + 1.0), 0.0)
    return pd.Series(nd, index=pd.Index(seqs.user_ids[ranked.rows].astype(str), name="user_id"))


def paired_bootstrap(diff: np.ndarray, n_boot: int, seed: int) -> tuple[float, float, float]:
    """(mean, 2.5% quantile, 97.5% quantile) of per-user differences diff [U], resampling users `n_boot` times
    with replacement (a generator seeded with `seed`, so each protocol's interval is reproducible on its own).
    All NaN when there are no users."""
    if not len(diff):
        return float("nan"), float("nan"), float("nan")
    draws = np.random.default_rng(seed).integers(0, len(diff), size=(n_boot, len(diff)))  # [n_boot,U]
    low, high = np.quantile(diff[draws].mean(axis=1), [0.025, 0.975])
    return float(diff.mean()), float(low), float(high)


def rank_protocols(loaded: LoadedModel, seqs: Sequences, split: Split, recbole: bool) -> dict[str, Ranked]:
    """The model's test targets ranked under `exclude_seen` and `all_items` on `split` (one scoring pass) and,
    with `recbole`, under RecBole's protocol on its own split (a second pass: its targets and inputs differ)."""
    score, max_len = loaded.scorer.score, loaded.config.max_len
    rows, targets = split.targets("test")
    out: dict[str, Ranked] = dict(rank_targets_protocols(score, seqs, rows, targets, max_len, k=10,
                                                         protocols=PROTOCOLS))
    if recbole:
        rows, targets = recbole_split(seqs).targets("test")
        out["recbole"] = rank_targets(score, seqs, rows, targets, max_len, k=max(RECBOLE_KS), protocol="all_items")
    return out


def compare_protocol(
    protocol: CompareProtocol, split: str, ra: Ranked, rb: Ranked, seqs_a: Sequences, seqs_b: Sequences,
    n_items: tuple[int, int], k: int, n_boot: int, seed: int,
) -> ProtocolComparison:
    """Pair the users of two models' rankings under one protocol and compare them.

    ra, rb: each model's ranked targets (`rank_protocols`); n_items: each model's catalogue size I (for
    coverage@10). Metrics are computed on the paired users only, so A and B are judged on the same targets.
    """
    nd_a, nd_b = per_user_ndcg(ra, seqs_a, k), per_user_ndcg(rb, seqs_b, k)
    common = nd_a.index.intersection(nd_b.index)

    def metrics(r: Ranked, nd: pd.Series, n: int) -> dict[str, float]:
        keep = np.asarray(nd.index.isin(common))
        if protocol == "recbole":
            return recbole_metrics(r.ranks[keep], RECBOLE_KS)
        return summarize(r.ranks[keep], r.top[keep], n)

    da, db_ = nd_a.reindex(common), nd_b.reindex(common)  # [U] paired, A's user order
    pa, pb = da.to_numpy(), db_.to_numpy()
    mean, low, high = paired_bootstrap(pa - pb, n_boot, seed)
    return ProtocolComparison(protocol, split, len(common), k, metrics(ra, nd_a, n_items[0]),
                              metrics(rb, nd_b, n_items[1]), _mean(pa), _mean(pb), mean, low, high, da, db_)


def _mean(x: np.ndarray) -> float:
    return float(x.mean()) if len(x) else float("nan")


def protocol_table(protocols: dict[str, ProtocolComparison]) -> pd.DataFrame:
    """One row per protocol, in order: protocol, users, NDCG@K A, NDCG@K B, A − B, 2.5%, 97.5%, description."""
    rows = [{"protocol": name, "users": pc.users, f"NDCG@{pc.k} A": pc.ndcg_a, f"NDCG@{pc.k} B": pc.ndcg_b,
             "A − B": pc.ndcg_diff, "2.5%": pc.ndcg_diff_low, "97.5%": pc.ndcg_diff_high,
             "description": PROTOCOL_TEXT[name]} for name, pc in protocols.items()]
    return pd.DataFrame(rows)
