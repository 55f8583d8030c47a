"""Build the fairness report's inputs from a database and a model folder.

What comes from where:

- per-user quality: the test target's rank in the full ranking, and top-K lists: every user's, from their whole
  history. Both are read from the inputs saved beside the model (`core.fairness.saved`: keyed by the database's
  contents, the weights and the seen rule, so a stale one is never read), else from ``eval_users.parquet`` /
  ``recommendations.parquet`` beside the model (written by `interestlens evaluate` / `recommend --all`), else
  computed here with `core.evaluate` / `core.recommend` under the split the model card names, saved for the next
  report, and a note says so;
- trend windows' lists: scored by the model per window, saved the same way (`saved_recommender`);
- pop(i): the item's training interactions (the events before each user's training end in that split);
- the catalogue: the model's items (every item with at least one event when it was trained);
- histories, user and item attributes and categories: the database.

The database is only read; the model folder gets only its `fairness_inputs/` cache (skipped when read-only).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from core.checkpoint import LoadedModel, load_checkpoint, model_for, pick_device
from core.errors import UserInputError
from core.evaluate import EVAL_USERS_FILE, evaluate_split, split_from_card
from core.fairness.groups import DERIVED_ATTRIBUTES, MAX_DEFAULT_GROUPS
from core.fairness.over_time import TREND_USERS, RecommendFn, over_time
from core.fairness.report import FairnessInputs
from core.fairness.saved import SAVED_K, SavedInputs, inputs_key, saved_recommender
from core.recommend import RECOMMENDATIONS_FILE, recommend, seen_excluded
from core.sequences import Sequences, load_sequences
from core.store import connect_read
from core.store.queries import EVENT_ORDER

__all__ = ["LoadedInputs", "load_inputs", "save_inputs", "model_recommender", "known_attributes", "default_attributes"]

log = logging.getLogger(__name__)


@dataclass
class LoadedInputs:
    """The report's inputs, the trained model as a recommender for trends, and what had to be computed."""

    inputs: FairnessInputs
    recommend_fn: RecommendFn  # the trained model through core.recommend (histories → top-K lists)
    model_dir: Path
    notes: list[str] = field(default_factory=list)  # one sentence per input computed because a file was missing


def known_attributes(user_attributes: pd.DataFrame | None) -> list[str]:
    """The attributes a report can group users by: raw ones (``age_band`` in place of ``age``) and derived ones."""
    raw = [c for c in (user_attributes.columns if user_attributes is not None else []) if c != "user_id"]
    if "age" in raw:
        raw.append("age_band")
    return list(dict.fromkeys([*raw, *DERIVED_ATTRIBUTES]))


def load_inputs(
    db: str | os.PathLike | None,
    model_dir: str | os.PathLike | None,
    k: int = 10,
    by: list[str] | None = None,
    device: str = "cpu",
    seen: str = "auto",
    save: bool = False,
) -> LoadedInputs:
    """Read (or compute) everything `fairness_report` needs.

    Parameters
    ----------
    db : the events database (default as `core.store.connect_read`).
    model_dir : the model folder (default as `core.checkpoint.model_for`: the newest trained on this database).
    k : list length; recommendations are computed when the saved ones are shorter.
    by : user attributes that will be asked for; an unknown one is reported before any heavy work.
    device : where the model runs when lists or ranks must be computed.
    seen : the seen rule (`core.evaluate.protocol`): auto follows the model card and may reuse the saved lists and
        ranks; exclude / include recompute both under that choice.
    save : keep what had to be computed (lists, ranks, trend windows' lists) in the model's `fairness_inputs/`
        (`core.fairness.saved`) for the next report; saved inputs of the same database state and weights are read
        either way.

    Raises
    ------
    UserInputError : an unknown attribute in `by`, or K below 1.
    CheckpointError, StoreError : a missing or damaged model folder or database.
    """
    if k < 1:
        raise UserInputError(f"K must be a positive integer, not {k}.")
    path = model_for(db, model_dir)
    loaded = load_checkpoint(path, pick_device(device))
    notes: list[str] = []
    with connect_read(db) as con:
        user_attributes = _user_attributes(con)
        known = known_attributes(user_attributes)
        unknown = [b for b in (by or []) if b not in known]
        if unknown:
            raise UserInputError(f"Unknown user attribute {unknown[0]!r}; known attributes: {', '.join(known)}.")
        item_categories, item_attributes = _items(con)
        # One read of the log serves both the model (its vocabulary's indices) and the report (every item's id):
        # the model's items first, then the items it has never seen, so an index above the model's is unknown
        # to it. The frame below takes its id strings from those lists by code (a 10M-event log read as a
        # sorted table of strings peaked at ~2.5 GB; see bench/results/scale-10m.json).
        wide = replace(loaded.vocab, items=[*loaded.vocab.items, *_unseen(loaded.vocab, item_categories.index)])
        seqs_all = load_sequences(con, wide)
        events = _events_frame(seqs_all, wide.items)
        if events is None:  # an event whose item is not in the items table: read the ids themselves
            events = con.execute(f"SELECT user_id, item_id, ts FROM events ORDER BY {EVENT_ORDER}").df()
        exclude = seen_excluded(loaded, seen)
        saved = SavedInputs.open(path, inputs_key(con, path, exclude))
    n_model = loaded.vocab.n_items
    # small-valued columns as int32 (make_batch copies them into int64 batches): ~40 MB each at 10M events
    seqs = replace(seqs_all, items=np.where(seqs_all.items > n_model, 0, seqs_all.items).astype(np.int32),
                   gaps=seqs_all.gaps.astype(np.int32), event_types=seqs_all.event_types.astype(np.int32),
                   context=seqs_all.context.astype(np.int32))
    del seqs_all
    recs = _cut(saved.read("recommendations"), k)
    if recs is None and seen == "auto":  # files written by `recommend --all` follow the card's rule
        recs = _read_recommendations(path, k)
    if recs is None:
        notes.append(f"Every user's top-{k} list was computed now (none was saved for this model and database).")
        users = [str(u) for u in seqs.user_ids]
        lists = recommend(loaded, [seqs.history(r) for r in range(seqs.n_users)], max(k, SAVED_K), exclude)
        full = _lists_frame(loaded, users, lists)
        if save:
            saved.write("recommendations", full)
        recs = _cut(full, k)
    events = events.astype({"user_id": str, "item_id": str})  # a no-op on the frame above (already strings)
    split = split_from_card(seqs, loaded.card.get("split"))
    eval_users = saved.read("eval_users")
    if eval_users is None and seen == "auto":
        eval_users = _read_eval_users(path)
    if eval_users is None:
        notes.append("Every user's test target was ranked now (no ranks were saved for this model and database).")
        eval_users = _eval_users(loaded, seqs, split, exclude)
        if save:
            saved.write("eval_users", eval_users)
    eval_users = eval_users.astype({"user_id": str, "item_id": str})
    for note in notes:
        log.info(note)
    inputs = FairnessInputs(
        recs=recs,
        eval_users=eval_users[["user_id", "rank"]],
        histories=events,
        pop=_training_popularity(seqs, split.train_end, loaded),
        item_categories=item_categories,
        catalogue=list(loaded.vocab.items),
        user_attributes=user_attributes,
        targets=eval_users[["user_id", "item_id", "ts"]],
        item_attributes=item_attributes,
        events=events,
    )
    recommend_fn = model_recommender(loaded, seqs, exclude)
    return LoadedInputs(inputs, saved_recommender(saved, recommend_fn, save), path, notes)


def save_inputs(
    db: str | os.PathLike | None, model_dir: str | os.PathLike | None, freqs: tuple[str, ...] = ("quarter", "month"),
    trend_users: int | None = TREND_USERS,
) -> LoadedInputs:
    """Compute and save a model's fairness inputs (`core.fairness.saved`) so its first report opens without
    scoring every user: every user's top-`SAVED_K` list, the test ranks, and the trend windows' lists for each
    calendar window in `freqs` (a trend of another window length scores its windows on first use). Run after
    training; returns the loaded inputs (their notes say what was computed)."""
    loaded = load_inputs(db, model_dir, k=SAVED_K, save=True)
    inp = loaded.inputs
    for freq in freqs:
        over_time(inp.events, loaded.recommend_fn, SAVED_K, inp.item_categories, freq=freq, max_users=trend_users,
                  n_boot=0)
    return loaded


def _unseen(vocab, item_ids: pd.Index) -> list[str]:
    """Item ids of the database the model's vocabulary lacks, in the database's order."""
    known = set(vocab.items)
    return [str(i) for i in item_ids if str(i) not in known]


def _events_frame(seqs: Sequences, items: list[str]) -> pd.DataFrame | None:
    """(user_id, item_id, ts) of every event, each user's events together in canonical order; None when an
    event's item is not in `items`."""
    codes = seqs.items - 1
    if len(codes) and codes.min() < 0:
        return None
    user_names = pd.array([str(u) for u in seqs.user_ids], dtype="str")
    item_names = pd.array(items, dtype="str")
    return pd.DataFrame(
        {  # string columns taken from the id lists by code (Arrow-backed: no Python string per event)
            "user_id": user_names.take(np.repeat(np.arange(seqs.n_users), seqs.lengths)),
            "item_id": item_names.take(codes),
            "ts": seqs.ts.view("datetime64[s]"),  # the sequences' own seconds, not a copy
        }
    )


def model_recommender(loaded: LoadedModel, seqs: Sequences, exclude_seen: bool | None = None) -> RecommendFn:
    """A `RecommendFn` over the trained model for trends.

    `histories` must be each user's first events in the store's canonical order (what
    `core.fairness.over_time.window_split` gives from a log read in that order); user u's history is then the
    first n_u events of u's sequence in `seqs`, with their event types, context and time gaps.
    """

    def fn(histories: pd.DataFrame, k: int) -> pd.DataFrame:
        counts = histories.groupby(histories["user_id"].astype(str), sort=True).size()
        users = [str(u) for u in counts.index]
        hs = [seqs.history(seqs.row(u), 0, int(n)) for u, n in zip(users, counts.to_numpy(), strict=True)]
        return _lists_frame(loaded, users, recommend(loaded, hs, k, exclude_seen))

    return fn


def _lists_frame(loaded: LoadedModel, users: list[str], lists: list[list[tuple[int, float]]]) -> pd.DataFrame:
    """core.recommend's per-history top-K lists (model index, score) as (user_id, rank, item_id, score)."""
    item_id = loaded.vocab.item_id
    rows = [(u, r + 1, item_id(i), s) for u, top in zip(users, lists, strict=True) for r, (i, s) in enumerate(top)]
    return pd.DataFrame(rows, columns=["user_id", "rank", "item_id", "score"]).astype({"rank": np.int64})


def _cut(recs: pd.DataFrame | None, k: int) -> pd.DataFrame | None:
    """Lists cut to rank <= k, or None when there are none or they are shorter than k."""
    if recs is None or recs.empty or int(recs["rank"].max()) < k:
        return None
    return recs[recs["rank"] <= k].reset_index(drop=True).astype({"user_id": str, "item_id": str})


def _read_recommendations(path: Path, k: int) -> pd.DataFrame | None:
    file = path / RECOMMENDATIONS_FILE
    if not file.exists():
        return None
    import pyarrow.parquet as pq

    has_rank = "rank" in pq.read_schema(file).names
    # only ranks <= K are read: a saved top-20 file is twice what a top-10 report needs
    recs = pd.read_parquet(file, filters=[("rank", "<=", int(k))] if has_rank else None)
    if not {"user_id", "rank", "item_id"} <= set(recs.columns):
        raise UserInputError(f"{file} lacks one of the columns user_id, rank, item_id; delete it to recompute.")
    if recs.empty or int(recs["rank"].max()) < k:
        return None
    return recs.astype({"user_id": str, "item_id": str})


def _read_eval_users(path: Path) -> pd.DataFrame | None:
    file = path / EVAL_USERS_FILE
    if not file.exists():
        return None
    table = pd.read_parquet(file)
    if not {"user_id", "item_id", "ts", "rank"} <= set(table.columns):
        raise UserInputError(f"{file} lacks one of the columns user_id, item_id, ts, rank; delete it to recompute.")
    return table.astype({"user_id": str, "item_id": str})


def _eval_users(loaded: LoadedModel, seqs: Sequences, split, exclude: bool = True) -> pd.DataFrame:
    """The per-user evaluation table (the `eval_users.parquet` contract), computed with core.evaluate."""
    scorer = loaded.scorer.score
    _, ranked = evaluate_split(scorer, seqs, split, "test", loaded.config.max_len, loaded.vocab.n_items,
                               protocol="exclude_seen" if exclude else "all_items")
    return pd.DataFrame(
        {
            "user_id": seqs.user_ids[ranked.rows].astype(str),
            "item_id": [loaded.vocab.item_id(i) for i in ranked.items],
            "ts": pd.to_datetime(seqs.ts[ranked.targets], unit="s"),
            "rank": ranked.ranks.astype(np.int64),
        }
    )


def _training_popularity(seqs: Sequences, train_end: np.ndarray, loaded: LoadedModel) -> pd.Series:
    """pop(i): events of item i among the training events (before each user's `train_end`)."""
    rows = np.repeat(np.arange(seqs.n_users), seqs.lengths)
    train = np.arange(len(seqs.items)) < train_end[rows]
    counts = np.bincount(seqs.items[train], minlength=loaded.vocab.n_items + 1)[1:]  # index 0 = unknown items
    return pd.Series(counts.astype(np.int64), index=pd.Index(loaded.vocab.items, name="item_id"), name="pop")


def default_attributes(known: list[str], n_groups: dict[str, int]) -> list[str]:
    """The attributes a report groups by when none are named, as `user_group_table` chooses them: `known` without
    a raw ``age`` (its bands stand in) and without raw attributes of more than `MAX_DEFAULT_GROUPS` groups (zip
    codes, ids), whose groups of one or two users would decide every gap. `n_groups`: distinct values of each raw
    attribute (an attribute not in it counts as narrow)."""
    return [
        a
        for a in known
        if a != "user_id" and a != "age" and (a in DERIVED_ATTRIBUTES or n_groups.get(a, 0) <= MAX_DEFAULT_GROUPS)
    ]


def _user_attributes(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """user_id and one text column per attribute key (None where a user lacks it)."""
    rows = con.execute("SELECT user_id, map_keys(attributes), map_values(attributes) FROM users ORDER BY user_id").fetchall()
    records = [{"user_id": str(u), **dict(zip(ks or [], vs or [], strict=True))} for u, ks, vs in rows]
    return pd.DataFrame.from_records(records) if records else pd.DataFrame({"user_id": []})


def _items(con: duckdb.DuckDBPyConnection) -> tuple[pd.Series, pd.DataFrame]:
    """item_id → list of categories, and item_id + one text column per item attribute."""
    rows = con.execute(
        "SELECT item_id, categories, map_keys(attributes), map_values(attributes) FROM items ORDER BY item_id"
    ).fetchall()
    cats = pd.Series({str(i): list(c or []) for i, c, _, _ in rows}, dtype=object)
    records = [{"item_id": str(i), **dict(zip(ks or [], vs or [], strict=True))} for i, _, ks, vs in rows]
    attrs = pd.DataFrame.from_records(records) if records else pd.DataFrame({"item_id": []})
    return cats, attrs
