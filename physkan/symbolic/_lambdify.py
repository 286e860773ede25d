"""The one numpy and the one torch evaluator of sympy formulas (public via :mod:`.parse`).

Both take their function implementations from :data:`~physkan.symbolic._table.FORMULA_FUNCTIONS`,
so a function a plugin registers (``sinc`` with a torch implementation, ``erf`` with a
numpy one) is evaluated by the plugin's code in both, in any process.

* :func:`lambdify_numpy`: ``X (N, n_vars) -> (N,)`` float64; domain errors give NaN.
* :func:`lambdify_arrays`: ``f(*arrays)`` broadcasting its arguments, float64.
* :func:`lambdify_torch`: ``X (N, n_vars) -> (N,)``, differentiable, keeps dtype/device.

Variables are matched to the expression's symbols by name, so plain and ``real=True``
symbols both work; a symbol that is not a variable raises ``ValueError``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import sympy
import torch
from sympy.core.function import Application
from sympy.printing.lambdarepr import LambdaPrinter
from torch import Tensor

from ._table import FORMULA_FUNCTIONS, TORCH_EXTRAS

__all__ = [
    "lambdify_arrays",
    "lambdify_numpy",
    "lambdify_torch",
    "numpy_modules",
    "numpy_namespace",
    "torch_namespace",
]

VariableLike = str | sympy.Symbol


def torch_namespace() -> dict[str, Any]:
    """Printed name -> torch implementation (entries of the table, plugins included)."""
    space = dict(TORCH_EXTRAS)
    space.update({name: e.torch for name, e in FORMULA_FUNCTIONS.items() if e.torch is not None})
    return space


def numpy_namespace() -> dict[str, Any]:
    """Printed name -> numpy implementation for functions numpy lacks (plugins' ``erf``);
    passed to ``sympy.lambdify`` ahead of ``"numpy"`` (sympy prints the rest itself)."""
    return {name: e.numpy for name, e in FORMULA_FUNCTIONS.items() if e.numpy is not None}


def numpy_modules() -> list[Any]:
    """The ``modules`` argument for a raw ``sympy.lambdify`` to numpy (e.g. of a list of
    expressions): the table's numpy implementations, then numpy (:func:`_numpy_module`)."""
    return [numpy_namespace(), _numpy_module()]


class _NumpyNamespace:
    """What ``sympy.lambdify`` gets for ``"numpy"``: it is "numpy" by ``__name__`` (so sympy
    prints with its ``NumPyPrinter``) and its ``__dict__`` is the namespace of the code."""

    __name__ = "numpy"

    def __init__(self, space: dict[str, Any]) -> None:
        self.__dict__.update(space)


@functools.cache
def _numpy_module() -> _NumpyNamespace:
    """sympy's ``modules="numpy"`` namespace without importing numpy's lazy submodules.

    For ``"numpy"`` sympy runs ``from numpy import *; from numpy.linalg import *`` once per
    process, and numpy 2's ``__all__`` names its lazily loaded submodules (``ma``, ``f2py``,
    ``testing``, ``polynomial`` ...), so that line imports them all: 50-120 ms of a
    ``physkan discover``. This namespace holds the same names and objects (sympy's defaults,
    numpy's and ``numpy.linalg``'s public names, sympy's translations, ``Abs``) but a submodule that
    was not imported yet stays out; printed numpy code never names a submodule bare.
    """
    from sympy.utilities.lambdify import MODULES

    generated, default, translations, _ = MODULES["numpy"]
    if generated != default:  # sympy already made it (someone lambdified with "numpy")
        return _NumpyNamespace(generated)
    import numpy.linalg

    space: dict[str, Any] = dict(default)
    space["numpy"] = np
    space.update({name: vars(np)[name] for name in np.__all__ if name in vars(np)})
    space.update({name: getattr(numpy.linalg, name) for name in numpy.linalg.__all__})
    space.update({sympy_name: space[name] for sympy_name, name in translations.items()})
    space.setdefault("Abs", abs)  # as sympy's namespace (the builtin takes complex values)
    return _NumpyNamespace(space)


def _symbols_for(expr: sympy.Expr, variables: Sequence[VariableLike]) -> list[sympy.Symbol]:
    """Symbols of ``expr`` in the order of ``variables`` (matched by name)."""
    by_name = {s.name: s for s in expr.free_symbols if isinstance(s, sympy.Symbol)}
    names = [v.name if isinstance(v, sympy.Symbol) else str(v) for v in variables]
    extra = sorted(set(by_name) - set(names))
    if extra:
        raise ValueError(
            f"expression depends on {', '.join(extra)} which is not among the variables "
            f"({', '.join(names)})"
        )
    return [by_name.get(n, sympy.Symbol(n)) for n in names]


def _numpy_fn(expr: sympy.Expr, variables: Sequence[VariableLike]) -> Callable[..., Any]:
    expr = sympy.sympify(expr)
    return sympy.lambdify(_symbols_for(expr, variables), expr, modules=numpy_modules())


def lambdify_numpy(
    expr: sympy.Expr, variables: Sequence[VariableLike]
) -> Callable[[np.ndarray], np.ndarray]:
    """float64 numpy evaluator ``X (N, n_vars) -> (N,)`` (a 1-D ``X`` is one column);
    domain errors give NaN, not warnings; complex results with a non-negligible imaginary
    part give NaN."""
    fn = _numpy_fn(expr, variables)

    def evaluate(X: np.ndarray) -> np.ndarray:
        arr = np.asarray(X, dtype=np.float64)
        if arr.ndim == 1:
            arr = arr[:, None]
        with np.errstate(all="ignore"):
            out = np.asarray(fn(*[arr[:, i] for i in range(arr.shape[1])]))
            if np.iscomplexobj(out):
                out = np.where(np.abs(out.imag) <= 1e-12 * np.abs(out.real), out.real, np.nan)
            out = np.asarray(out, dtype=np.float64)
        return np.broadcast_to(out, (arr.shape[0],)).copy()

    return evaluate


def lambdify_arrays(expr: sympy.Expr, names: Sequence[VariableLike]) -> Callable[..., np.ndarray]:
    """numpy function of ``names`` taking positional arrays (float64); the result always
    has the broadcast shape of its arguments, also for constant expressions."""
    fn = _numpy_fn(expr, names)

    def call(*args: np.ndarray) -> np.ndarray:
        arrays = [np.asarray(a, dtype=np.float64) for a in args]
        with np.errstate(all="ignore"):
            out = np.asarray(fn(*arrays), dtype=np.float64)
        shape = np.broadcast_shapes(*(a.shape for a in arrays)) if arrays else out.shape
        return np.broadcast_to(out, shape).copy()

    return call


class _TorchLambdaPrinter(LambdaPrinter):
    """LambdaPrinter whose output only uses names of :func:`torch_namespace`.

    A sympy function whose printed name has a torch implementation in the table is printed
    as a plain call ``name(args)``, before any rewrite sympy's printer would apply (``sinc``
    would become a Python ``if``/``else``, which cannot branch on a tensor).
    """

    def __init__(self, functions: set[str]) -> None:
        super().__init__({"fully_qualified_modules": False, "inline": True,
                          "allow_unknown_functions": True})  # fmt: skip
        self._functions = functions

    def _print(self, expr: Any, **kwargs: Any) -> str:
        if isinstance(expr, Application) and type(expr).__name__ in self._functions:
            args = ", ".join(self._print(a) for a in expr.args)
            return f"{type(expr).__name__}({args})"
        return super()._print(expr, **kwargs)

    def _print_Exp1(self, expr: sympy.Expr) -> str:
        return "e"


def lambdify_torch(
    expr: sympy.Expr | str, variables: Sequence[VariableLike]
) -> Callable[[Tensor], Tensor]:
    """Torch evaluator of a formula: ``X (N, n_vars) -> (N,)`` (differentiable, keeps dtype
    and device; a 1-D ``X`` is one column).

    ``variables`` gives the column order of ``X``; strings are parsed with
    :func:`physkan.symbolic.parse.parse_expression`. Plain (unguarded) torch functions
    are used, so ``log`` of a negative number gives NaN, as the formula says.
    """
    if isinstance(expr, str):
        from .parse import parse_expression

        expr = parse_expression(expr, variables)
    expr = sympy.sympify(expr)
    syms = _symbols_for(expr, variables)
    space = torch_namespace()
    printer = _TorchLambdaPrinter({n for n in space if callable(space[n])})
    fn = sympy.lambdify(syms, expr, modules=[space], printer=printer)

    def evaluate(X: Tensor) -> Tensor:
        if X.ndim == 1:
            X = X.unsqueeze(1)
        out = fn(*[X[:, i] for i in range(X.shape[1])])
        if not isinstance(out, Tensor):
            out = torch.tensor(float(out), dtype=X.dtype, device=X.device)
        if out.dtype != X.dtype and X.is_floating_point():
            out = out.to(X.dtype)
        return out.expand(X.shape[0]) if out.ndim == 0 else out

    return evaluate
