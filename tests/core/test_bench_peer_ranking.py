"""The per-sequence peer runner (bench/peers/seq_run.py, run in its own venv) ranks exactly as core does."""

import importlib.util
from pathlib import Path

import numpy as np
import torch

from core.evaluate.ranking import rank_batch
from core.sequences import Sequences

SEQ_RUN = Path(__file__).resolve().parents[2] / "bench" / "peers" / "seq_run.py"


def test_seq_run_ranks_like_core_under_both_protocols_with_ties():
    spec = importlib.util.spec_from_file_location("seq_run", SEQ_RUN)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    rng = np.random.default_rng(0)
    users = [list(rng.integers(1, 9, size=n)) for n in (4, 6, 3)]
    lens = [len(u) for u in users]
    items = np.array([i for u in users for i in u], np.int64)
    s = Sequences(user_ids=np.array(["a", "b", "c"], dtype=object), offsets=np.r_[0, np.cumsum(lens)].astype(np.int64),
                  items=items, ts=np.arange(len(items)), gaps=np.ones(len(items), np.int64),
                  event_types=np.zeros(len(items), np.int64), context=np.zeros((len(items), 0), np.int64))
    scores = rng.integers(0, 3, size=(3, 9)).astype(np.float32)  # many ties
    hi = s.offsets[1:] - 1  # each user's last event is the target
    targets = items[hi]
    seen = [items[s.offsets[b] : hi[b]] for b in range(3)]
    for exclude in (True, False):
        want, _ = rank_batch(torch.from_numpy(scores.copy()), s, s.offsets[:-1], hi, targets, 5, exclude)
        got, top = mod.rank(scores, seen, targets, exclude)
        assert got.tolist() == want.tolist()
        # ranked two users at a time (the chunking that keeps Sports' score matrix in memory): same ranks and top-10
        got2, top2 = mod.rank(scores, seen, targets, exclude, chunk=2)
        assert got2.tolist() == want.tolist() and top2.tolist() == top.tolist()
        assert mod.rank(scores, seen, targets, exclude, top10=False)[1] is None
