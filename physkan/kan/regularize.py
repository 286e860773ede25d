"""Sparsity regularisation of KANs (KAN paper eqs. 2.17-2.20).

For a layer with edge activations ``phi_ij``, the L1 norm of an edge is its mean magnitude
over the batch, ``|phi_ij|_1 = mean_s |phi_ij(x_s)|``; the layer norm is the sum over
edges and the layer entropy is ``S = -sum_ij p_ij log p_ij`` with ``p_ij = |phi_ij|_1 / |Phi|_1``.
The regulariser is ``sum_l (mu_1 |Phi_l|_1 + mu_2 S(Phi_l))``; the training loss multiplies
it by ``lambda``. The paper uses ``mu_1 = mu_2 = 1``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["edge_norms", "layer_entropy", "regularization"]


def edge_norms(edges: Tensor) -> Tensor:
    """L1 norm of each edge: ``(N, in, out) -> (in, out)``."""
    return edges.abs().mean(0)


def layer_entropy(norms: Tensor, eps: float = 1e-12) -> Tensor:
    """Entropy of the normalised edge norms of one layer (a scalar)."""
    p = norms / (norms.sum() + eps)
    return -(p * torch.log(p + eps)).sum()


def regularization(
    edges: Sequence[Tensor], lamb_l1: float = 1.0, lamb_entropy: float = 1.0
) -> Tensor:
    """``sum_l (lamb_l1 * |Phi_l|_1 + lamb_entropy * S(Phi_l))`` over the layers' edges."""
    total = edges[0].new_zeros(())
    for acts in edges:
        norms = edge_norms(acts)
        total = total + lamb_l1 * norms.sum() + lamb_entropy * layer_entropy(norms)
    return total
