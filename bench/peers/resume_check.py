"""Check by hand that a RecTools peer run resumed after a STOP file ends exactly where an unbroken run ends.

    cd bench/peers && OMP_NUM_THREADS=1 /work/venv-rectools/bin/python resume_check.py --out /tmp/resume_check

Builds a tiny random log (80 users, 40 items), runs seq_run.py for 4 epochs unbroken, then again cut by a STOP file
after epoch 1, resumed to a 2-epoch cap, and resumed to 4; prints both validation curves and whether the test ranks
and top-10 lists are identical (they must be: the resume restores weights, Adam state, RNG and loop state). Needs
the RecTools venv, so it is not a unit test (tests/core/test_bench_peer_resume.py checks seq_resume itself).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args()
    (args.out / "seq").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    lens = rng.integers(6, 15, size=80)
    offsets = np.concatenate([[0], np.cumsum(lens)])
    np.savez(args.out / "seq/seq.npz", offsets=offsets, items=rng.integers(1, 41, size=offsets[-1]), n_items=40)

    def run(name: str, epochs: int) -> None:
        subprocess.run([sys.executable, str(HERE / "seq_run.py"), "--data", str(args.out / "seq"), "--model", "sasrec",
                        "--max-len", "20", "--batch-size", "16", "--patience", "50", "--max-epochs", str(epochs),
                        "--out", str(args.out / name)], check=True, capture_output=True)

    cut = args.out / "cut"
    for folder in (args.out / "whole", cut):
        for f in ("result.json", "resume.npz", "progress.json", "STOP"):
            (folder / f).unlink(missing_ok=True)
    run("whole", 4)
    cut.mkdir(exist_ok=True)
    (cut / "STOP").touch()
    run("cut", 4)  # stops after epoch 1
    (cut / "STOP").unlink()
    for epochs in (2, 4):  # resumed twice: once to a 2-epoch cap, then on to 4
        (cut / "result.json").unlink()
        run("cut", epochs)
    a, b = (json.loads((args.out / n / "result.json").read_text()) for n in ("whole", "cut"))
    for x, y in zip(a["history"], b["history"], strict=True):
        print(f"epoch {x['epoch']}: valid NDCG@10 exclude_seen {x['valid_ndcg10_exclude_seen']:.6f} unbroken, "
              f"{y['valid_ndcg10_exclude_seen']:.6f} resumed")
    same = all(a["test"][p]["ranks"] == b["test"][p]["ranks"] and a["test"][p]["top"] == b["test"][p]["top"]
               for p in a["test"])
    print(f"resumed at epochs {b['resumed_at']}; test ranks and top-10 identical: {same}")
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
