"""The one table of names usable in formulas, with their sympy, torch and numpy meanings.

Every formula physkan reads (problem files, equivalence checks, the kanpiler, composite
library names) and every formula it evaluates (numpy data, torch losses) goes through
:data:`FORMULA_FUNCTIONS`. Built-in entries are registered below; plugins add theirs
through :func:`register_formula_function` (the plugin host calls it, core code never
imports the plugin system).

An entry's *name* is both the word a formula may use (``"ln"``, ``"sinc"``) and, when its
``torch``/``numpy`` implementation is set, the printed name of the sympy function it
evaluates: a sympy function whose class is called ``name`` is printed as ``name(args)``
and evaluated by that implementation (plugins key them by the printed sympy name,
``"besselj"`` for ``sympy.besselj``). Built-in functions have ``numpy=None``: sympy's
numpy printer evaluates them with numpy's own functions.

This module imports nothing from physkan above :mod:`physkan.registry`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sympy
import torch
from torch import Tensor

from physkan.errors import UserError
from physkan.registry import BUILTIN, Registry

__all__ = [
    "FORMULA_FUNCTIONS",
    "ExpressionError",
    "FormulaFunction",
    "register_formula_function",
    "unregister_formula_function",
]


class ExpressionError(UserError, ValueError):
    """A formula string that cannot be used; the message is one line for the user."""


@dataclass(frozen=True)
class FormulaFunction:
    """One name of the formula language.

    Attributes:
        name: the name formulas use, and the printed name its implementations evaluate.
        sympy: what the name stands for when parsing: a sympy ``Function`` class
            (``sympy.sin``), a callable returning a sympy expression
            (``lambda u: sympy.exp(-u**2)``), a sympy constant (``sympy.pi``), or ``None``
            for an evaluation-only entry that formulas cannot name.
        torch: implementation used by :func:`~physkan.symbolic.parse.lambdify_torch` for
            the sympy function printed as ``name`` (tensors in, tensor out; constant
            arguments arrive as Python numbers), or ``None``.
        numpy: the same for :func:`~physkan.symbolic.parse.lambdify_numpy` (arrays,
            float64), or ``None``.
    """

    name: str
    sympy: Any = None
    torch: Callable[..., Any] | None = None
    numpy: Callable[..., Any] | None = None

    @property
    def parseable(self) -> bool:
        """Whether formulas may use the name (entries with a sympy meaning)."""
        return self.sympy is not None


#: name (or alias) -> :class:`FormulaFunction`; built-ins first, then plugins.
FORMULA_FUNCTIONS: Registry[FormulaFunction] = Registry("formula function", error=ExpressionError)


def register_formula_function(
    name: str,
    sympy_obj: Any,
    *,
    torch: Callable[..., Any] | None = None,
    numpy: Callable[..., Any] | None = None,
    source: str = BUILTIN,
    aliases: tuple[str, ...] = (),
) -> None:
    """Make ``name`` (and ``aliases``) usable in formulas and evaluable in torch/numpy.

    Args:
        name: an identifier (``"sinc"``); with ``torch``/``numpy`` it must be the printed
            name of the sympy function they evaluate (``type(expr).__name__``).
        sympy_obj: a sympy ``Function`` class, a callable returning a sympy expression, a
            sympy constant, or ``None`` (evaluation only).
        torch, numpy: implementations for the evaluators (see :class:`FormulaFunction`).
        source: :data:`~physkan.registry.BUILTIN` or the plugin's name.
        aliases: other spellings formulas may use (``"ln"`` for ``log``).

    Raises:
        physkan.registry.NameClash: the name or an alias is taken (built-ins win, then
            the first plugin); roll back with :func:`unregister_formula_function`.
        ValueError: ``name`` is not an identifier. TypeError: an implementation is not
            callable.
    """
    for key in (name, *aliases):
        if not isinstance(key, str) or not key.isidentifier():
            raise ValueError(f"formula function name must be an identifier, got {key!r}")
    for label, fn in (("torch", torch), ("numpy", numpy)):
        if fn is not None and not callable(fn):
            raise TypeError(f"{label} implementation of {name!r} must be callable, got {type(fn).__name__}")
    entry = FormulaFunction(name, sympy_obj, torch, numpy)
    FORMULA_FUNCTIONS.register(name, entry, source=source, aliases=tuple(aliases))


def unregister_formula_function(name: str) -> FormulaFunction | None:
    """Remove ``name`` and its aliases (a plugin's rollback); returns the entry or ``None``."""
    return FORMULA_FUNCTIONS.unregister(name)


# --------------------------------------------------------------------------- built-ins


def _tensorise(fn: Callable[..., Tensor]) -> Callable[..., Tensor]:
    """``fn`` accepting Python numbers too (constant sub-expressions print as numbers)."""

    @functools.wraps(fn)
    def wrapped(*args: Any) -> Tensor:
        return fn(*[a if isinstance(a, Tensor) else torch.tensor(float(a), dtype=torch.float64)
                    for a in args])  # fmt: skip

    return wrapped


def _fold(fn: Callable[[Tensor, Tensor], Tensor]) -> Callable[..., Tensor]:
    """n-ary version of a binary torch function (``Max(a, b, c)``)."""
    return lambda *args: functools.reduce(fn, args)


def _heaviside(t: Tensor, h0: Any = 0.5) -> Tensor:
    """Heaviside step with value ``h0`` at 0 (sympy's default ``1/2``)."""
    h0 = float(h0)
    return (t > 0).to(t.dtype) + h0 * (t == 0).to(t.dtype)


def _gaussian(u: sympy.Expr) -> sympy.Expr:
    """``gaussian(u) = exp(-u**2)``."""
    return sympy.exp(-(u**2))


_T = _tensorise
#: (name, sympy, torch, aliases): sympy's printers know all of these for numpy.
_BUILTINS: list[tuple[str, Any, Callable[..., Any] | None, tuple[str, ...]]] = [
    ("pi", sympy.pi, None, ()),
    ("E", sympy.E, None, ()),
    ("exp", sympy.exp, _T(torch.exp), ()),
    ("log", sympy.log, _T(torch.log), ("ln",)),
    ("sqrt", sympy.sqrt, None, ()),  # a power: printed as sqrt, see the torch namespace
    ("Abs", sympy.Abs, _T(torch.abs), ("abs",)),
    ("sign", sympy.sign, _T(torch.sign), ("sgn",)),
    ("sin", sympy.sin, _T(torch.sin), ()),
    ("cos", sympy.cos, _T(torch.cos), ()),
    ("tan", sympy.tan, _T(torch.tan), ()),
    ("cot", sympy.cot, _T(lambda t: 1 / torch.tan(t)), ()),
    ("sinh", sympy.sinh, _T(torch.sinh), ()),
    ("cosh", sympy.cosh, _T(torch.cosh), ()),
    ("tanh", sympy.tanh, _T(torch.tanh), ()),
    ("asin", sympy.asin, _T(torch.asin), ("arcsin",)),
    ("acos", sympy.acos, _T(torch.acos), ("arccos",)),
    ("atan", sympy.atan, _T(torch.atan), ("arctan",)),
    ("atan2", sympy.atan2, _T(torch.atan2), ("arctan2",)),
    ("asinh", sympy.asinh, _T(torch.asinh), ("arcsinh",)),
    ("acosh", sympy.acosh, _T(torch.acosh), ("arccosh",)),
    ("atanh", sympy.atanh, _T(torch.atanh), ("arctanh",)),
    ("gaussian", _gaussian, None, ()),
    ("Max", sympy.Max, _fold(_T(torch.maximum)), ("max",)),
    ("Min", sympy.Min, _fold(_T(torch.minimum)), ("min",)),
    ("Heaviside", sympy.Heaviside, _T(_heaviside), ()),
]

for _name, _sym, _torch, _aliases in _BUILTINS:
    register_formula_function(_name, _sym, torch=_torch, aliases=_aliases)

#: names sympy's torch printing emits besides the entries' names (powers and constants),
#: and torch versions of sympy functions that only plugins make parseable (``erf``).
TORCH_EXTRAS: dict[str, Any] = {
    "sqrt": _T(torch.sqrt),
    "pi": math.pi,
    "e": math.e,
    "erf": _T(torch.erf),
}
