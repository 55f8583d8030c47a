"""Language-model item semantics on MovieLens-100k: accuracy with and without text, cold start, encoding time, size.

    python bench/semantic.py [--epochs 5] [--batch-size 256] [--lr 3e-3] [--seed 0] [--holdout 0.2]
                             [--text-id-dropout 0.25] [--stages install_size,encode,full_plain,...]

Stages (each saved as it finishes in bench/results/semantic-ml100k.json; a rerun skips finished ones, --fresh
redoes them):
- install_size: on-disk size of the distributions the `semantic` extra adds to the base install (the requirement
  closure of `interestlens[semantic]` minus that of `interestlens`, each distribution's RECORD files summed).
- encode: loading all-MiniLM-L6-v2 on the CPU, encoding every item text and term from scratch, and reading the
  fingerprinted cache back.
- full_plain / full_text / full_text_iddrop: the same model and training config and seed, without text, with text
  (text_id_dropout 0) and with text and `--text-id-dropout`; test NDCG@10 / HR@10 by the trainer's protocol
  (leave-one-out, full ranking, seen items excluded).
- cold_plain / cold_text / cold_text_iddrop: a seeded `--holdout` share of the movies is held out of training entirely; each model
  is trained on the rest, its catalogue extended with the held-out movies, and the users whose last rating is on
  one are ranked over the whole catalogue (ties broken at random, exactly; see core/semantic/coldstart.py).
Data and models go to data/cache/semantic-bench/ (ignored by git).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import shutil
import sys
import time
from importlib import metadata
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Results  # noqa: E402
from core.model import ModelConfig  # noqa: E402
from core.train import TrainConfig, train  # noqa: E402

WORK = Path("data") / "cache" / "semantic-bench"
STAGES = ("install_size", "encode", "full_plain", "full_text", "full_text_iddrop", "cold_plain", "cold_text",
          "cold_text_iddrop")
log = logging.getLogger("bench.semantic")


def _requirements(dist: str, extras: set[str]) -> set[str]:
    from packaging.requirements import Requirement

    out = set()
    for text in metadata.requires(dist) or []:
        req = Requirement(text)
        envs = [{"extra": e} for e in (extras or {""})]
        if req.marker is None or any(req.marker.evaluate(env) for env in envs):
            out.add((req.name, frozenset(req.extras)))
    return out


def _closure(dist: str, extras: set[str]) -> set[str]:
    from packaging.utils import canonicalize_name

    seen: set[str] = set()
    todo = [(dist, frozenset(extras))]
    while todo:
        name, ex = todo.pop()
        key = canonicalize_name(name)
        try:
            reqs = _requirements(name, set(ex))
        except metadata.PackageNotFoundError:
            continue
        if key in seen and not ex:
            continue
        seen.add(key)
        todo += list(reqs)
    return seen


def install_size() -> dict:
    base = _closure("interestlens", set())
    full = _closure("interestlens", {"semantic"})
    added = sorted(full - base)
    sizes = {}
    for name in added:
        dist = metadata.distribution(name)
        sizes[name] = sum((Path(dist.locate_file(f)).stat().st_size for f in dist.files or []
                           if Path(dist.locate_file(f)).is_file()), 0)
    total = sum(sizes.values())
    return {"packages": {k: round(v / 2**20, 1) for k, v in sizes.items()}, "total_mib": round(total / 2**20, 1),
            "method": "sum of RECORD file sizes of the distributions in closure(interestlens[semantic]) - closure(interestlens)"}


def encode(db: Path) -> dict:
    from core.semantic import default_vectors_path, encode_items, load_encoder

    t0 = time.perf_counter()
    enc = load_encoder("cpu")
    load_s = time.perf_counter() - t0
    default_vectors_path(db).unlink(missing_ok=True)
    tv = encode_items(db, enc, batch_size=64)
    t0 = time.perf_counter()
    again = encode_items(db, enc)
    cached_s = time.perf_counter() - t0
    return {"device": "cpu", "threads": torch.get_num_threads(), "items": len(tv.item_ids), "terms": len(tv.terms),
            "texts_encoded": tv.encoded, "encode_seconds": round(tv.seconds, 2), "load_seconds": round(load_s, 2),
            "items_per_second": round(tv.encoded / tv.seconds, 1), "cached_rerun_seconds": round(cached_s, 3),
            "cached_rerun_encoded": again.encoded, "example_text": tv.texts[0]}


def _train(db: Path, out: Path, text: bool, args, id_dropout: float = 0.0) -> dict:
    mcfg = ModelConfig(max_len=args.max_len, text_id_dropout=id_dropout)
    tcfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, warmup=20, seed=args.seed,
                       device="cpu", num_threads=args.threads, text=text)
    t0 = time.perf_counter()
    res = train(db, out, mcfg, tcfg)
    return {"model_config": dataclasses.asdict(mcfg), "train_config": tcfg.to_dict(), "epochs": res.epochs,
            "best_epoch": res.best_epoch, "stopped": res.stopped, "wall_seconds": round(time.perf_counter() - t0, 1),
            "valid": res.valid, "test": res.test}


def cold(db: Path, text: bool, args, id_dropout: float = 0.0) -> dict:
    from core.checkpoint import load_checkpoint
    from core.semantic import (
        cold_start_ranks,
        cold_start_targets,
        default_vectors_path,
        encode_items,
        extend_catalogue,
        held_out_items,
        without_items,
    )
    from core.sequences import load_sequences
    from core.store import connect_read, item_lookup

    with connect_read(db) as con:
        ids = [r[0] for r in con.execute("SELECT item_id FROM items ORDER BY item_id").fetchall()]
    held = held_out_items(ids, args.holdout, args.seed)
    train_db = WORK / f"cold-{args.holdout}-{args.seed}.duckdb"
    if not train_db.exists():
        without_items(db, train_db, held)
    cache = default_vectors_path(train_db)
    cache.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(default_vectors_path(db), cache)  # same items table, same texts: the cache is fresh there
    out = WORK / "models" / f"cold-{'text' if text else 'plain'}-{id_dropout}"
    figures = _train(train_db, out, text, args, id_dropout)
    loaded = load_checkpoint(out)
    tv = encode_items(db)
    with connect_read(db) as con:
        cats = item_lookup(con, held)
    cat_of = dict(zip(cats["item_id"], cats["categories"], strict=True))
    grown = extend_catalogue(loaded, held, tv, [cat_of.get(i, []) for i in held])
    with connect_read(db) as con:
        seqs = load_sequences(con, grown.vocab)
    rows, targets = cold_start_targets(seqs, loaded.vocab.n_items + 1)
    ranks = cold_start_ranks(grown, seqs, rows, targets)
    figures.update({"held_out_items": len(held), "catalogue": grown.vocab.n_items, "cold_users": int(len(rows)),
                    "cold_HR@10": ranks.hit_rate(10), "cold_NDCG@10": ranks.ndcg(10), "cold_HR@50": ranks.hit_rate(50),
                    "cold_median_items_above": float(torch.tensor(ranks.greater).float().median())})
    return figures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--max-len", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--holdout", type=float, default=0.2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--text-id-dropout", type=float, default=0.25, help="ModelConfig.text_id_dropout of *_iddrop stages")
    ap.add_argument("--stages", default=",".join(STAGES))
    ap.add_argument("--fresh", action="store_true", help="redo the listed stages even if already recorded")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    res = Results("semantic", "ml100k")  # other stages' figures are kept; --fresh redoes only the listed ones
    res.set("args", vars(args))
    WORK.mkdir(parents=True, exist_ok=True)
    db = WORK / "ml100k.duckdb"
    if not db.exists():
        from core.datasets import build_movielens_100k

        build_movielens_100k(db)
    for stage in args.stages.split(","):
        key = stage  # *_iddrop stages at another --text-id-dropout than 0.25 are recorded under their own key
        if stage.endswith("_iddrop") and args.text_id_dropout != 0.25:
            key = f"{stage}{args.text_id_dropout}"
        if res.done(key) and not args.fresh:
            print(f"{key}: done already", res.get(key))
            continue
        if stage == "install_size":
            figures = install_size()
        elif stage == "encode":
            figures = encode(db)
        elif stage.startswith("full_"):
            drop = args.text_id_dropout if stage.endswith("_iddrop") else 0.0
            figures = _train(db, WORK / "models" / stage, "_text" in stage, args, drop)
        elif stage.startswith("cold_"):
            figures = cold(db, "_text" in stage, args, args.text_id_dropout if stage.endswith("_iddrop") else 0.0)
        else:
            raise SystemExit(f"unknown stage {stage!r}; expected {', '.join(STAGES)}")
        figures["load_average_1m"] = round(os.getloadavg()[0], 1)  # this 2-core machine is shared: context
        res.stage(key, figures)
        shown = {k: v for k, v in figures.items() if k not in ("model_config", "train_config", "valid")}
        if "test" in shown:
            shown["test"] = {k: round(shown["test"][k], 4) for k in ("NDCG@10", "HR@10")}
        print(f"{key}: {shown}", flush=True)
    print(f"wrote {res.path}")


if __name__ == "__main__":
    main()
