"""Fourier-series basis on the grid range of each input.

With ``u = (x - lo) / (hi - lo)`` (``lo``/``hi`` the first/last grid point of the input),
the ``2G + 1`` basis functions on a grid of ``G`` intervals are::

    1, cos(pi u), sin(pi u), cos(2 pi u), sin(2 pi u), ..., cos(G pi u), sin(G pi u)

Smooth (derivatives of any order by autograd), global, and defined outside the range too.
The grid holds ``G + 1`` points like the RBF family, so grid updates (quantile-adapted
interior points) only move ``lo``/``hi``, and refining ``G`` adds harmonics.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from physkan.kan.basis import PointGridBasis

__all__ = ["FourierBasis"]


class FourierBasis(PointGridBasis):
    """Constant plus ``G`` cosine/sine harmonics of ``k pi (x - lo) / (hi - lo)``.

    ``k`` (the spline order) is accepted for interface compatibility and ignored.
    """

    name = "fourier"

    def num_basis(self, grid_size: int, k: int) -> int:
        """``2 G + 1``: the constant and a cosine and a sine per harmonic."""
        return 2 * grid_size + 1

    def evaluate(self, x: Tensor, grid: Tensor, k: int) -> Tensor:
        """``(N, in, 2G + 1)`` values for ``x`` of shape ``(N, in)``."""
        n_harm = grid.shape[1] - 1
        lo, hi = grid[:, 0], grid[:, -1]
        u = (x - lo) / (hi - lo).clamp_min(1e-12)  # (N, in)
        freqs = math.pi * torch.arange(1, n_harm + 1, dtype=x.dtype, device=x.device)
        phase = u.unsqueeze(-1) * freqs  # (N, in, G)
        parts = torch.stack([torch.cos(phase), torch.sin(phase)], dim=-1).flatten(-2)
        return torch.cat([torch.ones_like(u).unsqueeze(-1), parts], dim=-1)
