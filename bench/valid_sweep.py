"""Validation-only look at one training setting: NDCG@10 on the validation targets after every epoch.

    python bench/valid_sweep.py --db data/toys.duckdb --epochs 8 --set max_len=20 --set dropout=0.1
    python bench/valid_sweep.py --db data/toys.duckdb --epochs 6 --rule --set repeat_term=true

How the defaults rule (core.train.defaults) was chosen (docs/accuracy.md): each setting trained from the plain
`ModelConfig` / `TrainConfig` defaults (or, with `--rule`, from what the defaults rule gives the log) plus the
`--set` overrides (model fields or training fields, by name), one
CPU thread, CPU seconds; it prints one line per epoch with both protocols' validation NDCG@10 and the 1-minute
load. The test targets are never printed: a setting is compared on validation only. Writes nothing to
bench/results (the checkpoint goes to a scratch folder, `--out`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.model import ModelConfig  # noqa: E402
from core.train import TrainConfig, train  # noqa: E402


def parse_sets(pairs: list[str]) -> tuple[dict, dict]:
    """`name=value` pairs split into ModelConfig and TrainConfig overrides (values read as JSON, else text)."""
    model, tr = {}, {}
    for pair in pairs:
        name, _, raw = pair.partition("=")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        if name in ModelConfig.__dataclass_fields__:
            model[name] = value
        elif name in TrainConfig.__dataclass_fields__:
            tr[name] = value
        else:
            raise SystemExit(f"{name} is neither a ModelConfig nor a TrainConfig field.")
    return model, tr


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", required=True, type=Path)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--set", action="append", default=[], help="name=value, a ModelConfig or TrainConfig field")
    ap.add_argument("--out", type=Path, default=None, help="scratch checkpoint folder (default: a temporary one)")
    ap.add_argument("--rule", action="store_true",
                    help="start from the defaults rule (core.train.defaults, as `interestlens train`); --set wins")
    args = ap.parse_args()
    model, tr = parse_sets(args.set)
    mcfg = ModelConfig(**model)
    rule = {"adapt_defaults": True, "explicit": tuple(sorted({*model, *tr}))} if args.rule else {}
    tcfg = TrainConfig(**{"epochs": args.epochs, "clock": "process", "num_threads": 1, "device": "cpu",
                          "fit_interest": False, "checkpoint_every": 1e9, **rule, **tr})

    def progress(r) -> None:
        v = r.valid_protocols
        print(f"epoch {r.epoch} loss {r.loss:.3f} valid NDCG@10 exclude_seen {v['exclude_seen']['NDCG@10']:.4f} "
              f"all_items {v['all_items']['NDCG@10']:.4f} cpu_s {r.seconds:.0f} load1 {os.getloadavg()[0]:.1f}",
              flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        res = train(args.db, args.out or Path(tmp) / "model", mcfg, tcfg, progress)
    print(f"best epoch {res.best_epoch} valid NDCG@10 {res.valid['NDCG@10']:.4f} (the seen rule's protocol)")


if __name__ == "__main__":
    main()
