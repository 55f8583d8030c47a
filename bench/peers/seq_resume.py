"""Pick a RecTools peer run up where it stopped: one `resume.npz` per run folder, rewritten after every epoch.

A converged peer can take hours of CPU on a shared machine, and a deadline (STOP file) or a kill would otherwise
throw all of it away. The file holds everything the next epoch depends on: the weights, the Adam moments and step
counts, the torch RNG state (batch order and dropout draw from it), each protocol's best weights so far, and the
loop's own state (epoch, best scores, history, CPU and wall seconds so far). It is plain numpy arrays plus one JSON
string (loaded with `allow_pickle=False`; never pickle), written to a temporary file and renamed, so a kill mid-write
leaves the previous epoch's file. A file saved under other settings is ignored (the run starts afresh).
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import numpy as np
import torch

__all__ = ["FILE", "save", "load"]

FILE = "resume.npz"


def save(out: Path, settings: dict, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
         best_state: dict[str, dict[str, torch.Tensor]], loop: dict) -> None:
    """Write `<out>/resume.npz`.

    settings : the run's settings (a later `load` with different ones ignores the file)
    best_state : per protocol, the state dict of its best validation epoch so far
    loop : JSON-able loop state (epoch, best scores, best epochs, history, seconds so far)
    """
    arrays = {f"model/{k}": v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    for p, sd in best_state.items():
        arrays.update({f"best/{p}/{k}": v.detach().cpu().numpy() for k, v in sd.items()})
    opt = optimizer.state_dict()
    for i, st in opt["state"].items():
        arrays.update({f"opt/{i}/{k}": (v.detach().cpu().numpy() if torch.is_tensor(v) else np.asarray(v))
                       for k, v in st.items()})
    arrays["rng_torch"] = torch.get_rng_state().numpy()
    np_state = np.random.get_state()
    arrays["rng_numpy"] = np_state[1]
    py_state = random.getstate()
    arrays["meta"] = np.array(json.dumps({"settings": settings, "loop": loop, "param_groups": opt["param_groups"],
                                          "rng_numpy": [np_state[0], *map(float, np_state[2:])],
                                          "rng_python": [py_state[0], list(py_state[1]), py_state[2]]}))
    tmp = out / (FILE + ".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, out / FILE)


def load(out: Path, settings: dict, model: torch.nn.Module, optimizer: torch.optim.Optimizer
         ) -> tuple[dict, dict[str, dict[str, torch.Tensor]]] | None:
    """Restore `model`, `optimizer` and the torch RNG from `<out>/resume.npz` saved under the same `settings`.

    Returns (loop state, best state dicts per protocol), or None (nothing restored) when there is no file or it was
    saved under other settings.
    """
    path = out / FILE
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        if meta["settings"] != settings:
            return None
        arrays = {k: torch.from_numpy(z[k].copy()) for k in z.files if k != "meta"}
    model.load_state_dict({k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith("model/")})
    best: dict[str, dict[str, torch.Tensor]] = {}
    state: dict[int, dict[str, torch.Tensor]] = {}
    for k, v in arrays.items():
        if k.startswith("best/"):
            _, p, name = k.split("/", 2)
            best.setdefault(p, {})[name] = v
        elif k.startswith("opt/"):
            _, i, name = k.split("/", 2)
            state.setdefault(int(i), {})[name] = v
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    torch.set_rng_state(arrays["rng_torch"])
    kind, pos, has_gauss, gauss = meta["rng_numpy"]
    np.random.set_state((kind, arrays["rng_numpy"].numpy(), int(pos), int(has_gauss), gauss))
    version, words, py_gauss = meta["rng_python"]
    random.setstate((version, tuple(words), py_gauss))
    return meta["loop"], best
