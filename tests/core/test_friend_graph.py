"""The cap rule of `core.friends.graph.graph_from_frame` (numpy sorts) against the same rule written with pandas'
groupby and sort_values (the implementation it replaced), on random graphs with every kind of edge."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.friends.graph import graph_from_frame
from core.sequences import Sequences


def _by_pandas(frame: pd.DataFrame, seqs: Sequences, k: int, degrees=None):
    """The cap rule as pandas states it: strongest tie per (owner, friend); then weight, degree, id; first k."""
    U = seqs.n_users
    index = {str(u): r for r, u in enumerate(seqs.user_ids)}
    src = np.array([index.get(str(x), -1) for x in frame["src_user"]], np.int64)
    dst = np.array([index.get(str(x), -1) for x in frame["dst_user"]], np.int64)
    w = frame["weight"].to_numpy(float) if "weight" in frame else np.ones(len(src))
    directed = frame["directed"].to_numpy(bool) if "directed" in frame else np.zeros(len(src), bool)
    ok = (src >= 0) & (dst >= 0) & (src != dst)
    src, dst, w, directed = src[ok], dst[ok], w[ok], directed[ok]
    back = ~directed
    key = pd.DataFrame({"a": np.concatenate([src, dst[back]]), "b": np.concatenate([dst, src[back]]),
                        "w": np.concatenate([w, w[back]])}).groupby(["a", "b"], as_index=False)["w"].max()  # fmt: skip
    key["deg"] = np.bincount(key["a"].to_numpy(), minlength=U)[key["b"].to_numpy()]
    if degrees is not None and len(key):
        ids = pd.Series(seqs.user_ids[key["b"].to_numpy()].astype(str))
        key["deg"] = ids.map(degrees).fillna(pd.Series(key["deg"].to_numpy())).to_numpy(np.int64)
    key["id"] = seqs.user_ids[key["b"].to_numpy()].astype(str) if len(key) else []
    key = key.sort_values(["a", "w", "deg", "id"], ascending=[True, False, False, True], kind="stable")
    key = key[key.groupby("a").cumcount() < k]
    counts = np.bincount(key["a"].to_numpy(np.int64), minlength=U)
    return np.concatenate([[0], np.cumsum(counts)]), key["b"].to_numpy(np.int64), key["w"].to_numpy(float)


def _seqs(ids: list[str]) -> Sequences:
    n = len(ids)
    z = np.zeros(n, np.int64)
    return Sequences(np.array(ids, dtype=object), np.arange(n + 1, dtype=np.int64), z, z, z, z, np.zeros((n, 0), np.int64))


@pytest.mark.parametrize("seed", range(6))
def test_the_cap_rule_equals_the_pandas_statement(seed):
    rng = np.random.default_rng(seed)
    # ids whose order is not their row order's, some absent from the sequences, unicode among them
    named = [f"u{i:03d}" for i in rng.permutation(60)] + ["zé", "Zoë", "éa"]
    users = sorted(named[:50] + ["zé", "éa"])  # the store's sequences are sorted by id; others need not be
    seqs = _seqs(users if seed % 2 else [str(u) for u in rng.permutation(users)])
    n = int(rng.integers(0, 400))
    frame = pd.DataFrame({
        "src_user": rng.choice(named, n), "dst_user": rng.choice(named, n),
        "weight": rng.integers(1, 4, n).astype(float),  # few weights: many ties, broken by degree then id
        "directed": rng.random(n) < 0.3,
    })  # fmt: skip
    degrees = {u: int(rng.integers(0, 9)) for u in rng.choice(named, 30)}
    for k in (1, 3, 20):
        for deg in (None, degrees):
            got = graph_from_frame(frame, seqs, k, degrees=deg)
            offsets, rows, weights = _by_pandas(frame, seqs, k, deg)
            assert np.array_equal(got.offsets, offsets) and np.array_equal(got.rows, rows), (k, deg is None)
            assert np.array_equal(got.weights, weights) and got.k == k
    empty = graph_from_frame(frame.iloc[:0], seqs, 5)
    assert empty.n_edges == 0 and np.array_equal(empty.offsets, np.zeros(seqs.n_users + 1))
