"""Refit of the symbolic parameters of a network after its edges were fixed.

After :func:`~physkan.symbolic.edges.auto_symbolic` (or :func:`fix_symbolic`) every edge's
affine parameters ``(a, b, c, d)`` were fitted to that edge alone; the errors of the edges
add up. :func:`refit_symbolic` polishes all of them together, with the subnode and node
affines, by a short LBFGS on the network's output, so the formula's constants come out
exact (``1.0000003`` instead of ``0.987``) and snapping can recognise them.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor

from physkan.budget import current_budget
from physkan.kan.network import MultKAN

__all__ = ["refit_symbolic", "symbolic_parameters"]


def symbolic_parameters(model: MultKAN) -> list[Tensor]:
    """The parameters of the symbolic branch: every layer's ``symbolic_affine`` ``(in, out,
    4)`` and the subnode/node scales and biases (spline coefficients excluded)."""
    params = [layer.symbolic_affine for layer in model.layers]
    for plist in (model.subnode_scale, model.subnode_bias, model.node_scale, model.node_bias):
        params.extend(plist)
    return params


def _mse(model: MultKAN, x: Tensor, y: Tensor) -> Tensor:
    return ((model(x) - y) ** 2).mean()


def refit_symbolic(
    model: MultKAN, x: Tensor, y: Tensor, *, steps: int = 40, chunk: int = 20,
    max_points: int = 256,
) -> tuple[float, float]:
    """Fit the symbolic parameters of ``model`` (in place) to ``x (N, n_in) -> y (N, n_out)``.

    LBFGS (strong Wolfe line search, float64) on :func:`symbolic_parameters` for up to
    ``steps`` iterations, in chunks of ``chunk`` between which the time budget
    (:func:`physkan.budget.current_budget`) is checked; it stops early once a chunk no
    longer halves the error. The refit is kept only when it
    lowers the mean squared error (a diverging refit restores the parameters). At most
    ``max_points`` evenly spread samples are used.

    Returns:
        ``(rmse_before, rmse_after)`` on the samples used (``after <= before``).
    """
    budget = current_budget()
    dtype = next(model.parameters()).dtype
    saved = copy.deepcopy(model.state_dict())
    flags = {id(p): p.requires_grad for p in model.parameters()}
    params = symbolic_parameters(model)
    for p in model.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    model.double()
    x64, y64 = x.detach().double(), y.detach().double().reshape(len(x), -1)
    if len(x64) > max_points:  # an evenly spread subset: the constants need few points
        keep = torch.linspace(0, len(x64) - 1, max_points).round().long()
        x64, y64 = x64[keep], y64[keep]
    with torch.no_grad():
        before = float(_mse(model, x64, y64))
    opt = torch.optim.LBFGS(params, lr=1.0, max_iter=chunk, history_size=20,
                            line_search_fn="strong_wolfe", tolerance_grad=1e-14,
                            tolerance_change=1e-9 * before)  # fmt: skip

    def closure() -> Tensor:
        opt.zero_grad()
        loss = _mse(model, x64, y64)
        loss.backward()
        return loss

    try:
        last = before
        for _ in range(max(1, steps // chunk)):
            if budget.check():
                break
            opt.step(closure)
            with torch.no_grad():
                now = float(_mse(model, x64, y64))
            if not now < 0.5 * last:  # converged (or stuck): more chunks gain little
                break
            last = now
    finally:
        for p in model.parameters():
            p.requires_grad_(flags[id(p)])
    with torch.no_grad():
        after = float(_mse(model, x64, y64))
    if not after <= before:  # NaN or worse: keep the per-edge fits
        model.load_state_dict(saved)
        after = before
    model.to(dtype)
    return before**0.5, after**0.5
