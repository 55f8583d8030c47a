"""Write a database's event log in RecBole's atomic format for `bench/peers/sasrec_onnx.py`.

    python bench/external_export.py --db data/ml100k.duckdb --out data/peers-atomic --name ml100k

User and item tokens are the database's own ids; each event's timestamp is its position in the user's canonical
order (strictly increasing), so RecBole's time-ordered leave-one-out split is exactly InterestLens's.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.sequences import build_vocab, load_sequences  # noqa: E402
from core.store import connect_read  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--name", default="ml100k")
    args = ap.parse_args()
    with connect_read(args.db) as con:
        vocab = build_vocab(con)
        seqs = load_sequences(con, vocab)
    folder = Path(args.out) / args.name
    folder.mkdir(parents=True, exist_ok=True)
    n = np.diff(seqs.offsets)
    pos = np.arange(len(seqs.items)) - np.repeat(seqs.offsets[:-1], n)
    users = np.repeat(seqs.user_ids.astype(str), n)
    ids = np.asarray(["", *vocab.items], dtype=object)
    with open(folder / f"{args.name}.inter", "w", encoding="utf-8") as f:
        f.write("user_id:token\titem_id:token\ttimestamp:float\n")
        for u, i, t in zip(users, ids[seqs.items], pos, strict=True):
            f.write(f"{u}\t{i}\t{t}\n")
    print(folder / f"{args.name}.inter")


if __name__ == "__main__":
    main()
