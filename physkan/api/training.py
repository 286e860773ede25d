"""``physkan.fit``: plain regression training of a KAN in one call.

>>> model = physkan.MultKAN([3, [4, 2], 1], grid=5, k=3, seed=0).double()
>>> history = physkan.fit(model, x, y, steps=50)      # LBFGS, mean squared error
>>> history.final_loss, history.history[-1]

A thin front end of :func:`physkan.train.fit` with
:class:`~physkan.train.objectives.RegressionObjective` (``mean((model(x) - y)^2)``): it
accepts numpy arrays or tensors, checks their shapes and honours the time budget in force
(:func:`physkan.budget.current_budget`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["fit"]


def _tensor(value: Any, name: str, dtype: torch.dtype) -> Tensor:
    """``value`` as a floating tensor of ``dtype``; NaN/inf refused naming ``name``."""
    t = torch.as_tensor(np.asarray(value) if not isinstance(value, Tensor) else value)
    if t.is_complex():
        raise ValueError(f"{name}: complex values are not supported")
    t = t.to(dtype)
    if not torch.isfinite(t).all():
        raise ValueError(f"{name}: contains NaN or inf values")
    return t


def fit(
    model: nn.Module,
    x: Any,
    y: Any,
    *,
    steps: int = 100,
    optimizer: str = "lbfgs",
    lr: float | None = None,
    lamb: float = 0.0,
    grid_update_every: int | None = None,
    x_val: Any = None,
    y_val: Any = None,
    seed: int = 0,
    **options: Any,
) -> Any:
    """Train ``model`` in place to fit ``y`` from ``x`` (mean squared error, full batch).

    Args:
        model: a :class:`~physkan.MultKAN`/:class:`~physkan.KAN` (or any module mapping
            ``(N, n_in) -> (N, n_out)``), trained in place in its own dtype.
        x: inputs ``(N, n_in)``; y: targets ``(N, n_out)`` or ``(N,)`` (arrays or tensors).
        steps: optimiser steps (LBFGS: each up to 20 inner iterations).
        optimizer: ``"lbfgs"`` or ``"adam"``; lr: its learning rate (default 1 / 1e-2).
        lamb: sparsity regularisation strength (KAN 2.0's ``lamb``; 0 = none).
        grid_update_every: update the spline grids to the data every so many steps.
        x_val, y_val: optional validation data (``val_loss`` in the result's metrics).
        seed: global seed. options: other :func:`physkan.train.fit` keywords
            (``lamb_l1``, ``lamb_entropy``, ``stop_loss``, ``max_iter`` ...).

    Returns:
        :class:`physkan.train.FitResult`: ``model``, ``history`` (loss per step),
        ``final_loss``, ``seconds``, ``metrics``.

    Raises:
        ValueError: mismatched shapes, NaN/inf values, or ``steps < 1``.
    """
    from physkan.train import RegressionObjective
    from physkan.train import fit as train_fit

    first = next(iter(model.parameters()), None)
    dtype = first.dtype if first is not None and first.is_floating_point() else torch.float64
    xt, yt = _tensor(x, "x", dtype), _tensor(y, "y", dtype)
    if xt.ndim != 2:
        raise ValueError(f"x: expected shape (N, n_in), got {tuple(xt.shape)}")
    yt = yt.reshape(-1, 1) if yt.ndim == 1 else yt
    if yt.ndim != 2 or yt.shape[0] != xt.shape[0]:
        raise ValueError(f"y: expected ({xt.shape[0]}, n_out) to match x, got {tuple(yt.shape)}")
    val = None
    if x_val is not None or y_val is not None:
        if x_val is None or y_val is None:
            raise ValueError("x_val, y_val: give both or neither")
        xv, yv = _tensor(x_val, "x_val", dtype), _tensor(y_val, "y_val", dtype)
        val = {"x": xv, "y": yv.reshape(-1, 1) if yv.ndim == 1 else yv}
    precision = 64 if dtype == torch.float64 else 32
    return train_fit(model, RegressionObjective(), {"x": xt, "y": yt}, val=val, steps=steps,
                     optimizer=optimizer, lr=lr, lamb=lamb, grid_update_every=grid_update_every,
                     seed=seed, precision=precision, **options)  # fmt: skip
