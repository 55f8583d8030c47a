"""InterestLens's runs for bench/peers.py: `interestlens train` defaults, one run per seed, both protocols.

Each run trains with the same defaults `interestlens train` uses (`core.train.default_configs`, the documented
rule that adapts them to the log), one CPU thread, CPU seconds. Training validates under both protocols in one
scoring pass per epoch; the model each protocol's validation selects is tested under that protocol only (so the
epoch is never picked on one protocol and reported on the other). The validation-selected models along the way are
kept on disk (`data/cache/peers/<size>/ours-<seed>/snaps/`) so that the time to reach a peer's test NDCG@10 can be
read afterwards (test never steers training: the snapshots are chosen by validation alone).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from safetensors.torch import load_file, save_file

from core.evaluate import PROTOCOLS, evaluate_split_protocols, model_scorer
from core.train import TrainConfig, train

__all__ = ["run_ours", "time_to_reach"]

SNAP_STEP = 0.02  # keep a snapshot when a protocol's validation NDCG@10 beats the last kept one by 2 % (relative)


def run_ours(db: Path, seed: int, work: Path, seqs, split, n_items: int, configs) -> dict:
    """Train one seed from scratch (a killed run restarts: its snapshots must be complete); returns the figures."""
    mcfg, tcfg0 = configs
    out = work / f"ours-{seed}"
    if out.exists():
        shutil.rmtree(out)
    snaps_dir = out / "snaps"
    snaps_dir.mkdir(parents=True)
    best_valid = {p: -1.0 for p in PROTOCOLS}
    best_state: dict[str, dict] = {}
    best_epoch = {p: 0 for p in PROTOCOLS}
    kept = {p: -1.0 for p in PROTOCOLS}
    curve: dict[str, list[dict]] = {p: [] for p in PROTOCOLS}

    def on_epoch(rep) -> None:
        for p, m in rep.valid_protocols.items():
            v = m["NDCG@10"]
            if v > best_valid[p]:
                best_valid[p], best_epoch[p] = v, rep.epoch
                best_state[p] = {k: t.detach().clone() for k, t in rep.model.state_dict().items()}
                if v >= kept[p] * (1 + SNAP_STEP):
                    kept[p] = v
                    name = f"{p}-{rep.epoch:04d}.safetensors"
                    save_file({k: t.contiguous() for k, t in best_state[p].items()}, str(snaps_dir / name))
                    curve[p].append({"epoch": rep.epoch, "seconds": rep.seconds, "valid_ndcg10": v, "file": name})

    tcfg = TrainConfig(**{**tcfg0.to_dict(), "seed": seed, "num_threads": 1, "device": "cpu", "clock": "process"})
    t0 = time.perf_counter()
    res = train(db, out / "model", mcfg, tcfg, on_epoch)
    wall = time.perf_counter() - t0
    from core.checkpoint import load_checkpoint

    loaded = load_checkpoint(out / "model")
    test = {}
    for p in PROTOCOLS:  # each protocol's own validation-selected model, tested under that protocol
        loaded.model.load_state_dict(best_state[p])
        m, _ = evaluate_split_protocols(model_scorer(loaded.model.eval()), seqs, split, "test", mcfg.max_len,
                                        n_items, protocols=(p,))[p]
        test[p] = {**m, "best_epoch": best_epoch[p], "valid_ndcg10": best_valid[p]}
    (out / "curve.json").write_text(json.dumps(curve))
    return {"test": test, "train_seconds": res.seconds, "wall_seconds": wall, "epochs": res.epochs,
            "stopped": res.stopped, "curve": curve, "seen": loaded.card.get("seen"),
            "model_config": mcfg.to_dict() if hasattr(mcfg, "to_dict") else str(mcfg),
            "train_config": tcfg.to_dict(), "snaps": str(snaps_dir)}


def time_to_reach(run: dict, protocol: str, target: float, seqs, split, n_items: int, max_len: int,
                  model_dir: Path) -> dict:
    """CPU seconds until the validation-selected model first reaches `target` test NDCG@10 under `protocol`.

    Walks the run's snapshots in training order (test is read only here, after training) and stops at the first
    that reaches the target; {"seconds": None} when none does.
    """
    from core.checkpoint import load_checkpoint

    loaded = load_checkpoint(model_dir)
    for point in run["curve"][protocol]:
        loaded.model.load_state_dict(load_file(str(Path(run["snaps"]) / point["file"])))
        m, _ = evaluate_split_protocols(model_scorer(loaded.model.eval()), seqs, split, "test", max_len, n_items,
                                        protocols=(protocol,))[protocol]
        if m["NDCG@10"] >= target:
            return {"seconds": point["seconds"], "epoch": point["epoch"], "NDCG@10": m["NDCG@10"]}
    return {"seconds": None}
