"""Two models side by side on one database: accuracy with a paired bootstrap, fairness gaps, exposure, overlap.

Both models are read through the model contract (`LoadedModel.scorer`), so ours, an external one or two external
ones compare alike. They are ranked on the *same* split (model A's, applied to both: the event order is the
database's, only the item indices differ) under every protocol of `core.evaluate` (`exclude_seen`, `all_items`)
and, when asked, RecBole's (`core.compare.protocols`), each with its own paired figures in `protocols`. The
headline (`a.metrics`, `ndcg_diff`, the group gaps and the per-user NDCG of the overlap table) is `exclude_seen`.
Users whose test item one of the models does not know are left out of the paired figures.

The paired bootstrap resamples users with replacement `n_boot` times and reads the 2.5% and 97.5% quantiles of the
mean per-user NDCG@K difference (A − B). Top-K overlap compares the lists each model recommends from a user's whole
history (what would be served now).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from core.checkpoint import LoadedModel, load_checkpoint, model_for
from core.compare.overlap import jaccard, rbo
from core.compare.protocols import (
    COMPARE_PROTOCOLS,
    ProtocolComparison,
    compare_protocol,
    rank_protocols,
)
from core.evaluate import Ranked, split_from_card
from core.evaluate.windows import prefix_pairs
from core.fairness import arp, coverage, gini, recommendation_counts, user_group_table
from core.recommend import recommend
from core.sequences import Sequences, load_sequences
from core.store import connect_read

__all__ = ["ModelSide", "Comparison", "compare_models", "compare_loaded"]


@dataclass
class ModelSide:
    """One model's figures in a comparison."""

    name: str  # the model folder's name
    kind: str  # "interestlens", "onnx", "torchscript" or "entry"
    metrics: dict[str, float]  # core.evaluate metric keys, on the paired users, under the headline protocol
    exposure: dict[str, float]  # coverage, gini, arp of the top-K lists from whole histories
    group_ndcg: dict[str, dict[str, float]]  # attribute -> group -> mean NDCG@K on the paired users
    gaps: dict[str, float]  # attribute -> largest minus smallest group mean NDCG@K


@dataclass
class Comparison:
    """Model A against model B; `to_dict()` is the CLI's JSON."""

    a: ModelSide
    b: ModelSide
    users: int  # paired users (test item known to both)
    k: int
    ndcg_diff: float  # mean per-user NDCG@K of A minus B
    ndcg_diff_low: float  # 2.5% quantile of the paired bootstrap
    ndcg_diff_high: float  # 97.5% quantile
    n_boot: int
    overlap: pd.DataFrame  # per user: user_id, jaccard, rbo, ndcg_a, ndcg_b (NaN without a test item)
    protocol: str = "exclude_seen"  # the headline's protocol: items in the input excluded (core.evaluate)
    split: str = "loo"
    settings: dict = field(default_factory=dict)
    protocols: dict[str, ProtocolComparison] = field(default_factory=dict)  # every protocol compared, in order

    def disagreeing(self, n: int = 10) -> pd.DataFrame:
        """The `n` users whose lists differ most (lowest RBO, then lowest Jaccard, then id)."""
        return self.overlap.sort_values(["rbo", "jaccard", "user_id"]).head(n).reset_index(drop=True)

    def to_dict(self, n_disagreeing: int = 10) -> dict:
        ov = self.overlap
        return {
            "a": vars(self.a).copy(),
            "b": vars(self.b).copy(),
            "users": self.users,
            "k": self.k,
            "protocol": self.protocol,
            "split": self.split,
            f"NDCG@{self.k}_diff": self.ndcg_diff,
            f"NDCG@{self.k}_diff_low": self.ndcg_diff_low,
            f"NDCG@{self.k}_diff_high": self.ndcg_diff_high,
            "n_boot": self.n_boot,
            "protocols": {name: pc.to_dict() for name, pc in self.protocols.items()},
            "overlap": {"jaccard": float(ov["jaccard"].mean()), "rbo": float(ov["rbo"].mean()), "users": len(ov)},
            "disagreeing": self.disagreeing(n_disagreeing).to_dict(orient="records"),
        }


def _lists(loaded: LoadedModel, seqs: Sequences, k: int) -> list[list[str]]:
    """Top-K item ids per user, recommended from the whole history (what would be served now)."""
    lists = recommend(loaded, [seqs.history(r) for r in range(seqs.n_users)], k=k)
    return [[loaded.vocab.item_id(i) for i, _ in lst] for lst in lists]


def _exposure(ids: list[list[str]], users: np.ndarray, loaded: LoadedModel, pop: pd.Series) -> dict[str, float]:
    recs = pd.DataFrame([(u, r + 1, i) for u, lst in zip(users, ids, strict=True) for r, i in enumerate(lst)],
                        columns=["user_id", "rank", "item_id"])
    counts = recommendation_counts(recs, loaded.vocab.items)
    return {"coverage": coverage(counts), "gini": gini(counts), "arp": arp(recs, pop)}


def _groups(per_user: pd.Series, groups: pd.DataFrame) -> tuple[dict, dict]:
    by, gaps = {}, {}
    for attr in groups.columns:
        means = per_user.groupby(groups[attr]).mean()
        by[attr] = {str(g): float(v) for g, v in means.items()}
        gaps[attr] = float(means.max() - means.min()) if len(means) else float("nan")
    return by, gaps


def compare_loaded(
    a: LoadedModel, b: LoadedModel, seqs_a: Sequences, seqs_b: Sequences, user_attributes: pd.DataFrame | None,
    k: int = 10, n_boot: int = 1000, seed: int = 0, recbole: bool = False,
) -> Comparison:
    """Compare two loaded models on sequences mapped with each one's vocabulary (same database, same order).

    `recbole`: also RecBole's protocol (`core.compare.protocols`), in `protocols["recbole"]`.
    """
    if not np.array_equal(seqs_a.offsets, seqs_b.offsets):
        raise ValueError("the two models' sequences must come from the same database")
    split = split_from_card(seqs_a, a.card.get("split"))
    ranked: list[dict[str, Ranked]] = [rank_protocols(m, s, split, recbole) for m, s in ((a, seqs_a), (b, seqs_b))]
    protocols = {p: compare_protocol(p, "recbole" if p == "recbole" else split.kind, ranked[0][p], ranked[1][p],
                                     seqs_a, seqs_b, (a.vocab.n_items, b.vocab.n_items), k, n_boot, seed)
                 for p in COMPARE_PROTOCOLS if p in ranked[0]}
    head = protocols["exclude_seen"]
    da, db_ = head.paired_a, head.paired_b  # per-user NDCG@K on the headline's paired users
    common = da.index
    ids_a, ids_b = _lists(a, seqs_a, k), _lists(b, seqs_b, k)
    _, train = prefix_pairs(seqs_a.offsets[:-1], split.train_end)  # training events: before each user's cut
    users = seqs_a.user_ids.astype(str)
    sides = []
    for loaded, seqs, ids, per_user, metrics in ((a, seqs_a, ids_a, da, head.metrics_a),
                                                 (b, seqs_b, ids_b, db_, head.metrics_b)):
        n = np.bincount(seqs.items[train], minlength=loaded.vocab.n_items + 1)[1:]
        pop = pd.Series(n, index=pd.Index(loaded.vocab.items, name="item_id"))
        groups = user_group_table(common, user_attributes, None)
        by, gaps = _groups(per_user, groups)
        sides.append(ModelSide(loaded.name, loaded.kind, metrics, _exposure(ids, users, loaded, pop), by, gaps))
    overlap = pd.DataFrame({
        "user_id": users,
        "jaccard": [jaccard(x, y) for x, y in zip(ids_a, ids_b, strict=True)],
        "rbo": [rbo(x, y) for x, y in zip(ids_a, ids_b, strict=True)],
    })
    overlap["ndcg_a"] = overlap["user_id"].map(da)
    overlap["ndcg_b"] = overlap["user_id"].map(db_)
    return Comparison(sides[0], sides[1], head.users, k, head.ndcg_diff, head.ndcg_diff_low, head.ndcg_diff_high,
                      n_boot, overlap, split=split.kind, settings={"seed": seed, "rbo_p": 0.9},
                      protocols=protocols)


def compare_models(
    db: str | os.PathLike | None, model_a: str | os.PathLike, model_b: str | os.PathLike, k: int = 10,
    n_boot: int = 1000, seed: int = 0, recbole: bool = False,
) -> Comparison:
    """Compare two models (folders or names under the models folder) on database `db`; see the module docstring.
    `recbole`: also RecBole's protocol."""
    a = load_checkpoint(model_for(db, model_a))
    b = load_checkpoint(model_for(db, model_b))
    with connect_read(db) as con:
        seqs_a = load_sequences(con, a.vocab)
        seqs_b = load_sequences(con, b.vocab)
        rows = con.execute(
            "SELECT user_id, map_keys(attributes), map_values(attributes) FROM users ORDER BY user_id").fetchall()
    records = [{"user_id": str(u), **dict(zip(ks or [], vs or [], strict=True))} for u, ks, vs in rows]
    attrs = pd.DataFrame.from_records(records) if records else None
    return compare_loaded(a, b, seqs_a, seqs_b, attrs, k, n_boot, seed, recbole)
