"""A tiny LBFGS training helper for tests (the real training engine lives elsewhere)."""

from __future__ import annotations

import torch
from torch import Tensor

from physkan.kan import MultKAN


def fit_lbfgs(
    model: MultKAN,
    x: Tensor,
    y: Tensor,
    steps: int = 50,
    lamb: float = 0.0,
    lamb_l1: float = 1.0,
    lamb_entropy: float = 2.0,
    lr: float = 1.0,
) -> float:
    """Fit ``model`` to ``x (N, n_in) -> y (N, n_out)`` with LBFGS; returns the final RMSE.

    With ``lamb > 0`` the sparsity regulariser ``lamb * model.regularization(...)`` is added.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.LBFGS(
        params, lr=lr, max_iter=20, history_size=10, line_search_fn="strong_wolfe",
        tolerance_grad=1e-32, tolerance_change=1e-32,
    )

    def closure() -> Tensor:
        opt.zero_grad()
        if lamb > 0:
            pred, acts = model.forward_with_activations(x)
            loss = ((pred - y) ** 2).mean()
            loss = loss + lamb * model.regularization(acts, lamb_l1, lamb_entropy)
        else:
            loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        return loss

    for _ in range(max(1, steps // 20)):
        opt.step(closure)
    with torch.no_grad():
        return float(((model(x) - y) ** 2).mean().sqrt())
