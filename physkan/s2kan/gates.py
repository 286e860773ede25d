"""Hard-concrete (L0) gates of Louizos, Welling & Kingma (2018) for S2KAN edge terms.

Every term of every edge owns a gate ``z ∈ [0, 1]`` parametrised by ``log_alpha``. While
training, ``z`` is a reparametrised sample of the *hard-concrete* distribution (a stretched,
clamped binary concrete), so exact zeros and ones have non-zero probability yet the sample is
differentiable in ``log_alpha``. At evaluation the gate is deterministic. The probability that
a gate is open, ``P(z > 0)``, has a closed form and weights the MDL model cost.

All functions are elementwise: ``log_alpha`` may have any shape (an S2KAN layer uses
``(in, n_sub, S + 1)``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["BETA", "GAMMA", "ZETA", "deterministic_gate", "open_logit", "prob_open", "sample_gate"]

#: Temperature of the binary concrete.
BETA: float = 2.0 / 3.0
#: Lower end of the stretch interval (``< 0`` so that ``z = 0`` has positive mass).
GAMMA: float = -0.1
#: Upper end of the stretch interval (``> 1`` so that ``z = 1`` has positive mass).
ZETA: float = 1.1

_EPS = 1e-6


def sample_gate(log_alpha: Tensor, *, beta: float = BETA) -> Tensor:
    """One reparametrised hard-concrete sample per entry, same shape as ``log_alpha``.

    ``u ~ U(0, 1)``, ``s = sigmoid((log u - log(1 - u) + log_alpha) / beta)``,
    ``z = clamp(s (ζ - γ) + γ, 0, 1)``.
    """
    u = torch.rand_like(log_alpha).clamp(_EPS, 1.0 - _EPS)
    s = torch.sigmoid((torch.log(u) - torch.log1p(-u) + log_alpha) / beta)
    return (s * (ZETA - GAMMA) + GAMMA).clamp(0.0, 1.0)


def deterministic_gate(log_alpha: Tensor) -> Tensor:
    """Gate used at evaluation: ``clamp(sigmoid(log_alpha) (ζ - γ) + γ, 0, 1)``.

    Exactly ``0`` for ``log_alpha <= -log(11) ≈ -2.40`` and exactly ``1`` for
    ``log_alpha >= log(11)``.
    """
    return (torch.sigmoid(log_alpha) * (ZETA - GAMMA) + GAMMA).clamp(0.0, 1.0)


def prob_open(log_alpha: Tensor, *, beta: float = BETA) -> Tensor:
    """``P(z > 0) = sigmoid(log_alpha - beta · log(-γ / ζ))`` (differentiable)."""
    return torch.sigmoid(log_alpha - beta * math.log(-GAMMA / ZETA))


def open_logit(probability: float = 0.99, *, beta: float = BETA) -> float:
    """The ``log_alpha`` at which :func:`prob_open` equals ``probability``."""
    p = min(max(probability, 1e-9), 1 - 1e-9)
    return math.log(p / (1 - p)) + beta * math.log(-GAMMA / ZETA)
