"""Least squares whose answer does not depend on the last bits of the BLAS path.

LAPACK's default ``gelsy`` (QR with column pivoting) decides the numerical rank of a
rank-deficient matrix from pivots whose order can flip with the memory alignment of the
buffers, so two runs of the same fit can return different solutions (seen on the first
sweep of an alternating least squares, whose design matrix has duplicate columns). The
SVD-based ``gelsd`` returns the minimum-norm solution, which is continuous in the data:
the fits of the discovery strategies go through :func:`lstsq`.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["lstsq"]


def lstsq(a: Tensor, b: Tensor, rcond: float | None = None) -> Tensor:
    """Minimum-norm least-squares solution ``x`` of ``a @ x ≈ b``.

    ``a (..., m, n)``, ``b (..., m, k)`` → ``(..., n, k)``. Singular values below
    ``rcond · σ_max`` (default ``eps · max(m, n)``) count as zero. On CPU this is LAPACK
    ``gelsd``; other devices (whose drivers need full rank) use the pseudo-inverse.
    """
    if a.device.type == "cpu":
        return torch.linalg.lstsq(a, b, rcond=rcond, driver="gelsd").solution
    return torch.linalg.pinv(a, rtol=rcond) @ b
