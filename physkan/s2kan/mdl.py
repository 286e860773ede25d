"""Minimum Description Length of an S2KAN, in bits.

``L = L_data + L_model`` with

* ``L_data = (N/2) · log2(MSE + floor)``: the Gaussian code length of the residuals (up to a
  constant). ``floor = (resolution · std(y))²`` is the precision the data are stated to: fits
  better than that buy nothing, so an exact symbolic fit is not beaten by a spline that only
  polishes round-off.
* ``L_model = Σ_terms P(gate open) · (bits(term) + n_params(term) · ½ · log2 N)``, where a
  symbolic term costs its library complexity plus ``log2(S + 1)`` bits to name it, and has
  ``n_params`` constants (see :func:`~physkan.s2kan.edge.term_params`); a spline costs
  ``log2(S + 1)`` bits plus ``G + k`` coefficients, so it grows with its grid.

The model cost is differentiable in the gates' ``log_alpha`` (``P(open)`` has a closed form),
so it can be added to any training objective (``model.model_cost_bits()``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from physkan.s2kan.edge import S2Layer, term_params

__all__ = ["MDLParts", "data_cost_bits", "layer_term_bits", "model_cost_bits", "precision_floor"]


@dataclass(frozen=True)
class MDLParts:
    """A description length split into its parts (bits)."""

    data_bits: float
    model_bits: float
    n: int
    mse: float

    @property
    def total_bits(self) -> float:
        return self.data_bits + self.model_bits

    def as_dict(self) -> dict[str, float]:
        out = asdict(self)
        out["total_bits"] = self.total_bits
        return out

    def metrics(self) -> dict[str, float]:
        """The parts as discovery metrics: ``mdl_data_bits``, ``mdl_model_bits``, ``mdl_mse``,
        ``mdl_total_bits``."""
        return {f"mdl_{k}": float(v) for k, v in self.as_dict().items() if k != "n"}


def precision_floor(y: Tensor, resolution: float) -> float:
    """``(resolution · std(y))²`` (at least ``resolution²`` for constant ``y``)."""
    std = float(y.detach().double().std()) if y.numel() > 1 else 0.0
    scale = std if std > 0 else 1.0
    return (resolution * scale) ** 2


def data_cost_bits(mse: Tensor | float, n: int, floor: float = 0.0) -> Tensor:
    """``(n/2) · log2(mse + floor)`` (differentiable when ``mse`` is a tensor)."""
    mse_t = torch.as_tensor(mse, dtype=torch.float64) if not isinstance(mse, Tensor) else mse
    return 0.5 * n * torch.log2(mse_t + floor + 1e-300)


def layer_term_bits(layer: S2Layer, n: int) -> Tensor:
    """Cost in bits of each term if open, ``(S + 1,)`` (broadcasts over the layer's edges)."""
    name_bits = math.log2(layer.n_terms)
    per_param = 0.5 * math.log2(max(n, 2))
    sym = [name_bits + fn.complexity + term_params(fn) * per_param for fn in layer.functions]
    spline = name_bits + layer.n_basis * per_param
    return torch.tensor([*sym, spline], dtype=layer.log_alpha.dtype, device=layer.log_alpha.device)


def model_cost_bits(layers: Sequence[S2Layer], n: int) -> Tensor:
    """``Σ P(open) · bits(term)`` over all layers (differentiable scalar)."""
    total = layers[0].log_alpha.new_zeros(())
    for layer in layers:
        total = total + (layer.open_probability() * layer_term_bits(layer, n)).sum()
    return total
