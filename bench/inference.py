"""Inference latency: one user's 200-event history -> per-step states, gate and attention, and the top-10 scores.

    python bench/inference.py [--model DIR] [--events 200] [--n 200] [--threads 1]

Without --model, a default-config model (`ModelConfig()`) is built over a MovieLens-100k-sized catalogue (1,682
items, 19 categories, random weights: latency does not depend on the weights). Prints p50 / p95 in milliseconds
and writes bench/results/inference-<events>.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Results, percentiles, time_calls  # noqa: E402
from core.model import InterestModel, ModelConfig, ModelSizes  # noqa: E402
from core.sequences import History, make_batch  # noqa: E402


def build(model_dir: str | None) -> tuple[InterestModel, int, int]:
    if model_dir:
        from core.checkpoint import load_checkpoint

        loaded = load_checkpoint(model_dir)
        return loaded.model, loaded.sizes.n_items, len(loaded.vocab.context)
    sizes = ModelSizes(n_items=1682, n_categories=19, n_event_types=1)
    w = torch.zeros(sizes.n_items + 1, sizes.n_categories)
    g = torch.Generator().manual_seed(0)
    w[torch.arange(1, sizes.n_items + 1), torch.randint(0, sizes.n_categories, (sizes.n_items,), generator=g)] = 1.0
    torch.manual_seed(0)
    return InterestModel(ModelConfig(), sizes, w).eval(), sizes.n_items, 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--events", type=int, default=200)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model, n_items, k = build(args.model)
    rng = np.random.default_rng(0)
    ts = np.cumsum(rng.integers(1, 86_400, args.events))
    history = History.from_arrays(rng.integers(1, n_items + 1, args.events), ts, np.ones(args.events, np.int64), k=k)

    def call() -> None:
        with torch.no_grad():
            batch = make_batch([history], model.config.max_len, n_context=k)
            enc = model.encode(batch, return_attention=True)  # states, long, short, gate [1,T], attention per layer
            per_step = model.readout(enc, batch, per_step=True)  # [1,T,D]
            torch.topk(model.score(per_step[:, -1]), 10)

    ms = time_calls(call, args.n, warmup=5)
    stats = percentiles(ms)
    res = Results("inference", str(args.events), resume=False)
    res.stage("encode_explain_topk", {**stats, "threads": args.threads, "max_len": model.config.max_len,
                                      "model": args.model or "default ModelConfig(), random weights"})
    print(f"one {args.events}-event history, states + gate + attention + top-10, {args.threads} thread(s): "
          f"p50 {stats['p50']:.1f} ms, p95 {stats['p95']:.1f} ms (n={stats['n']})")


if __name__ == "__main__":
    main()
