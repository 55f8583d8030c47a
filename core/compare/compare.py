"""Two models side by side on one database: accuracy with a paired bootstrap, fairness gaps, exposure, overlap.

Both models are read through the model contract (`LoadedModel.scorer`), so ours, an external one or two external
ones compare alike. They are ranked on the *same* split (model A's, applied to both: the event order is the
database's, only the item indices differ) under the protocol of `core.evaluate` (full catalogue, items seen in the
input excluded, ties to the lower index). Users whose test item one of the models does not know are left out of
the paired figures.

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
from core.evaluate import evaluate_split, split_from_card, summarize
from core.evaluate.split import Split
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
    metrics: dict[str, float]  # core.evaluate metric keys, on the paired users
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
    protocol: str = "exclude_seen"  # items in the input excluded from the ranking (core.evaluate)
    split: str = "loo"
    settings: dict = field(default_factory=dict)

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
            "overlap": {"jaccard": float(ov["jaccard"].mean()), "rbo": float(ov["rbo"].mean()), "users": len(ov)},
            "disagreeing": self.disagreeing(n_disagreeing).to_dict(orient="records"),
        }


def _ndcg(ranks: np.ndarray, k: int) -> np.ndarray:
    return np.where(ranks <= k, 1.0 / np.log2(ranks.astype(np.float64) + 1.0), 0.0)


def _side(loaded: LoadedModel, seqs: Sequences, split: Split, k: int) -> tuple[dict, pd.Series, list[list[str]]]:
    """(ranked metrics source, per-user NDCG@K by user id, top-K item ids per user from the whole history)."""
    _, ranked = evaluate_split(loaded.scorer.score, seqs, split, "test", loaded.config.max_len, loaded.vocab.n_items)
    per_user = pd.Series(_ndcg(ranked.ranks, k), index=pd.Index(seqs.user_ids[ranked.rows].astype(str), name="user_id"))
    lists = recommend(loaded, [seqs.history(r) for r in range(seqs.n_users)], k=k)
    ids = [[loaded.vocab.item_id(i) for i, _ in lst] for lst in lists]
    return {"ranks": ranked.ranks, "top": ranked.top, "users": per_user.index}, per_user, ids


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
    k: int = 10, n_boot: int = 1000, seed: int = 0,
) -> Comparison:
    """Compare two loaded models on sequences mapped with each one's vocabulary (same database, same order)."""
    if not np.array_equal(seqs_a.offsets, seqs_b.offsets):
        raise ValueError("the two models' sequences must come from the same database")
    split = split_from_card(seqs_a, a.card.get("split"))
    ra, nd_a, ids_a = _side(a, seqs_a, split, k)
    rb, nd_b, ids_b = _side(b, seqs_b, split, k)
    common = nd_a.index.intersection(nd_b.index)
    da, db_ = nd_a.reindex(common), nd_b.reindex(common)
    diff = (da - db_).to_numpy()
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(diff), size=(n_boot, len(diff))) if len(diff) else np.zeros((n_boot, 0), int)
    boot = diff[draws].mean(axis=1) if len(diff) else np.full(n_boot, np.nan)
    low, high = (np.quantile(boot, [0.025, 0.975]) if len(diff) else (np.nan, np.nan))
    _, train = prefix_pairs(seqs_a.offsets[:-1], split.train_end)  # training events: before each user's cut
    users = seqs_a.user_ids.astype(str)
    sides = []
    for loaded, seqs, ids, per_user, ranked in ((a, seqs_a, ids_a, da, ra), (b, seqs_b, ids_b, db_, rb)):
        n = np.bincount(seqs.items[train], minlength=loaded.vocab.n_items + 1)[1:]
        pop = pd.Series(n, index=pd.Index(loaded.vocab.items, name="item_id"))
        keep = np.isin(np.asarray(ranked["users"]), common)
        metrics = summarize(ranked["ranks"][keep], ranked["top"][keep], loaded.vocab.n_items)
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
    return Comparison(sides[0], sides[1], len(common), k, float(diff.mean()) if len(diff) else float("nan"),
                      float(low), float(high), n_boot, overlap, split=split.kind,
                      settings={"seed": seed, "rbo_p": 0.9})


def compare_models(
    db: str | os.PathLike | None, model_a: str | os.PathLike, model_b: str | os.PathLike, k: int = 10,
    n_boot: int = 1000, seed: int = 0,
) -> Comparison:
    """Compare two models (folders or names under the models folder) on database `db`; see the module docstring."""
    a = load_checkpoint(model_for(db, model_a))
    b = load_checkpoint(model_for(db, model_b))
    with connect_read(db) as con:
        seqs_a = load_sequences(con, a.vocab)
        seqs_b = load_sequences(con, b.vocab)
        rows = con.execute(
            "SELECT user_id, map_keys(attributes), map_values(attributes) FROM users ORDER BY user_id").fetchall()
    records = [{"user_id": str(u), **dict(zip(ks or [], vs or [], strict=True))} for u, ks, vs in rows]
    attrs = pd.DataFrame.from_records(records) if records else None
    return compare_loaded(a, b, seqs_a, seqs_b, attrs, k, n_boot, seed)
