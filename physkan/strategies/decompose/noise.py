"""Noise carried through the target transforms of a decomposition node.

On noisy data (``[data].noise`` > 0: ``y += noise·std(y)·N(0, 1)`` on the training targets)
a node's target ``T(y)`` (``y²``, ``log|y|``, ``log|1/y + 1|``, …) carries the noise of
``y`` scaled by ``|T'(y)|`` sample by sample: ``log|y|`` is very noisy where ``|y| << std(y)``.
The network-free tests weigh each sample by ``1/sigma_T`` so that a law is fitted (and
judged) by what the noise allows at each sample rather than by a threshold meant for exact
data.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["propagate_sigma"]


def propagate_sigma(fn: Callable[[Tensor], Tensor], y: Tensor, sigma: Tensor | None) -> Tensor | None:
    """Per-sample noise std of ``fn(y)`` for an elementwise ``fn``: ``|fn'(y)|·sigma`` (first
    order; ``y``, ``sigma``: ``(N,)``, ``sigma`` in the units of ``y``). ``None`` when
    ``sigma`` is ``None`` (exact data) or the derivative is not finite and positive."""
    if sigma is None:
        return None
    yy = y.detach().double().clone().requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(fn(yy).sum(), yy)
    out = grad.abs() * sigma.double()
    if not bool(torch.isfinite(out).all()) or not bool((out > 0).all()):
        return None
    return out
