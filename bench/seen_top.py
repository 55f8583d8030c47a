"""How much of a model's unmasked top-10 is the user's own history (what the `all_items` protocol pays for).

    python bench/seen_top.py --model data/cache/peers/toys/ours-0/model --db data/toys.duckdb --users 4000

For the first `--users` test users (leave-one-out), ranks the whole catalogue with nothing removed and prints the
share of the top-10 that the user has already seen and the share of users whose last item is ranked first.
Prints only; no file is written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.checkpoint import load_checkpoint  # noqa: E402
from core.evaluate import leave_one_out  # noqa: E402
from core.evaluate.windows import window_batch  # noqa: E402
from core.sequences import load_sequences  # noqa: E402
from core.store import connect_read  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, type=Path)
    ap.add_argument("--db", required=True, type=Path)
    ap.add_argument("--users", type=int, default=4000)
    args = ap.parse_args()
    torch.set_num_threads(1)
    loaded = load_checkpoint(args.model)
    with connect_read(args.db) as con:
        seqs = load_sequences(con, loaded.vocab)
    rows, ends = leave_one_out(seqs).targets("test")  # ends: each test target's event index
    rows, ends = rows[: args.users], ends[: args.users]
    starts = seqs.offsets[rows]
    T = loaded.config.max_len
    batch = window_batch(seqs, np.maximum(starts, ends - T), ends, T)
    with torch.no_grad():
        top = loaded.model.eval()(batch).topk(10, dim=1).indices.numpy()  # [U,10]
    seen = np.mean([np.isin(top[i], seqs.items[starts[i] : ends[i]]).mean() for i in range(len(rows))])
    last_first = float(np.mean(top[:, 0] == seqs.items[ends - 1]))
    print(f"users {len(rows)}: share of the unmasked top-10 already seen {seen:.3f}; "
          f"last item ranked first {last_first:.3f}")


if __name__ == "__main__":
    main()
