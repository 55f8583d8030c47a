"""The training loop: full-softmax next-item cross-entropy, AdamW with warm-up, early stopping on validation
NDCG@10, checkpoints that resume, and DistributedDataParallel under torchrun; with or without the social branch
(`TrainConfig.social`: friends' state timelines recomputed from the live weights before every epoch and validation,
and from the best weights for the test).

`train` = `setup` (core.train.setup), then per epoch `run_epoch` → `validate` → `checkpoint`, then the test of the
best epoch's weights. Only rank 0 validates and saves; the other ranks learn from it whether to stop.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from core.checkpoint import WEIGHT_DERIVED, save_checkpoint
from core.evaluate import evaluate_split, evaluate_split_protocols, model_scorer
from core.friends.states import compute_timelines
from core.model import ModelConfig
from core.train.config import EpochReport, TrainConfig, TrainResult
from core.train.data import epoch_batches, train_batch
from core.train.distributed import DistContext, broadcast_flag, setup_distributed, teardown_distributed
from core.train.records import EpochRecord, ResumeState, StopReason
from core.train.setup import TrainingRun, setup
from core.train.state import state_tensors

__all__ = ["train"]

log = logging.getLogger(__name__)

Progress = Callable[[EpochReport], None]


@dataclass(frozen=True)
class Clock:
    """Training seconds across resumes: the earlier runs' seconds plus this run's, on the configured clock."""

    before: float  # seconds of the runs this one resumes
    now: Callable[[], float]  # time.perf_counter (wall) or time.process_time (this process's CPU)
    start: float  # `now()` when this run's first epoch began

    @classmethod
    def started(cls, before: float, kind: Literal["wall", "process"]) -> Clock:
        now = time.process_time if kind == "process" else time.perf_counter
        return cls(before, now, now())

    def elapsed(self) -> float:
        return self.before + self.now() - self.start


@dataclass(frozen=True)
class EpochSteps:
    """What one epoch's optimiser steps did (`run_epoch`)."""

    losses: list[float]  # the loss of each step taken
    epoch_steps: int  # steps a whole epoch has (this process's share)
    train_seconds: float  # wall seconds of the steps
    train_cpu_seconds: float  # CPU seconds of the steps (this process, all threads)
    ended: float  # time.perf_counter() after the last step, from which validation is timed
    cut_short: StopReason | None  # "time_budget" or "max_steps" when a budget ended the epoch early, else None


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
        if ctx.world > 1:  # leave together: rank 0 still tests and saves, and gloo may abort a process that
            torch.distributed.barrier()  # tears its group down while a peer is still connected
        return result
    finally:
        teardown_distributed(ctx)


def _train(
    db: Path | None,
    out: Path,
    model_config: ModelConfig | None,
    config: TrainConfig,
    progress: Progress | None,
    resume: bool,
    ctx: DistContext,
) -> TrainResult:
    run, state, best_valid = setup(db, out, model_config, config, resume, ctx)
    config = run.config  # with the defaults rule applied (core.train.defaults)
    stopped: StopReason = "max_epochs"
    clock = Clock.started(state.seconds, config.clock)
    last_save = time.perf_counter()
    try:
        while state.epoch < config.epochs:
            state.epoch += 1
            steps = run_epoch(run, state, clock)
            stop = False
            if ctx.is_main:
                record, by_protocol, improved = validate(run, state, steps, clock)
                valid = by_protocol[run.seen.protocol]
                if improved:
                    best_valid = valid
                reason = stop_reason(config, state, steps, clock)
                if reason is not None:
                    stop, stopped = True, reason
                if progress is not None:
                    progress(EpochReport(state.epoch, config.epochs, record.loss, valid, clock.elapsed(), improved,
                                         state.best_epoch, run.model, by_protocol))
                if improved or time.perf_counter() - last_save >= config.checkpoint_every:
                    checkpoint(run, state, clock, best_valid, "running")
                    last_save = time.perf_counter()
            if broadcast_flag(ctx, stop):
                break
    except KeyboardInterrupt:
        if ctx.is_main and state.best_epoch:
            checkpoint(run, state, clock, best_valid, "running")
            log.warning("Interrupted; the resume state is saved in %s (train again with resume to go on).", out)
        raise
    seconds = clock.elapsed()
    test: dict[str, float] = {}
    if ctx.is_main:
        run.best.to(ctx.device).eval()
        test, _ = evaluate_split(model_scorer(run.best, ctx.device), run.seqs, run.split, "test",
                                 run.model_config.max_len, run.sizes.n_items, protocol=run.seen.protocol,
                                 prepare=_friends(run, run.best))
        interest = _interest_card(run) if run.config.fit_interest else None
        run.best.cpu()
        checkpoint(run, state, clock, best_valid, stopped, test, interest)
        if run.text is not None:
            from core.semantic import VECTORS_FILE, write_vectors

            write_vectors(run.text, out / VECTORS_FILE)
    return TrainResult(state.epoch, round(seconds, 3), state.best_epoch, best_valid, str(ctx.device), test, str(out),
                       stopped, run.social is not None)


def _friends(run: TrainingRun, model: torch.nn.Module, step: int | None = None):
    """The evaluation hook filling a batch's friends' states from `model`'s timelines (refreshed now; `step`: the
    optimiser step of the live weights, None for other weights), or None without the social branch."""
    if run.social is None:
        return None
    run.social.timelines = compute_timelines(model, run.seqs, device=run.ctx.device)
    run.social.step = step
    return run.social.prepare


def missed_epochs(history: list[EpochRecord], min_delta: float) -> int:
    """Epochs in `history` whose validation NDCG@10 did not improve on the best before them (as `validate` decides,
    the first epoch always improves); `TrainConfig.lr_decay` is applied once per such epoch. Read from the history,
    so a resumed run continues at the same rate."""
    best, missed = -math.inf, 0
    for i, rec in enumerate(history):
        if i == 0 or rec.valid_ndcg10 > best + min_delta:
            best = rec.valid_ndcg10
        else:
            missed += 1
    return missed


def run_epoch(run: TrainingRun, state: ResumeState, clock: Clock) -> EpochSteps:
    """One pass of optimiser steps over this process's share of the training windows (epoch `state.epoch`).

    Stops early, mid-epoch, when the time budget or the step budget runs out; counts steps into `state.step`.
    """
    config, ctx, model, opt = run.config, run.ctx, run.model, run.opt
    torch.manual_seed(config.seed * 100_003 + state.epoch * 101 + ctx.rank)  # dropout; differs per process
    model.train()
    lr_scale = config.lr_decay ** missed_epochs(state.history, config.min_delta)
    losses: list[float] = []
    cut_short: StopReason | None = None
    t0, c0 = time.perf_counter(), time.process_time()
    batches = epoch_batches(run.windows, config.batch_size, np.random.default_rng([config.seed, state.epoch]),
                            ctx.rank, ctx.world)
    if run.social is not None and run.social.step != state.step:  # friends' states from this epoch's starting
        run.social.timelines = compute_timelines(model, run.seqs, device=ctx.device)  # weights, no gradient
        run.social.step = state.step
    for idx in batches:
        lo, hi = run.windows.lo[idx], run.windows.hi[idx]
        batch, targets = train_batch(run.seqs, lo, hi)
        if run.social is not None:
            batch = run.social.prepare(batch, lo, hi)
        batch, targets = batch.to(ctx.device), targets.to(ctx.device)
        social = ((batch.social.states, batch.social.present, batch.social.friends, batch.social.recent)
                  if batch.social else ())  # fmt: skip
        for g in opt.param_groups:
            g["lr"] = config.lr * min(1.0, (state.step + 1) / max(1, config.warmup)) * lr_scale
        with run.autocast:
            loss = run.net(batch.items, batch.gaps, batch.event_types, batch.context, batch.mask, targets, *social)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        opt.step()
        state.step += 1
        losses.append(float(loss.detach()))
        if config.time_budget is not None and clock.elapsed() >= config.time_budget:
            cut_short = "time_budget"
            break
        if config.max_steps is not None and state.step >= config.max_steps:
            cut_short = "max_steps"
            break
    ended = time.perf_counter()
    return EpochSteps(losses, len(batches), ended - t0, time.process_time() - c0, ended, cut_short)


def validate(
    run: TrainingRun, state: ResumeState, steps: EpochSteps, clock: Clock
) -> tuple[EpochRecord, dict[str, float], bool]:
    """Score this epoch's model on the validation targets, keep its weights if it is the best so far, and append
    the epoch's record to `state.history`. Returns the record, the validation metrics and whether it improved."""
    run.model.eval()
    both = evaluate_split_protocols(model_scorer(run.model, run.ctx.device), run.seqs, run.split, "valid",
                                    run.model_config.max_len, run.sizes.n_items, run.valid_users,
                                    prepare=_friends(run, run.model, state.step))  # one pass
    valid = both[run.seen.protocol][0]  # the seen rule's protocol alone picks the epoch
    score = valid["NDCG@10"]
    improved = score > state.best_score + run.config.min_delta or state.best_epoch == 0
    if improved:
        state.best_score, state.best_epoch, state.bad_epochs = score, state.epoch, 0
        run.best.load_state_dict({k: v.detach().cpu() for k, v in run.model.state_dict().items()})
    else:
        state.bad_epochs += 1
    record = EpochRecord(
        epoch=state.epoch,
        loss=float(np.mean(steps.losses)) if steps.losses else math.nan,
        valid_ndcg10=score,
        valid_hr10=valid["HR@10"],
        seconds=round(clock.elapsed(), 3),
        train_seconds=round(steps.train_seconds, 3),
        steps=len(steps.losses),
        epoch_steps=steps.epoch_steps,
        train_cpu_seconds=round(steps.train_cpu_seconds, 3),
        valid_seconds=round(time.perf_counter() - steps.ended, 3),
        valid_ndcg10_exclude_seen=both["exclude_seen"][0]["NDCG@10"],
        valid_ndcg10_all_items=both["all_items"][0]["NDCG@10"],
    )
    state.history.append(record)
    return record, {p: m for p, (m, _) in both.items()}, improved


def stop_reason(config: TrainConfig, state: ResumeState, steps: EpochSteps, clock: Clock) -> StopReason | None:
    """Why training stops after this epoch, or None to go on (a budget outranks early stopping)."""
    reason: StopReason | None = None
    if state.bad_epochs >= config.patience:
        reason = "early_stopping"
    if steps.cut_short == "time_budget" or (config.time_budget is not None and clock.elapsed() >= config.time_budget):
        reason = "time_budget"
    if steps.cut_short == "max_steps" or (config.max_steps is not None and state.step >= config.max_steps):
        reason = "max_steps"
    return reason


def checkpoint(
    run: TrainingRun,
    state: ResumeState,
    clock: Clock,
    best_valid: dict[str, float],
    stopped: StopReason | Literal["running"],
    test: dict[str, float] | None = None,
    interest: dict | None = None,
) -> None:
    """Save the best weights, the model card and the resume tensors (live weights, AdamW moments) to `run.out`;
    `interest` is the fitted category forecast's card section (`_interest_card`), saved with the final card."""
    seconds = clock.elapsed()
    split = run.split.describe()
    card = {
        "device": str(run.ctx.device), "epochs": state.epoch, "best_epoch": state.best_epoch,
        "seconds": round(seconds, 3), "valid": best_valid, "test": test or {}, "split": split,
        "seen": run.seen.to_dict(),
        "defaults": {"rule": "core.train.defaults", "profile": run.data_profile.to_dict()} if run.data_profile else None,
        "trained_until": split.get("trained_until"), "stopped": stopped, "train_config": run.config.to_dict(),
        "processes": run.ctx.world,
        "data": {"users": int(run.seqs.n_users), "items": int(run.sizes.n_items), "events": int(len(run.seqs.items)),
                 "train_windows": len(run.windows), "train_targets": run.windows.n_targets},
        "parameters": int(sum(p.numel() for p in run.model.parameters())),
        "resume": replace(state, seconds=seconds).to_dict(),
        "database": run.database,
        "social": run.social is not None,
        **({"social_graph": {"friend_links": run.social.graph.n_edges, "cap_k": run.social.graph.k}} if run.social else {}),
        **({"interest": interest} if interest else {}),
    }
    save_checkpoint(run.out, run.best.eval(), run.vocab, run.fingerprint, card,
                    extra_tensors=state_tensors(run.model, run.opt), drop=WEIGHT_DERIVED)


def _interest_card(run: TrainingRun) -> dict | None:
    """The card's `interest` section: the category forecast fitted on validation, its test scores beside the
    tuned histogram's, and the reliability diagram (core.trajectory.interest). None when the data has no
    categories or too few categorised validation targets to fit on."""
    from core.checkpoint import LoadedModel
    from core.trajectory.interest import interest_report

    if not run.vocab.categories or len(run.split.targets("valid")[0]) < 10:
        return None
    loaded = LoadedModel(run.best.eval(), run.vocab, run.model_config, run.sizes, Path("."))
    try:
        # a social model's forecast is fitted on what trajectories read: its scores with friends (the timelines
        # are the best weights', computed for the test just before)
        report = interest_report(loaded, run.seqs, run.split, social=run.social)
    except ValueError as exc:  # e.g. no categorised target at all
        log.warning("The interest forecast was not fitted: %s", exc)
        return None
    fitted = report.pop("forecast_fitted")
    return {"forecast_params": fitted, **report}
