"""Levenberg–Marquardt refit of a pruned S2KAN on a regression batch.

After pruning, an S2KAN has a handful of open terms and its exact solution often lies at
the end of a narrow curved valley (e.g. ``c·sin(a·x + b)`` trading off against an offset
that a product node turns into a linear term). LBFGS crawls along such valleys; a damped
Gauss–Newton step on the residual vector walks them in a few iterations. Only the *open*
parameters move (``a, b, c`` of unmasked symbolic terms, the edge offsets ``d`` and the
coefficients of open splines); the Jacobian ``(N·n_out, P)`` comes from forward-mode
autodiff, so the refit is limited to small ``P`` (:data:`MAX_PARAMS`).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.func import functional_call, jacfwd

from physkan.s2kan.model import S2KAN

__all__ = ["MAX_PARAMS", "levenberg_marquardt"]

#: Largest number of open parameters refitted this way (the Jacobian is ``N × P``).
MAX_PARAMS = 96


def _open_entries(model: S2KAN) -> list[tuple[str, Tensor]]:
    """``(parameter name, flat indices of its open entries)``."""
    out = []
    for lyr, layer in enumerate(model.layers):
        sym = (layer.mask[..., :-1] > 0).flatten()
        for name in ("a", "b", "c"):
            out.append((f"layers.{lyr}.{name}", sym.nonzero().flatten()))
        used = (layer.mask.amax(-1) > 0).flatten()  # offsets of edges with any open term
        out.append((f"layers.{lyr}.d", used.nonzero().flatten()))
        spline = (layer.mask[..., -1:] > 0).expand_as(layer.coef).flatten()
        out.append((f"layers.{lyr}.coef", spline.nonzero().flatten()))
    return [(n, idx) for n, idx in out if idx.numel()]


def levenberg_marquardt(model: S2KAN, x: Tensor, y: Tensor, *, iters: int = 40, tol: float = 1e-30) -> bool:
    """Refit the open parameters of ``model`` (gates hard) to ``y (N, n_out)`` at ``x (N, n_in)``.

    Returns ``False`` (model unchanged) when there are more than :data:`MAX_PARAMS` open
    parameters, a gate is not hard yet or a function has no forward-mode derivative (custom
    ``autograd.Function``); the model is only ever changed to a lower MSE.
    """
    if not all(bool(layer.hard) for layer in model.layers):
        return False
    entries = _open_entries(model)
    n_params = sum(int(idx.numel()) for _, idx in entries)
    if n_params == 0 or n_params > MAX_PARAMS:
        return False
    base = {n: p.detach() for n, p in model.named_parameters()}
    buffers = {n: b.detach() for n, b in model.named_buffers()}

    def params_of(vec: Tensor) -> dict[str, Tensor]:
        out = dict(base)
        off = 0
        for name, idx in entries:
            k = idx.numel()
            flat = base[name].reshape(-1).index_put((idx,), vec[off : off + k])
            out[name] = flat.view_as(base[name])
            off += k
        return out

    def residual(vec: Tensor) -> Tensor:
        return (functional_call(model, (params_of(vec), buffers), (x,)) - y).reshape(-1)

    vec = torch.cat([base[name].reshape(-1)[idx] for name, idx in entries])
    with torch.no_grad():
        r = residual(vec)
    cost = float(r @ r)
    start = cost
    mu = 1e-3
    eye = torch.eye(n_params, dtype=vec.dtype, device=vec.device)
    for _ in range(iters):
        if cost <= tol:
            break
        try:
            J = jacfwd(residual)(vec)
        except RuntimeError:  # e.g. a plugin's autograd.Function without forward-mode support
            break
        if not torch.isfinite(J).all():
            break
        JtJ, Jtr = J.T @ J, J.T @ r
        scale = JtJ.diagonal().clamp_min(1e-12)
        improved = False
        for _ in range(10):
            try:
                step = torch.linalg.solve(JtJ + mu * torch.diag(scale) + 1e-14 * eye, -Jtr)
            except RuntimeError:
                mu *= 10
                continue
            with torch.no_grad():
                r_new = residual(vec + step)
            new = float(r_new @ r_new)
            if new == new and new < cost:
                vec, r, cost, improved = vec + step, r_new, new, True
                mu = max(mu / 3, 1e-12)
                break
            mu *= 4
        if not improved:
            break
    if cost < start:
        with torch.no_grad():
            for name, value in params_of(vec).items():
                if name in dict(entries):
                    dict(model.named_parameters())[name].copy_(value)
        return True
    return False
