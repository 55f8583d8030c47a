"""The training loop: full-softmax next-item cross-entropy, AdamW with warm-up, early stopping on validation
NDCG@10, checkpoints that resume, and DistributedDataParallel under torchrun."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel as DDP

from core.checkpoint import WEIGHT_DERIVED, save_checkpoint
from core.errors import InterestLensError, UserInputError
from core.evaluate import (
    decide_seen,
    evaluate_split,
    evaluate_split_protocols,
    make_split,
    model_scorer,
    repeat_share,
)
from core.model import InterestModel, ModelConfig, ModelSizes
from core.sequences import build_vocab, data_fingerprint, load_sequences
from core.store import connect_read
from core.train.config import EpochReport, TrainConfig, TrainResult
from core.train.data import epoch_batches, train_batch, training_windows
from core.train.defaults import adapt_defaults, profile
from core.train.distributed import LossModule, broadcast_flag, setup_distributed, teardown_distributed
from core.train.state import load_resume, load_state_tensors, state_tensors

__all__ = ["train", "make_optimizer"]

log = logging.getLogger(__name__)

Progress = Callable[[EpochReport], None]


def make_optimizer(model: InterestModel, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices and embeddings only (biases, norms and 1-d parameters excluded)."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    rest = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.98))


def train(
    db: str | os.PathLike | None,
    out: str | os.PathLike,
    model_config: ModelConfig | None = None,
    config: TrainConfig | None = None,
    progress: Progress | None = None,
    *,
    resume: bool = False,
) -> TrainResult:
    """Train an interest model on the events in `db` and save the best epoch's checkpoint to `out`.

    With `resume`, training continues from the resume state saved in `out` (its model config and vocabulary win
    over `model_config`); the data must be unchanged. Under torchrun every process calls this; only rank 0
    validates, saves and reports progress.
    """
    config = config or TrainConfig()
    ctx = setup_distributed(config.device)
    try:
        result = _train(Path(db) if db is not None else None, Path(out), model_config, config, progress, resume, ctx)
        if ctx.world > 1:  # leave together: rank 0 still tests and saves, and gloo may abort a process that tears
            torch.distributed.barrier()  # its group down while a peer is connected (seen once in a clean-clone run)
        return result
    finally:
        teardown_distributed(ctx)


def _train(db, out: Path, model_config, config: TrainConfig, progress, resume: bool, ctx) -> TrainResult:
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    prior = load_resume(out) if resume else None
    if resume and prior is None:
        log.warning("Nothing to resume in %s; training from scratch.", out)
    with connect_read(db) as con:
        fingerprint = data_fingerprint(con)
        vocab = prior[0].vocab if prior else build_vocab(con)
        seqs = load_sequences(con, vocab)
    if prior and prior[0].fingerprint and prior[0].fingerprint != fingerprint:
        raise InterestLensError(f"The database changed since {out} was trained, so it cannot resume; train without --resume.")
    mcfg = prior[0].config if prior else (model_config or ModelConfig())
    text = None
    if config.text or mcfg.text_dim:
        from core.semantic import text_for_training  # optional feature, imported only when asked for

        mcfg, text = text_for_training(db, mcfg)
    split = make_split(seqs, config.split, config.valid_share, config.test_share)
    windows = training_windows(seqs, split, mcfg.max_len)
    seen = decide_seen(config.seen, repeat_share(seqs, split.train_end))  # training events only, never the targets
    data_profile = None
    if config.adapt_defaults and not prior:  # a resumed run keeps the configuration it was saved with
        data_profile = profile(seqs, split.train_end, len(split.targets("valid")[0]), vocab.n_items)
        mcfg, config = adapt_defaults(data_profile, mcfg, config, frozenset(config.explicit))
        windows = training_windows(seqs, split, mcfg.max_len)
    valid_rows, _ = split.targets("valid")
    if len(windows) == 0 or len(valid_rows) == 0:
        raise UserInputError("There are too few events to train: users need at least 3 events each (2 held out).")
    sizes = ModelSizes(
        vocab.n_items, len(vocab.categories), len(vocab.event_types), tuple(len(v) for v in vocab.context.values())
    )
    torch.manual_seed(config.seed)
    model = InterestModel(mcfg, sizes, vocab.category_weights() if sizes.n_categories else None).to(ctx.device)
    if text is not None:
        from core.semantic import attach_text

        attach_text(model, vocab, text)
    opt = make_optimizer(model, config)
    card_state: dict = dict(prior[0].card.get("resume", {})) if prior else {}
    if prior:
        load_state_tensors(model, opt, prior[1])
    best = InterestModel(mcfg, sizes, vocab.category_weights() if sizes.n_categories else None)  # best weights, CPU
    best.load_state_dict(prior[0].model.state_dict() if prior else model.state_dict())
    n_neg = config.n_negatives if sizes.n_items > config.sampled_softmax_above else None
    net: torch.nn.Module = LossModule(model, n_neg)
    if ctx.world > 1:
        net = DDP(net, find_unused_parameters=True)  # the `empty` state and unknown-group vectors get no gradient
    rng_valid = np.random.default_rng(config.seed)
    limit = None
    if len(valid_rows) > config.max_valid_users:
        limit = np.sort(rng_valid.choice(valid_rows, config.max_valid_users, replace=False))
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16) if ctx.device.type == "cuda" and config.bf16 else contextlib.nullcontext()
    )
    epoch = int(card_state.get("epoch", 0))
    step = int(card_state.get("step", 0))
    best_epoch = int(card_state.get("best_epoch", 0))
    best_score = float(card_state.get("best_score", -1.0))
    bad = int(card_state.get("bad_epochs", 0))
    seconds0 = float(card_state.get("seconds", 0.0))
    history: list[dict] = list(card_state.get("history", []))
    best_valid: dict = dict(prior[0].card.get("valid", {})) if prior else {}
    stopped = "max_epochs"
    clock = time.process_time if config.clock == "process" else time.perf_counter
    t0 = clock()
    last_save = time.perf_counter()

    def elapsed() -> float:
        return seconds0 + clock() - t0

    def save(final: bool = False, test: dict | None = None) -> None:
        resume_state = {"epoch": epoch, "step": step, "best_epoch": best_epoch, "best_score": best_score,
                        "bad_epochs": bad, "seconds": elapsed(), "history": history}
        card = {
            "device": str(ctx.device), "epochs": epoch, "best_epoch": best_epoch, "seconds": round(elapsed(), 3),
            "valid": best_valid, "test": test or {}, "split": split.describe(), "seen": seen.to_dict(),
            "defaults": {"rule": "core.train.defaults", "profile": data_profile.to_dict()} if data_profile else None,
            "trained_until": split.describe().get("trained_until"), "stopped": stopped if final else "running",
            "train_config": config.to_dict(), "processes": ctx.world,
            "data": {"users": int(seqs.n_users), "items": int(sizes.n_items), "events": int(len(seqs.items)),
                     "train_windows": len(windows), "train_targets": windows.n_targets},
            "parameters": int(sum(p.numel() for p in model.parameters())), "resume": resume_state,
        }
        save_checkpoint(out, best.eval(), vocab, fingerprint, card, extra_tensors=state_tensors(model, opt),
                        drop=WEIGHT_DERIVED)

    try:
        while epoch < config.epochs:
            epoch += 1
            torch.manual_seed(config.seed * 100_003 + epoch * 101 + ctx.rank)  # dropout; differs per process
            model.train()
            losses = []
            over_budget = over_steps = False
            epoch_t0, epoch_c0 = time.perf_counter(), time.process_time()
            batches = epoch_batches(windows, config.batch_size, np.random.default_rng([config.seed, epoch]),
                                    ctx.rank, ctx.world)
            for idx in batches:
                batch, targets = train_batch(seqs, windows.lo[idx], windows.hi[idx])
                batch, targets = batch.to(ctx.device), targets.to(ctx.device)
                for g in opt.param_groups:
                    g["lr"] = config.lr * min(1.0, (step + 1) / max(1, config.warmup))
                with autocast:
                    loss = net(batch.items, batch.gaps, batch.event_types, batch.context, batch.mask, targets)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if config.grad_clip:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                opt.step()
                step += 1
                losses.append(float(loss.detach()))
                if config.time_budget is not None and elapsed() >= config.time_budget:
                    over_budget = True
                    break
                if config.max_steps is not None and step >= config.max_steps:
                    over_steps = True
                    break
            improved, stop = False, False
            valid: dict = {}
            train_s = time.perf_counter() - epoch_t0  # wall seconds of this epoch's optimiser steps
            train_cpu = time.process_time() - epoch_c0  # CPU seconds of the same (this process, all threads)
            if ctx.is_main:
                model.eval()
                both = evaluate_split_protocols(model_scorer(model, ctx.device), seqs, split, "valid", mcfg.max_len,
                                                sizes.n_items, limit)  # one scoring pass, both protocols
                valid = both[seen.protocol][0]
                score = valid["NDCG@10"]
                improved = score > best_score + config.min_delta or best_epoch == 0
                if improved:
                    best_score, best_epoch, bad, best_valid = score, epoch, 0, valid
                    best.load_state_dict({k: v.detach().cpu() for k, v in model.state_dict().items()})
                else:
                    bad += 1
                history.append({"epoch": epoch, "loss": float(np.mean(losses)) if losses else math.nan,
                                "valid_ndcg10": score, "valid_hr10": valid["HR@10"], "seconds": round(elapsed(), 3),
                                **{f"valid_ndcg10_{p}": m["NDCG@10"] for p, (m, _) in both.items()},
                                "train_seconds": round(train_s, 3), "steps": len(losses), "epoch_steps": len(batches),
                                "train_cpu_seconds": round(train_cpu, 3),
                                "valid_seconds": round(time.perf_counter() - epoch_t0 - train_s, 3)})
                if bad >= config.patience:
                    stop, stopped = True, "early_stopping"
                if over_budget or (config.time_budget is not None and elapsed() >= config.time_budget):
                    stop, stopped = True, "time_budget"
                if over_steps or (config.max_steps is not None and step >= config.max_steps):
                    stop, stopped = True, "max_steps"
                if progress is not None:
                    progress(EpochReport(epoch, config.epochs, history[-1]["loss"], valid, elapsed(), improved,
                                         best_epoch, model, {p: m for p, (m, _) in both.items()}))
                if improved or time.perf_counter() - last_save >= config.checkpoint_every:
                    save()
                    last_save = time.perf_counter()
            if broadcast_flag(ctx, stop):
                break
    except KeyboardInterrupt:
        if ctx.is_main and best_epoch:
            stopped = "interrupted"
            save()
            log.warning("Interrupted; the resume state is saved in %s (use --resume).", out)
        raise
    seconds = elapsed()
    test: dict = {}
    if ctx.is_main:
        best.to(ctx.device).eval()
        test, _ = evaluate_split(model_scorer(best, ctx.device), seqs, split, "test", mcfg.max_len, sizes.n_items,
                                 protocol=seen.protocol)
        best.cpu()
        save(final=True, test=test)
        if text is not None:
            from core.semantic import VECTORS_FILE, write_vectors

            write_vectors(text, out / VECTORS_FILE)
    return TrainResult(epoch, round(seconds, 3), best_epoch, best_valid, str(ctx.device), test, str(out), stopped)
