"""`interestlens train`: train the interest model on a database and save a checkpoint.

Multi-process (several GPUs, or CPU processes with gloo): `torchrun --nproc_per_node N -m cli train --db ... --out ...`
takes the same options.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from cli.common import DbOption, JsonOption, SeenOption, emit
from core.checkpoint import models_root
from core.model import ModelConfig
from core.store import default_db_path
from core.train import EpochReport, TrainConfig, train

__all__ = ["train_cmd", "register"]

_D = TrainConfig()


def _default_out(db: Path | None) -> Path:
    return models_root() / Path(default_db_path(db)).stem


def train_cmd(
    db: Path | None = DbOption,
    out: Path | None = typer.Option(None, "--out", help="Checkpoint folder (default: data/models/<database name>)."),
    epochs: int = typer.Option(_D.epochs, "--epochs", help="Most epochs; early stopping usually ends sooner."),
    max_len: int | None = typer.Option(
        None, "--max-len", help="Longest history window the model reads (default: from the log, see docs/accuracy.md)."
    ),
    dropout: float | None = typer.Option(
        None, "--dropout", help="Dropout (default: from events per item, see docs/accuracy.md)."
    ),
    repeat_term: bool | None = typer.Option(
        None, "--repeat-term/--no-repeat-term",
        help="Learned score offset for items already in the history (default: on, see docs/accuracy.md).",
    ),
    seed: int = typer.Option(_D.seed, "--seed", help="Seed for weights, shuffling and dropout."),
    device: str = typer.Option(_D.device, "--device", help="auto, cpu, cuda or mps."),
    split: str = typer.Option(_D.split, "--split", help="loo (leave-one-out) or time (global time cut points)."),
    batch_size: int = typer.Option(_D.batch_size, "--batch-size", help="History windows per step."),
    lr: float = typer.Option(_D.lr, "--lr", help="Peak learning rate."),
    patience: int | None = typer.Option(
        None, "--patience", help="Epochs without improvement before stopping (default: from the validation size)."
    ),
    time_budget: float | None = typer.Option(None, "--time-budget", help="Stop after this many seconds."),
    category_loss: float = typer.Option(
        ModelConfig.category_loss, "--category-loss",
        help="Weight of the category head's next-category loss (0 = no head; see docs/trajectory.md).",
    ),
    max_steps: int | None = typer.Option(None, "--max-steps", help="Stop after this many optimiser steps (timing runs)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the resume state saved in --out."),
    text: bool = typer.Option(
        False, "--text", help="Fuse item text vectors (semantic extra, or vectors from `interestlens semantic encode`)."
    ),
    social: bool | None = typer.Option(
        None, "--social/--no-social",
        help="Fuse friends' interests (social branch); default: on when the database has social edges.",
    ),
    seen: str = SeenOption,
    fairness: bool = typer.Option(
        True, "--fairness/--no-fairness",
        help="Then save the fairness report's inputs beside the model (every user's list, test ranks, trend lists), "
             "so the Fairness page opens in seconds.",
    ),
    as_json: bool = JsonOption,
) -> None:
    """Train the interest model (full-ranking validation NDCG@10 picks the epoch) and save its checkpoint."""
    if split not in ("loo", "time"):
        raise typer.BadParameter(f"expected loo or time, not {split!r}.", param_hint="'--split'")
    out = out or _default_out(db)
    given = {"max_len": max_len, "dropout": dropout, "patience": patience, "repeat_term": repeat_term}
    explicit = frozenset(k for k, v in given.items() if v is not None)
    if social is None:  # a resumed run follows its checkpoint whatever this says (core.train.setup)
        social = _has_edges(db)
    config = TrainConfig(epochs=epochs, seed=seed, device=device, split=split, batch_size=batch_size, lr=lr,
                         patience=_D.patience if patience is None else patience, time_budget=time_budget,
                         max_steps=max_steps, text=text, social=social, seen=seen, adapt_defaults=True,
                         explicit=tuple(sorted(explicit)))
    mcfg = ModelConfig(**{k: v for k, v in given.items() if k != "patience" and v is not None},
                       category_loss=category_loss)
    main_process = int(os.environ.get("RANK", "0")) == 0
    show = main_process and not as_json and sys.stderr.isatty()
    if show:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
                      TimeElapsedColumn(), transient=True) as bar:
            task = bar.add_task("training", total=epochs, info="")

            def report(e: EpochReport) -> None:
                info = f"loss {e.loss:.3f}  valid NDCG@10 {e.valid.get('NDCG@10', 0):.4f}  best epoch {e.best_epoch}"
                bar.update(task, completed=e.epoch, info=info)

            result = train(db, out, mcfg, config, report, resume=resume)
    else:
        result = train(db, out, mcfg, config, None, resume=resume)
    if not main_process:
        return
    keys = ("epochs", "seconds", "best_epoch", "valid", "test", "device", "path", "stopped")
    payload = {**{k: result.to_dict()[k] for k in keys}, "social": result.social}
    saved_in = _save_fairness_inputs(db, result.path) if fairness else None
    payload["fairness_inputs_seconds"] = saved_in
    v, t = result.valid, result.test
    epochs_run = f"{result.epochs} epoch{'' if result.epochs == 1 else 's'}"
    human = (
        f"trained {epochs_run} in {result.seconds:.0f} s on {result.device} (stopped: {result.stopped})\n"
        f"best epoch {result.best_epoch}: valid NDCG@10 {v.get('NDCG@10', 0):.4f}  HR@10 {v.get('HR@10', 0):.4f}\n"
        f"test NDCG@10 {t.get('NDCG@10', 0):.4f}  HR@10 {t.get('HR@10', 0):.4f}\n"
        f"saved to {result.path}"
        + (f"\nfairness inputs saved beside it in {saved_in:.0f} s" if saved_in is not None else "")
    )
    emit(payload, as_json, human)


def _save_fairness_inputs(db: Path | None, model: Path) -> float | None:
    """`core.fairness.save_inputs` on the new model; seconds taken, or None (with a note) when it could not."""
    import time

    from core.errors import InterestLensError
    from core.fairness import save_inputs

    t0 = time.perf_counter()
    try:
        save_inputs(db, model)
    except InterestLensError as exc:  # the model is saved; the Fairness page computes its inputs on first open
        sys.stderr.write(f"note: the fairness inputs were not saved: {exc}\n")
        return None
    return time.perf_counter() - t0


def _has_edges(db: Path | None) -> bool:
    from core.store import connect_read
    from core.store.edges import has_edges

    if not Path(default_db_path(db)).exists():  # training says so itself, in its own words
        return False
    with connect_read(db) as con:
        return has_edges(con)


def register(app: typer.Typer) -> None:
    app.command("train")(train_cmd)
