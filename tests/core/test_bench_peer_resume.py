"""A RecTools peer run resumed from `resume.npz` (bench/peers/seq_resume.py) goes on exactly as if it had never
stopped: same weights, Adam moments and step counts, RNG draws and loop state (checked here on a tiny torch model;
the RecTools run itself is checked by hand, see docs/accuracy-peers.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench/peers"))
import seq_resume  # noqa: E402

SETTINGS = {"model": "sasrec", "dropout": 0.2, "lr": 1e-3, "seed": 0}


def _net() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Dropout(0.5), torch.nn.Linear(8, 1))
    return net, torch.optim.Adam(net.parameters(), lr=1e-2, betas=(0.9, 0.98))


def _step(net: torch.nn.Module, opt: torch.optim.Optimizer) -> None:
    x = torch.randn(16, 4)  # draws from the global RNG, as batch order and dropout do
    opt.zero_grad()
    net(x).pow(2).mean().backward()
    opt.step()


def test_a_resumed_run_continues_exactly_as_an_unbroken_one(tmp_path):
    torch.manual_seed(0)
    net, opt = _net()
    for _ in range(3):
        _step(net, opt)
    best = {"exclude_seen": {k: v.clone() for k, v in net.state_dict().items()}}
    seq_resume.save(tmp_path, SETTINGS, net, opt, best, {"epoch": 3, "history": [{"epoch": 3, "seconds": 1.5}]})
    for _ in range(2):
        _step(net, opt)
    unbroken = {k: v.clone() for k, v in net.state_dict().items()}

    torch.manual_seed(123)  # a new process: another RNG state, fresh weights and optimizer
    net2, opt2 = _net()
    loop, best2 = seq_resume.load(tmp_path, SETTINGS, net2, opt2)
    assert loop == {"epoch": 3, "history": [{"epoch": 3, "seconds": 1.5}]}
    assert all(torch.equal(best2["exclude_seen"][k], v) for k, v in best["exclude_seen"].items())
    for _ in range(2):
        _step(net2, opt2)
    assert all(torch.equal(net2.state_dict()[k], v) for k, v in unbroken.items())
    assert opt2.state_dict()["state"][0]["step"].item() == 5.0


def test_a_file_saved_under_other_settings_is_ignored(tmp_path):
    net, opt = _net()
    _step(net, opt)
    seq_resume.save(tmp_path, SETTINGS, net, opt, {}, {"epoch": 1})
    net2, opt2 = _net()
    before = {k: v.clone() for k, v in net2.state_dict().items()}
    assert seq_resume.load(tmp_path, {**SETTINGS, "lr": 2e-3}, net2, opt2) is None
    assert all(torch.equal(net2.state_dict()[k], v) for k, v in before.items())
    assert seq_resume.load(tmp_path / "nothing-here", SETTINGS, net2, opt2) is None
    with np.load(tmp_path / seq_resume.FILE, allow_pickle=False) as z:  # plain arrays: loads without pickle
        assert "meta" in z.files and "rng_torch" in z.files
