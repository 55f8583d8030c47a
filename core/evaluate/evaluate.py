"""Evaluate a trained model on its held-out test targets, side by side with the baselines."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from core.checkpoint import LoadedModel, load_checkpoint, pick_device
from core.evaluate.baselines import markov_scorer, most_popular_scorer
from core.evaluate.metrics import summarize
from core.evaluate.protocol import SeenDecision, seen_from_card
from core.evaluate.ranking import PROTOCOLS, Protocol, Ranked, Scorer, rank_targets_protocols
from core.evaluate.recbole import evaluate_recbole
from core.evaluate.split import Split, split_from_card
from core.sequences import Sequences, data_fingerprint, load_sequences
from core.store import connect_read

__all__ = ["EvalResult", "ProtocolResult", "evaluate_split", "evaluate_split_protocols", "evaluate_loaded", "evaluate_model", "EVAL_USERS_FILE"]

log = logging.getLogger(__name__)

EVAL_USERS_FILE = "eval_users.parquet"


@dataclass
class ProtocolResult:
    """Test metrics of a model and of the baselines under one ranking protocol."""

    protocol: Protocol  # exclude_seen or all_items (core.evaluate.ranking)
    metrics: dict[str, float]  # the model's metrics, keys core.evaluate.METRIC_KEYS
    baselines: dict[str, dict[str, float]]  # {"most_popular": {...}, "markov": {...}}
    users: int  # users evaluated

    def to_dict(self) -> dict:
        """Today's keys (metrics, `users`, `baselines`) plus `protocol`."""
        return {**self.metrics, "users": self.users, "baselines": self.baselines, "protocol": self.protocol}


@dataclass
class EvalResult:
    """Test metrics of a model and of the baselines; the headline under the seen rule's protocol, both beside."""

    metrics: dict[str, float]  # the model's metrics, keys core.evaluate.METRIC_KEYS
    users: int  # users evaluated (those with a test target the model knows)
    baselines: dict[str, dict[str, float]]  # {"most_popular": {...}, "markov": {...}}
    split: str  # "loo" or "time"
    unknown_targets: int = 0  # test targets whose item the model has never seen (left out)
    fingerprint_matches: bool = True  # False when the database changed since training
    users_path: Path | None = None  # eval_users.parquet, when written
    extra: dict = field(default_factory=dict)  # further top-level JSON sections added by other evaluations
    protocol: str = "exclude_seen"  # the headline protocol (the seen rule's decision)
    protocols: dict[str, ProtocolResult] = field(default_factory=dict)  # both protocols, keyed by name
    seen: SeenDecision | None = None  # the seen rule's decision and reason
    social: bool = False  # the model has the social branch (friends' states fused in; core.social)
    interest: dict | None = None  # the category forecast's scores (core.trajectory.interest); None without categories

    def to_dict(self) -> dict:
        """The CLI's JSON: the headline metric keys, `users`, `baselines` and `protocol`, then one section per
        protocol (`exclude_seen`, `all_items`) with the same keys, the seen decision and any extra sections."""
        out = {**self.metrics, "users": self.users, "baselines": self.baselines, "protocol": self.protocol}
        out.update({name: r.to_dict() for name, r in self.protocols.items()})
        if self.seen is not None:
            out["seen"] = self.seen.to_dict()
        out["social"] = self.social
        out["interest"] = self.interest
        return {**out, **self.extra}


def evaluate_split(
    scorer: Scorer, seqs: Sequences, split: Split, which: Literal["valid", "test"], max_len: int, n_items: int,
    rows_limit: np.ndarray | None = None, protocol: Protocol = "exclude_seen", prepare=None,
) -> tuple[dict[str, float], Ranked]:
    """Metrics of one scorer on the split's validation or test targets (optionally only `rows_limit` users);
    `prepare` adds per-window inputs (`core.evaluate.ranking.rank_targets`)."""
    out = evaluate_split_protocols(scorer, seqs, split, which, max_len, n_items, rows_limit, (protocol,), prepare)
    return out[protocol]


def evaluate_split_protocols(
    scorer: Scorer, seqs: Sequences, split: Split, which: Literal["valid", "test"], max_len: int, n_items: int,
    rows_limit: np.ndarray | None = None, protocols: tuple[Protocol, ...] = PROTOCOLS, prepare=None,
) -> dict[Protocol, tuple[dict[str, float], Ranked]]:
    """`evaluate_split` under several protocols from one scoring pass: {protocol: (metrics, Ranked)}."""
    rows, targets = split.targets(which)
    if rows_limit is not None:
        keep = np.isin(rows, rows_limit)
        rows, targets = rows[keep], targets[keep]
    ranked = rank_targets_protocols(scorer, seqs, rows, targets, max_len, k=10, protocols=protocols, prepare=prepare)
    return {p: (summarize(r.ranks, r.top, n_items), r) for p, r in ranked.items()}


def _users_table(seqs: Sequences, ranked: Ranked, loaded: LoadedModel) -> pd.DataFrame:
    ts = pd.to_datetime(seqs.ts[ranked.targets], unit="s")
    return pd.DataFrame(
        {
            "user_id": pd.Series(seqs.user_ids[ranked.rows].astype(str), dtype="string"),
            "item_id": pd.Series([loaded.vocab.item_id(i) for i in ranked.items], dtype="string"),
            "ts": ts,
            "rank": ranked.ranks.astype(np.int64),
        }
    )


def evaluate_loaded(
    loaded: LoadedModel, seqs: Sequences, write: bool = True, fingerprint: dict | None = None, seen_rule: str = "auto",
    social=None, recbole: bool = False,
) -> EvalResult:
    """Evaluate an already loaded model on sequences mapped with its vocabulary, under both protocols; the headline
    (and `eval_users.parquet`) follows the seen rule (`core.evaluate.protocol`). `social`: the
    `core.friends.context.SocialContext` a model with the social branch reads its friends from. `recbole`: also
    RecBole's sequential protocol (`core.evaluate.recbole`) for the model and both baselines, in `extra["recbole"]`."""
    split = split_from_card(seqs, loaded.card.get("split"))
    n_items = loaded.vocab.n_items
    max_len = loaded.config.max_len
    seen = seen_from_card(loaded.card, seen_rule)
    rows, _ = split.targets("test")
    prepare = social.prepare if social is not None else None
    model = evaluate_split_protocols(loaded.scorer.score, seqs, split, "test", max_len, n_items, prepare=prepare)
    pop = evaluate_split_protocols(most_popular_scorer(seqs, split, n_items), seqs, split, "test", max_len, n_items)
    mk = evaluate_split_protocols(markov_scorer(seqs, split, n_items), seqs, split, "test", max_len, n_items)
    protocols = {p: ProtocolResult(p, model[p][0], {"most_popular": pop[p][0], "markov": mk[p][0]},
                                   len(model[p][1].rows)) for p in PROTOCOLS}
    head = protocols[seen.protocol]
    ranked = model[seen.protocol][1]
    path = None
    if write:
        path = loaded.path / EVAL_USERS_FILE
        tmp = path.with_name(path.name + ".tmp")
        _users_table(seqs, ranked, loaded).to_parquet(tmp, index=False)
        os.replace(tmp, path)
    matches = fingerprint is None or fingerprint == loaded.fingerprint or not loaded.fingerprint
    extra = {}
    if recbole:
        extra["recbole"] = evaluate_recbole(loaded.scorer.score, seqs, max_len, prepare=prepare,
                                           n_items=n_items).to_dict()
    return EvalResult(
        metrics=head.metrics,
        users=head.users,
        baselines=head.baselines,
        split=split.kind,
        unknown_targets=int(len(rows) - len(ranked.rows)),
        fingerprint_matches=matches,
        users_path=path,
        protocol=seen.protocol,
        protocols=protocols,
        social=loaded.model is not None and loaded.model.social is not None,
        seen=seen,
        extra=extra,
    )


def evaluate_model(
    db: str | os.PathLike | None, model_dir: str | os.PathLike, device: str = "auto", seen_rule: str = "auto",
    context=None, interest=None, recbole: bool = False,
) -> EvalResult:
    """Full-ranking test metrics of the model in `model_dir` on `db`, with most-popular and Markov baselines, under
    both protocols (`exclude_seen`, `all_items`); the headline protocol follows `seen_rule`. `recbole`: also
    RecBole's sequential protocol (`core.evaluate.recbole`), in the JSON's `recbole` section.

    Writes `eval_users.parquet` beside the model: user_id, item_id (the test target), ts (its time), rank (the
    target's 1-based rank among all items under the headline protocol). Test targets whose item the model
    has never seen (added after training) are left out and counted in `unknown_targets`.
    """
    loaded = load_checkpoint(model_dir, pick_device(device))
    with connect_read(db) as con:
        seqs = load_sequences(con, loaded.vocab)
        fp = data_fingerprint(con)
        # `context(con, model, seqs, device)` adds inputs the model reads beside the history (the social branch's
        # friends: core.friends.context.social_context, which sits above this layer and is passed in by the caller)
        ours = loaded.model is not None  # an external model (core.external) reads no friends
        social = context(con, loaded.model, seqs, device=loaded.device) if context is not None and ours else None
    result = evaluate_loaded(loaded, seqs, write=True, fingerprint=fp, seen_rule=seen_rule, social=social,
                             recbole=recbole)
    if interest is not None and loaded.model is not None:  # the category forecast's scores (core.trajectory.interest,
        # passed in by the caller); it reads our model's per-step states, which an external model does not have
        result.interest = interest(loaded, seqs, db)
    if not result.fingerprint_matches:
        log.warning("The database changed since %s was trained; metrics use the data as it is now.", loaded.path)
    return result
