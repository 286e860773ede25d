"""Continual learning demo (KAN paper / deep-dive slides): splines are local, so a KAN
trained on one region at a time does not forget the earlier regions.

The task: ``y = sum_k exp(-(x - c_k)^2 / (2 w^2))`` with ``n_peaks`` peaks on ``[-1, 1]``;
the data arrive in ``n_peaks`` phases, phase ``k`` showing only the ``k``-th region (the
``k``-th fifth of ``[-1, 1]`` for five peaks). Only the spline coefficients are trained
(``scale_sp``/``scale_base`` are global per edge and would couple the regions).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from physkan.kan import MultKAN

__all__ = ["ContinualResult", "gaussian_peaks", "peak_tasks", "run_continual", "train_on"]


def gaussian_peaks(x: Tensor, n_peaks: int = 5, width: float = 0.05) -> Tensor:
    """Sum of ``n_peaks`` Gaussians centred in the regions of ``[-1, 1]``: ``(N, 1) -> (N, 1)``."""
    centers = -1 + (2 * torch.arange(n_peaks, dtype=x.dtype) + 1) / n_peaks
    return torch.exp(-((x - centers) ** 2) / (2 * width**2)).sum(1, keepdim=True)


def peak_tasks(n_peaks: int = 5, n_per_task: int = 200, width: float = 0.05) -> list[tuple[Tensor, Tensor]]:
    """``n_peaks`` tasks ``(x (n, 1), y (n, 1))``, task ``k`` covering region ``k`` only."""
    tasks = []
    for k in range(n_peaks):
        lo = -1 + 2 * k / n_peaks
        x = torch.linspace(lo, lo + 2 / n_peaks, n_per_task)[:, None]
        tasks.append((x, gaussian_peaks(x, n_peaks, width)))
    return tasks


def train_on(model: nn.Module, params: Sequence[Tensor], x: Tensor, y: Tensor,
             steps: int = 200, lr: float = 1e-2, optimizer: str = "adam") -> float:
    """Minimise the MSE of ``model`` on ``(x, y)`` over ``params``; returns the final RMSE."""
    if optimizer == "lbfgs":
        opt: torch.optim.Optimizer = torch.optim.LBFGS(
            params, lr=1.0, max_iter=steps, line_search_fn="strong_wolfe",
            tolerance_grad=1e-12, tolerance_change=1e-14)

        def closure() -> Tensor:
            opt.zero_grad()
            loss = ((model(x) - y) ** 2).mean()
            loss.backward()
            return loss

        opt.step(closure)
    else:
        opt = torch.optim.Adam(params, lr=lr)
        for _ in range(steps):
            opt.zero_grad()
            loss = ((model(x) - y) ** 2).mean()
            loss.backward()
            opt.step()
    with torch.no_grad():
        return float(((model(x) - y) ** 2).mean().sqrt())


@dataclass
class ContinualResult:
    """``errors[p][k]``: RMSE on task ``k`` after training phase ``p``; ``snapshots[p]``:
    the prediction on the dense ``grid`` after phase ``p``."""

    errors: list[list[float]]
    snapshots: list[Tensor]
    grid: Tensor


def run_continual(model: nn.Module, tasks: Sequence[tuple[Tensor, Tensor]],
                  params: Sequence[Tensor] | None = None, steps: int = 200,
                  lr: float = 1e-2, optimizer: str = "adam") -> ContinualResult:
    """Train ``model`` on ``tasks`` one after the other and record the forgetting.

    ``params`` default: the spline coefficients of a :class:`MultKAN`, else all parameters.
    """
    if params is None:
        params = ([layer.coef for layer in model.layers] if isinstance(model, MultKAN)
                  else list(model.parameters()))
    grid = torch.linspace(-1, 1, 400)[:, None]
    errors, snaps = [], []
    for xt, yt in tasks:
        train_on(model, params, xt, yt, steps, lr, optimizer)
        with torch.no_grad():
            errors.append([float(((model(xk) - yk) ** 2).mean().sqrt()) for xk, yk in tasks])
            snaps.append(model(grid).detach().clone())
    return ContinualResult(errors, snaps, grid)


def kan_for_peaks(grid: int = 100, seed: int = 0) -> MultKAN:
    """The ``[1, 1]`` KAN of the demo (no SiLU branch, fine uniform grid)."""
    model = MultKAN([1, 1], grid=grid, k=3, seed=seed, base_fun="zero", noise_scale=0.0)
    return model


def mlp_for_peaks(hidden: int = 64, seed: int = 0) -> nn.Module:
    """A small tanh MLP baseline."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(1, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(),
                         nn.Linear(hidden, 1))


__all__ += ["kan_for_peaks", "mlp_for_peaks"]
