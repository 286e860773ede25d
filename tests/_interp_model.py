"""A pruned-KAN stand-in for interpret tests: splines set by least squares, no training.

``spline_network()`` is a MultKAN ``[4, [1, 1], 1]`` whose spline edges approximate
``f = x0*x1 + sin(x2)`` on ``[-2, 2]^4`` (x3 unused, its edges pruned), as a trained and
pruned network would: the edges are cubic B-splines on a 10-interval grid (edge errors
~1e-3), not exact functions.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from physkan.kan import MultKAN

Edge = tuple[int, int, int, Callable[[Tensor], Tensor]]

#: (layer, input node, output subnode, edge function); subnode 0 is the add node's, 1 and 2
#: the factors of the multiplication node.
EDGES: list[Edge] = [
    (0, 2, 0, lambda u: 0.5 * torch.sin(u)),
    (0, 0, 1, lambda u: 0.5 * u),
    (0, 1, 2, lambda u: 2.0 * u),
    (1, 0, 0, lambda u: 2.0 * u),
    (1, 1, 0, lambda u: u),
]


def truth(x: Tensor) -> Tensor:
    """``x0*x1 + sin(x2)``: ``(N, 4) -> (N, 1)``."""
    return (x[:, 0] * x[:, 1] + torch.sin(x[:, 2]))[:, None]


def samples(n: int = 400, seed: int = 0) -> Tensor:
    """``(n, 4)`` float64 samples of ``[-2, 2]^4``."""
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, 4, generator=gen, dtype=torch.float64) * 4 - 2


@torch.no_grad()
def spline_network(grid: int = 10) -> MultKAN:
    """The stand-in network (float64), outputs ``≈ truth(x)`` to ~1e-3."""
    model = MultKAN([4, [1, 1], 1], grid=grid, k=3, seed=0, grid_range=(-4.0, 4.0),
                    base_fun="zero", noise_scale=0.0).double()  # fmt: skip
    for layer in model.layers:
        layer.mask.zero_()
        layer.coef.zero_()
        layer.scale_sp.fill_(1.0)
    u = torch.linspace(-4.0, 4.0, 801, dtype=torch.float64)
    for l, i, j, fn in EDGES:
        layer = model.layers[l]
        layer.mask[i, j] = 1.0
        xs = u[:, None].expand(-1, layer.in_dim)
        basis = layer.basis.evaluate(xs, layer.grid, layer.k)[:, i, :]  # (801, nb)
        sol = torch.linalg.lstsq(basis, fn(u)[:, None]).solution[:, 0]
        layer.coef[i, :, j] = sol.to(layer.coef)
    return model
