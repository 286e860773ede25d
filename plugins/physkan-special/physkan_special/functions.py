"""Special functions as :class:`~physkan.symbolic.library.SymbolicFunction` entries.

* ``J0``: Bessel function of the first kind of order 0 (``torch.special.bessel_j0``,
  ``sympy.besselj(0, x)``), even;
* ``erf``: the error function, odd;
* ``sinc``: ``sin(x)/x`` (unnormalised, ``sympy.sinc``), even; torch evaluates it as
  a Taylor series near 0 (finite derivatives there);
* ``softplus``: ``log(1 + exp(x))``, written with sympy's ``log``/``exp``.

All torch implementations are finite with finite first and second derivatives everywhere.
"""

from __future__ import annotations

import math

import numpy as np
import sympy
import torch
from torch import Tensor

from physkan.plugins import SymbolicLibraryRecord
from physkan.symbolic.library import SymbolicFunction

__all__ = ["SPECIAL_FUNCTIONS", "special_library"]


class _BesselJ0(torch.autograd.Function):
    """J0 with its derivative ``-J1`` (torch's ``bessel_j0`` has no usable gradient)."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        return torch.special.bessel_j0(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return -grad * _j1(x)


class _BesselJ1(torch.autograd.Function):
    """J1 with its derivative ``J0(x) - J1(x)/x`` (``1/2`` at 0)."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        return torch.special.bessel_j1(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        small = x.abs() < 1e-4
        safe = torch.where(small, torch.ones_like(x), x)
        series = 0.5 - 0.375 * x**2
        return grad * torch.where(small, series, _j0(x) - _j1(x) / safe)


def _j0(x: Tensor) -> Tensor:
    return _BesselJ0.apply(x)


def _j1(x: Tensor) -> Tensor:
    return _BesselJ1.apply(x)


def _sinc(x: Tensor) -> Tensor:
    """``sin(x)/x`` with a Taylor series near 0, so derivatives stay finite."""
    small = x.abs() < 1e-3
    safe = torch.where(small, torch.ones_like(x), x)
    x2 = x * x
    return torch.where(small, 1 - x2 / 6 + x2 * x2 / 120, torch.sin(safe) / safe)


def _softplus(x: Tensor) -> Tensor:
    return torch.nn.functional.softplus(x)


SPECIAL_FUNCTIONS: list[SymbolicFunction] = [
    SymbolicFunction("J0", _j0, lambda a: sympy.besselj(0, a), 4,
                     "Bessel J0", symmetry="even"),  # fmt: skip
    SymbolicFunction("erf", torch.erf, sympy.erf, 3, "error function", symmetry="odd"),
    SymbolicFunction("sinc", _sinc, sympy.sinc, 3, "sin(x)/x", symmetry="even"),
    SymbolicFunction("softplus", _softplus, lambda a: sympy.log(1 + sympy.exp(a)), 3,
                     "log(1 + exp(x))"),  # fmt: skip
]


def _np_erf(x: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erf, otypes=[float])(x)


def _np_besselj(order: float, x: np.ndarray) -> np.ndarray:
    if float(order) != 0:
        raise ValueError("physkan-special evaluates besselj of order 0 only")
    t = torch.as_tensor(np.asarray(x, dtype=np.float64))
    return torch.special.bessel_j0(t).numpy()


def _torch_besselj(order: float, x: Tensor) -> Tensor:
    if float(order) != 0:
        raise ValueError("physkan-special evaluates besselj of order 0 only")
    return _j0(x)


def _torch_sinc(x: Tensor) -> Tensor:
    return _sinc(torch.as_tensor(x))


def special_library() -> SymbolicLibraryRecord:
    """The record the plugin contributes: functions, parse names, numeric backends."""
    return SymbolicLibraryRecord(
        functions=SPECIAL_FUNCTIONS,
        parse_names={"erf": sympy.erf, "J0": lambda a: sympy.besselj(0, a),
                     "sinc": sympy.sinc, "besselj": sympy.besselj},  # fmt: skip
        numpy_functions={"erf": _np_erf, "besselj": _np_besselj},
        torch_functions={"erf": torch.erf, "besselj": _torch_besselj, "sinc": _torch_sinc},
    )
