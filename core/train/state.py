"""Resume state as plain tensors (safetensors, never pickle): the last weights and the AdamW moments."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

from core.checkpoint import LoadedModel, load_checkpoint, recover_interrupted_save

__all__ = ["state_tensors", "load_state_tensors", "load_resume", "TRAIN_STATE_FILE"]

TRAIN_STATE_FILE = "train_state.safetensors"


def state_tensors(model: torch.nn.Module, opt: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """The model's current weights (`model.*`) and the optimizer's per-parameter state (`opt.<i>.<key>`)."""
    out = {f"model.{k}": v.detach().cpu().clone() for k, v in model.state_dict().items()}
    for i, st in opt.state_dict()["state"].items():
        for key, v in st.items():
            out[f"opt.{i}.{key}"] = (v if torch.is_tensor(v) else torch.tensor(v)).detach().cpu().clone()
    return out


def load_state_tensors(model: torch.nn.Module, opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> None:
    """Restore what `state_tensors` saved (the optimizer keeps its current hyper-parameters)."""
    device = next(model.parameters()).device
    model.load_state_dict({k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")})
    sd = opt.state_dict()
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, v in tensors.items():
        if name.startswith("opt."):
            _, i, key = name.split(".", 2)
            state.setdefault(int(i), {})[key] = v if key == "step" else v.to(device)
    opt.load_state_dict({"state": state, "param_groups": sd["param_groups"]})


def load_resume(path: str | Path) -> tuple[LoadedModel, dict[str, torch.Tensor]] | None:
    """The checkpoint in `path` and its resume tensors, or None when there is nothing to resume."""
    path = Path(path)
    recover_interrupted_save(path)
    if not (path / TRAIN_STATE_FILE).exists() or not (path / "model.safetensors").exists():
        return None
    loaded = load_checkpoint(path, "cpu")
    return loaded, load_file(str(path / TRAIN_STATE_FILE))
