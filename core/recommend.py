"""Top-K recommendations from a trained model: the interest after each history's last known event, scored against
the whole catalogue (items the model has never seen are skipped in the history and cannot be recommended)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import torch

from core.checkpoint import LoadedModel
from core.errors import NotFoundError
from core.evaluate.protocol import seen_from_card
from core.evaluate.ranking import check_finite, top_k
from core.evaluate.ranking import exclude_seen as mask_seen
from core.friends.context import social_context, users_context
from core.model import Batch
from core.sequences import History, load_sequences, make_batch

__all__ = ["recommend", "recommend_users", "recommend_all", "unknown_history_items", "write_recommendations",
           "RECOMMENDATIONS_FILE", "UnknownItems", "seen_excluded"]

log = logging.getLogger(__name__)

RECOMMENDATIONS_FILE = "recommendations.parquet"
COLUMNS = ["user_id", "rank", "item_id", "score"]


@dataclass
class UnknownItems:
    """Items in a user's history that the model has never seen (added after training); the model skipped them."""

    user_id: str
    item_ids: list[str]


# Scores held per batch in `recommend` (float32; a [B, items + 1] matrix and its masked copy): 4M cells = 16 MB,
# so a 50k-item catalogue scores ~80 histories at a time instead of 256 (~50 MB a matrix).
SCORE_CELLS = 1 << 22


def seen_excluded(loaded: LoadedModel, rule: str = "auto") -> bool:
    """Whether rankings of this model remove seen items under `rule` (auto: the model card's decision)."""
    return seen_from_card(loaded.card, rule).exclude


def recommend(
    loaded: LoadedModel, histories: Sequence[History], k: int = 10, exclude_seen: bool | None = None,
    batch_size: int = 256, friends: Callable[[Batch, np.ndarray], Batch] | None = None,
) -> list[list[tuple[int, float]]]:
    """Top-K (model item index, score) per history, best first; ties go to the lower item index.

    Unknown items (index 0) in a history are skipped. With `exclude_seen`, items already in the history are not
    recommended; None follows the seen rule's `auto` decision on the model card (`core.evaluate.protocol`). A history with no known event gets the model's learned "empty" interest. At most `batch_size`
    histories are scored at once, fewer on a large catalogue (`SCORE_CELLS` scores per batch). `friends`: for a model
    with the social branch, the hook filling each batch's friends (`SocialContext.history_hook`, given the batch
    and each row's history number), so the top-K is the one the model scores with its friends; None reads every
    model without friends.
    """
    if exclude_seen is None:
        exclude_seen = seen_excluded(loaded)
    scorer = loaded.scorer  # the model contract: ours or an external model alike
    out: list[list[tuple[int, float]]] = []
    K = len(loaded.vocab.context)
    batch_size = max(1, min(int(batch_size), SCORE_CELLS // (loaded.vocab.n_items + 1)))
    for b0 in range(0, len(histories), batch_size):
        chunk = histories[b0 : b0 + batch_size]
        batch = make_batch(chunk, loaded.config.max_len, n_context=K)
        if friends is not None and getattr(loaded.model, "social", None) is not None:
            batch = friends(batch, np.arange(b0, b0 + len(chunk)))
        with torch.no_grad():
            scores = scorer.score(batch).float().cpu().clone()  # [B,I+1]
        check_finite(scores)
        if exclude_seen:
            lens = np.array([len(h) for h in chunk], dtype=np.int64)
            owner = np.repeat(np.arange(len(chunk)), lens)
            seen = np.concatenate([h.items for h in chunk]) if len(chunk) else np.zeros(0, np.int64)
            mask_seen(scores, owner, seen)
        else:
            scores[:, 0] = float("-inf")
        values, idx = top_k(scores, k)
        for v, i in zip(values.tolist(), idx.tolist(), strict=True):
            out.append([(int(a), float(s)) for a, s in zip(i, v, strict=True) if s != float("-inf")])
    return out



def _frame(loaded: LoadedModel, user_ids: Sequence[str], lists: list[list[tuple[int, float]]]) -> pd.DataFrame:
    rows = [(u, r + 1, loaded.vocab.item_id(i), s) for u, lst in zip(user_ids, lists, strict=True) for r, (i, s) in enumerate(lst)]
    df = pd.DataFrame(rows, columns=COLUMNS)
    return df.astype({"user_id": "string", "rank": "int64", "item_id": "string", "score": "float64"})


def recommend_users(
    loaded: LoadedModel, con: duckdb.DuckDBPyConnection, user_ids: Sequence[str], k: int = 10,
    exclude_seen: bool | None = None,
) -> pd.DataFrame:
    """Top-K per user from the user's whole history in the database. Columns: user_id, rank (1..K), item_id, score.

    Raises NotFoundError for a user with no events.
    """
    ids = [str(u) for u in user_ids]
    if getattr(loaded.model, "social", None) is not None:  # with the users' friends, as the model scores
        ctx, rows = users_context(con, loaded.model, loaded.vocab, ids)
        lists = recommend(loaded, [ctx.seqs.history(r) for r in rows], k, exclude_seen, friends=ctx.history_hook(rows))
        return _frame(loaded, ids, lists)
    seqs = load_sequences(con, loaded.vocab, users=ids)
    rows = [seqs.row(u) for u in ids]
    lists = recommend(loaded, [seqs.history(r) for r in rows], k, exclude_seen)
    return _frame(loaded, ids, lists)


def unknown_history_items(loaded: LoadedModel, con: duckdb.DuckDBPyConnection, user_id: str) -> UnknownItems:
    """The items in a user's history that the model's vocabulary does not know (in order, without repeats)."""
    rows = con.execute(
        "SELECT DISTINCT item_id FROM events WHERE user_id = ? ORDER BY item_id", [str(user_id)]
    ).fetchall()
    if not rows:
        raise NotFoundError(f"There is no user {user_id!r} with events in this database.")
    unknown = [r[0] for r in rows if loaded.vocab.item_index(r[0]) == 0]
    return UnknownItems(str(user_id), unknown)


def recommend_all(
    loaded: LoadedModel, con: duckdb.DuckDBPyConnection, k: int = 10, exclude_seen: bool | None = None, batch_size: int = 512
) -> pd.DataFrame:
    """Top-K for every user with events, in user-id order (same columns as `recommend_users`); a social model reads
    every user's friends (the whole graph and every user's timeline)."""
    seqs = load_sequences(con, loaded.vocab)
    ctx = social_context(con, loaded.model, seqs) if getattr(loaded.model, "social", None) is not None else None
    frames = []
    for r0 in range(0, seqs.n_users, batch_size):
        rows = range(r0, min(r0 + batch_size, seqs.n_users))
        hook = ctx.history_hook(list(rows)) if ctx is not None else None
        lists = recommend(loaded, [seqs.history(r) for r in rows], k, exclude_seen, batch_size, friends=hook)
        frames.append(_frame(loaded, [str(seqs.user_ids[r]) for r in rows], lists))
    return pd.concat(frames, ignore_index=True) if frames else _frame(loaded, [], [])


def write_recommendations(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write recommendations to Parquet (default) or CSV (a `.csv` path), atomically."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    if path.suffix.lower() == ".csv":
        df.to_csv(tmp, index=False)
    else:
        df.to_parquet(tmp, index=False)
    os.replace(tmp, path)
    return path
