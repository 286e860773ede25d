"""One-call S2KAN discovery: train, export formulas, measure test error and description length."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import sympy
import torch
from torch import Tensor

from physkan.s2kan.mdl import MDLParts
from physkan.s2kan.model import S2KAN
from physkan.s2kan.train import S2KANTrainConfig, train_s2kan

__all__ = ["S2KANResult", "s2kan_discover"]


@dataclass
class S2KANResult:
    """Outcome of :func:`s2kan_discover`."""

    model: S2KAN
    formulas: list[sympy.Expr]
    test_rmse: float
    description_length: MDLParts
    spline_edges: list[tuple[int, int, int]]
    seconds: float
    report: list[str] = field(default_factory=list)


def _as2d(t: Tensor) -> Tensor:
    t = torch.as_tensor(t, dtype=torch.float64)
    return t[:, None] if t.ndim == 1 else t


def s2kan_discover(
    x_train: Tensor,
    y_train: Tensor,
    x_test: Tensor,
    y_test: Tensor,
    variables: Sequence[str],
    outputs: Sequence[str],
    *,
    width: Sequence[int | Sequence[int]] | None = None,
    library: Sequence[str] | None = None,
    steps: int = 300,
    seed: int = 0,
    grid: int = 5,
    config: S2KANTrainConfig | None = None,
) -> S2KANResult:
    """Fit an S2KAN (float64) to ``x_train (N, n_in)``, ``y_train (N, n_out)``.

    ``width`` defaults to ``[n_in, n_out]`` (one layer); ``steps`` sets the MDL-phase length
    (warm-up uses ``2/3`` of it). Formulas are snapped against the training data.
    """
    t0 = time.perf_counter()
    xtr, ytr, xte, yte = (_as2d(t) for t in (x_train, y_train, x_test, y_test))
    width = list(width) if width is not None else [xtr.shape[1], ytr.shape[1]]
    cfg = config or S2KANTrainConfig(mdl_steps=steps, warmup_steps=max(1, 2 * steps // 3))
    model = S2KAN(width, library, grid=grid, variables=variables, outputs=outputs, seed=seed).double()
    dl = train_s2kan(model, xtr, ytr, cfg)
    with torch.no_grad():
        rmse = float(torch.sqrt(torch.mean((model(xte) - yte) ** 2)))
    formulas = model.formula(x=xtr, y=ytr)
    return S2KANResult(model, formulas, rmse, dl, model.spline_edges(),
                       time.perf_counter() - t0, model.spline_report())  # fmt: skip
