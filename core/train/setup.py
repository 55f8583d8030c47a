"""Everything a training run builds before its first epoch: data, split, model, optimiser, the friend graph when the
social branch trains, and the state a resume continues from."""

from __future__ import annotations

import contextlib
import logging
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel as DDP

from core.errors import InterestLensError, SettingError, UserInputError
from core.evaluate import SeenDecision, Split, decide_seen, make_split, repeat_share
from core.friends.context import DEFAULT_K, SocialContext
from core.friends.graph import load_graph
from core.model import InterestModel, ModelConfig, ModelSizes
from core.model.social import CATEGORY_COPY, attach_branch
from core.model_match import database_record
from core.sequences import Sequences, Vocab, build_vocab, data_fingerprint, load_sequences
from core.store import connect_read
from core.train.config import TrainConfig
from core.train.data import TrainWindows, training_windows
from core.train.defaults import DataProfile, adapt_defaults, profile
from core.train.distributed import DistContext, LossModule
from core.train.records import ResumeState
from core.train.state import load_resume, load_state_tensors

__all__ = ["TrainingRun", "setup", "make_optimizer"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingRun:
    """What `setup` builds and every epoch reads; the modules and the optimiser change in place."""

    ctx: DistContext  # this process's rank, world size and device
    config: TrainConfig
    out: Path  # the checkpoint folder
    vocab: Vocab
    fingerprint: str  # the database's data fingerprint, saved so a resume can refuse changed data
    seqs: Sequences  # every user's events in model indices
    split: Split  # which events train, validate and test
    windows: TrainWindows  # the training windows epochs shuffle and batch
    model_config: ModelConfig
    sizes: ModelSizes
    text: Any  # pretrained item text vectors fused into the embeddings (core.semantic), or None
    model: InterestModel  # the live model, on ctx.device
    best: InterestModel  # the best epoch's weights, on the CPU (what the checkpoint saves)
    opt: torch.optim.AdamW
    net: torch.nn.Module  # the loss as a module, wrapped in DistributedDataParallel under torchrun
    valid_users: np.ndarray | None  # the fixed sample of validation rows, or None for all of them
    autocast: AbstractContextManager  # bf16 autocast on CUDA, else a no-op
    database: dict  # the database's identity and a sample of item titles (core.model_match), saved in the card
    seen: SeenDecision  # whether rankings drop seen items (core.evaluate.protocol), decided on training events
    data_profile: DataProfile | None  # what the defaults rule read (core.train.defaults), None when not applied
    # with the social branch: the friend graph and friends' state timelines (core.social), refreshed from the model
    # before every epoch, validation and the test; None without the branch
    social: SocialContext | None = None


def make_optimizer(model: InterestModel, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices and embeddings only (biases, norms and 1-d parameters excluded)."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    rest = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.98))


def setup(
    db: Path | None, out: Path, model_config: ModelConfig | None, config: TrainConfig, resume: bool, ctx: DistContext
) -> tuple[TrainingRun, ResumeState, dict[str, float]]:
    """The run, the state it continues from, and the best validation metrics so far (empty on a fresh run).

    With `resume`, the checkpoint in `out` supplies the model config, vocabulary, weights and optimiser moments;
    InterestLensError when the database changed since it was saved, UserInputError when there is too little data.
    """
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    prior = load_resume(out) if resume else None
    if resume and prior is None:
        log.warning("Nothing to resume in %s; training from scratch.", out)
    with connect_read(db) as con:
        fingerprint = data_fingerprint(con)
        vocab = prior[0].vocab if prior else build_vocab(con)
        seqs = load_sequences(con, vocab)
        database = database_record(con, vocab)  # which database this is (core.model_match): identity and titles
        # a resumed run keeps its checkpoint's branch (or its absence): the weights and moments must fit the model
        use_social = prior[0].model.social is not None if prior else config.social
        graph = load_graph(con, seqs, DEFAULT_K) if use_social else None
    if graph is not None and graph.n_edges == 0:
        raise SettingError("This database has no social edges between users with events; train with the {social} "
                           "branch off.", "social")
    if prior and prior[0].fingerprint and prior[0].fingerprint != fingerprint:
        raise InterestLensError(
            f"The database changed since {out} was trained, so its training cannot be resumed; train it from the start."
        )
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
    weights = vocab.category_weights() if sizes.n_categories else None
    model = InterestModel(mcfg, sizes, weights).to(ctx.device)
    if text is not None:
        from core.semantic import attach_text

        attach_text(model, vocab, text)
    # a resumed run keeps its checkpoint's copy path (or its absence) and its kind, like the branch itself
    copy = prior[0].model.social.copy is not None if prior and graph is not None else True
    by_cat = prior[0].model.social.by_category if prior and graph is not None else CATEGORY_COPY
    if graph is not None:  # drawn last, so every other weight is the one a run without the branch draws
        attach_branch(model, copy=copy, by_category=by_cat).to(ctx.device)
    opt = make_optimizer(model, config)
    if prior:
        load_state_tensors(model, opt, prior[1])
    best = InterestModel(mcfg, sizes, weights)
    if graph is not None:
        attach_branch(best, copy=copy, by_category=by_cat)
    best.load_state_dict(prior[0].model.state_dict() if prior else model.state_dict())
    n_neg = config.n_negatives if sizes.n_items > config.sampled_softmax_above else None
    net: torch.nn.Module = LossModule(model, n_neg)
    if ctx.world > 1:
        net = DDP(net, find_unused_parameters=True)  # the `empty` state and unknown-group vectors get no gradient
    valid_users = None
    if len(valid_rows) > config.max_valid_users:
        rng = np.random.default_rng(config.seed)
        valid_users = np.sort(rng.choice(valid_rows, config.max_valid_users, replace=False))
    bf16 = ctx.device.type == "cuda" and config.bf16
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    social = SocialContext(seqs, graph, None) if graph is not None else None  # timelines: computed per epoch
    run = TrainingRun(ctx, config, out, vocab, fingerprint, seqs, split, windows, mcfg, sizes, text, model, best, opt,
                      net, valid_users, autocast, database, seen, data_profile, social)
    state = ResumeState.from_dict(prior[0].card.get("resume", {})) if prior else ResumeState()
    best_valid = dict(prior[0].card.get("valid", {})) if prior else {}
    return run, state, best_valid
