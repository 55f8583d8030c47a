"""Multi-process training under `torchrun` (DistributedDataParallel): gloo on CPUs, NCCL on CUDA GPUs.

`torchrun --nproc_per_node N -m cli train --db ... --out ...` sets RANK / WORLD_SIZE / LOCAL_RANK; without them
training runs in one process and nothing here does anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn as nn

from core.checkpoint import pick_device
from core.model import Batch, InterestModel
from core.model.social import SocialInputs

__all__ = ["DistContext", "setup_distributed", "teardown_distributed", "LossModule", "broadcast_flag"]


@dataclass(frozen=True)
class DistContext:
    rank: int  # this process (0 = the main one, which validates and saves)
    world: int  # number of processes
    local_rank: int  # process number on this machine (picks the GPU)
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: str = "auto") -> DistContext:
    """Join the process group when launched by torchrun; pick this process's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext(0, 1, 0, pick_device(device))
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = pick_device(device)
    if dev.type == "cuda":
        dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
    elif dev.type == "mps":  # MPS has no collective backend: train on the CPU with gloo
        dev = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return DistContext(rank, world, local, dev)


def teardown_distributed(ctx: DistContext) -> None:
    if ctx.world > 1 and dist.is_initialized():
        dist.destroy_process_group()


def broadcast_flag(ctx: DistContext, value: bool) -> bool:
    """The main process's `value`, on every process."""
    if ctx.world <= 1:
        return value
    t = torch.tensor([1 if value else 0], device=ctx.device if ctx.device.type == "cuda" else "cpu")
    dist.broadcast(t, src=0)
    return bool(t.item())


class LossModule(nn.Module):
    """The training loss as `forward`, so DistributedDataParallel sees the computation it must synchronise."""

    def __init__(self, model: InterestModel, n_negatives: int | None = None):
        super().__init__()
        self.model = model
        self.n_negatives = n_negatives

    def forward(self, items, gaps, event_types, context, mask, targets, social_states=None, social_present=None,
                social_friends=None, social_recent=None):  # tensors, so DDP can move them; None without the branch
        social = (None if social_states is None
                  else SocialInputs(social_states, social_present, social_friends, social_recent))  # fmt: skip
        batch = Batch(items=items, gaps=gaps, event_types=event_types, context=context, mask=mask, social=social)
        return self.model.loss(batch, targets, n_negatives=self.n_negatives)
