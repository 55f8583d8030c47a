"""L-BFGS on a small smooth objective (the forecast's pool weights; `core.trajectory.forecast`, `.bocpd_fit`)."""

from __future__ import annotations

import torch

__all__ = ["minimise"]


def minimise(objective, tensors: list[torch.Tensor], iterations: int = 200) -> None:
    """L-BFGS with a strong-Wolfe line search; the objectives are smooth and have a handful of parameters."""
    opt = torch.optim.LBFGS(tensors, max_iter=iterations, line_search_fn="strong_wolfe", tolerance_grad=1e-9)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = objective()
        loss.backward()
        return loss

    opt.step(closure)
