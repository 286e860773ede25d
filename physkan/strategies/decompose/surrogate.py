"""The smooth surrogate of a decomposition node: a float64 KAN fitted by LBFGS with grid
refinement until its relative test error is small (or its time runs out).

The surrogate is only used for its derivatives (gradient and Hessian tests) and, for a
separable node, to tabulate each part with the other variables held fixed; every formula
is fitted and checked on the raw data where the raw data allow it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from physkan.kan.network import MultKAN

__all__ = ["Surrogate", "fit_surrogate"]

#: Grid sizes tried in turn; the fit stops at the first one whose test error is below ``target``.
GRIDS: tuple[int, ...] = (5, 10, 20)


@dataclass
class Surrogate:
    """A fitted surrogate.

    Attributes:
        model: the KAN, float64, inputs ``(N, n)`` standardised inside :meth:`__call__`.
        rel_error: relative (to ``std(y)``) RMSE on the test samples.
        mean, std: ``(n,)`` input standardisation; y_mean, y_std: output scaling.
    """

    model: MultKAN
    rel_error: float
    mean: Tensor
    std: Tensor
    y_mean: float
    y_std: float

    def __call__(self, x: Tensor) -> Tensor:
        """``f(x)``: ``(N, n)`` raw inputs -> ``(N,)`` outputs in the units of ``y``;
        differentiable (``create_graph=True`` works)."""
        z = (x - self.mean) / self.std
        return self.model(z)[:, 0] * self.y_std + self.y_mean

    def as_function(self) -> Callable[[Tensor], Tensor]:
        return self.__call__


def _lbfgs(model: MultKAN, z: Tensor, y: Tensor, steps: int, deadline: float) -> None:
    opt = torch.optim.LBFGS(model.parameters(), lr=1.0, max_iter=20, history_size=20,
                            line_search_fn="strong_wolfe")  # fmt: skip
    for _ in range(steps):
        if time.monotonic() > deadline:
            return

        def closure() -> Tensor:
            opt.zero_grad()
            loss = ((model(z)[:, 0] - y) ** 2).mean()
            loss.backward()
            return loss

        opt.step(closure)


def fit_surrogate(
    x: Tensor, y: Tensor, x_test: Tensor, y_test: Tensor, *, seconds: float, target: float = 1e-3,
    steps: int = 20, max_points: int = 600, seed: int = 0,
) -> Surrogate:
    """Fit a ``[n, [n, n], 1]`` KAN (``n`` sum and ``n`` product nodes) to ``y (N,)`` on
    ``x (N, n)``; refine its grid (:data:`GRIDS`) until the relative test RMSE is below
    ``target`` or ``seconds`` have passed (the best state so far is kept either way)."""
    deadline = time.monotonic() + seconds
    x, y = x.double(), y.double().reshape(-1)
    x_test, y_test = x_test.double(), y_test.double().reshape(-1)
    if len(x) > max_points:
        idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:max_points]
        x, y = x[idx], y[idx]
    n = x.shape[1]
    mean, std = x.mean(0), x.std(0).clamp_min(1e-12)
    y_mean, y_std = float(y.mean()), float(y.std()) or 1.0
    z, t = (x - mean) / std, (y - y_mean) / y_std
    width: list = [n, [n, n] if n > 1 else [1, 0], 1]
    model = MultKAN(width, grid=GRIDS[0], k=3, seed=seed, grid_range=(-2.0, 2.0)).double()
    model.update_grid(z)
    sur = Surrogate(model, float("inf"), mean, std, y_mean, y_std)
    for k, grid in enumerate(GRIDS):
        if k:
            if time.monotonic() > deadline:
                break
            model.refine(grid)
        _lbfgs(model, z, t, steps, deadline)
        with torch.no_grad():
            sur.rel_error = float((sur(x_test) - y_test).pow(2).mean().sqrt()) / (float(y_test.std()) or 1.0)
        if sur.rel_error < target:
            break
    return sur
