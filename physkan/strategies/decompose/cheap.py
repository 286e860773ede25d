"""Network-free tests of a decomposition node, run before any surrogate is trained.

At every node of the recursion (the root, each separable part, each node after a symmetry
substitution or an outer-function inversion) the node's own data ``(x (N, n), y (N,))`` go
through the cheap exact tests first, each on ``T(y)`` for the invertible outer functions
``T`` valid on ``y`` (:data:`~physkan.strategies.decompose.leaves.TRANSFORMS`):

- a rational law ``T(y) = P(x)/Q(x)`` with small polynomials (one SVD per degree,
  :mod:`.rational`: sums of products, ``(u + v)/(1 + u·v/c²)``, squared distances), also
  with one variable ``x_i`` replaced by ``cos(x_i)`` or ``sin(x_i)``, or a pair
  ``x_i, x_j`` replaced by ``cos(x_i·x_j)`` or ``sin(x_i·x_j)`` (``2·U·(1 - cos(k·d))``);
- a product law ``T(y) = K·prod_i g_i(x_i)`` (rank-one alternating least squares with
  library factors, :func:`physkan.strategies.product.product_formula`), and the same with an
  offset ``c + K·prod_i g_i(x_i)``;
- a product law of ``log|w ± 1|``, ``w`` in ``1/y``, ``y/x_i``, ``x_i/y`` (outer chains of
  depth two: ``1/(exp(ħω/(k_b·T)) - 1)``, ``I_0·(exp(q·V/(k_b·T)) - 1)``);
- one variable split off a product law, ``f1(x_i) + f2(x_i)·prod_{j≠i} g_j(x_j)``
  (:mod:`.split`: ``n_0·exp(-m·g·x/(k_b·T))`` after a log, ``n_0·(1 + p·E·cos θ/(k_b·T))``).

:func:`cheap_candidates` yields the formulas of ``y`` lazily, cheapest first; the caller
checks each on held-out data and stops at the first that fits.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence

import sympy
import torch
from torch import Tensor

from physkan.budget import current_budget
from physkan.strategies.decompose.leaves import Transform, transforms_for
from physkan.strategies.decompose.rational import rational_fit
from physkan.strategies.decompose.split import split_candidates
from physkan.strategies.product import product_formula

__all__ = ["RATIONAL_TRANSFORMS", "cheap_candidates"]

_log = logging.getLogger(__name__)

#: Transforms whose rational laws are tried (``1/y`` is covered by ``P/Q`` itself).
RATIONAL_TRANSFORMS: tuple[str, ...] = ("identity", "square", "arcsin", "log")
#: Functions that may stand for one variable in a rational law, and the transforms they are tried on.
TRIG = {"cos": (torch.cos, sympy.cos), "sin": (torch.sin, sympy.sin)}
TRIG_TRANSFORMS: tuple[str, ...] = ("identity", "square")
#: Seconds the tests of one node may take at most, and their share of the budget left.
CHEAP_SECONDS = 15.0
CHEAP_SHARE = 0.3
#: Highest total degree of the polynomials of a rational law.
RATIONAL_DEGREE = 6
#: Tolerances at or below this are exact fits (noise-free data, not a surrogate's table).
EXACT_RATIONAL = 1e-6
#: Transforms whose product laws are tried (a product's square or inverse is a product too).
PRODUCT_TRANSFORMS: tuple[str, ...] = ("identity", "log", "arcsin")
#: Transforms on which a product with an offset is tried (the rank-one fit with an offset is
#: the slowest test here).
OFFSET_TRANSFORMS: tuple[str, ...] = ("identity", "log")


def _targets(y: Tensor) -> list[tuple[Transform, int, Tensor]]:
    """``(transform, sign, T(y))`` for the transforms valid on ``y`` with a finite, varying ``T(y)``."""
    out = []
    for transform, sign in transforms_for(y):
        t = transform.forward(y)
        if bool(torch.isfinite(t).all()) and float(t.std()) > 1e-12 * (float(t.abs().mean()) or 1.0):
            out.append((transform, sign, t))
    return out


def _shifted_targets(x: Tensor, y: Tensor, variables: Sequence[str]) -> list[tuple[Transform, int, Tensor]]:
    """``log|w + s|`` for ``s = ±1`` and ``w`` in ``1/y``, ``y/x_i``, ``x_i/y`` where ``w + s``
    keeps one sign, as transforms whose inverse solves for ``y``: ``y = 1/(±exp(e) - s)``,
    ``x_i·(±exp(e) - s)`` or ``x_i/(±exp(e) - s)`` (the sign is that of ``w + s``). Only the
    inverse is used here: these transforms' ``forward`` maps ``|w + s|``, not ``y``."""
    out: list[tuple[Transform, int, Tensor]] = []
    if not bool((y != 0).all()):
        return out
    bases: list[tuple[str, Tensor, sympy.Expr, int]] = [("1/y", 1 / y, sympy.Integer(1), -1)]
    for i, v in enumerate(variables):
        if bool((x[:, i] != 0).all()):
            sym = sympy.Symbol(v, real=True)
            bases += [(f"y/{v}", y / x[:, i], sym, 1), (f"{v}/y", x[:, i] / y, sym, -1)]
    for label, w, scale, power in bases:
        for s in (1, -1):
            sign = 1 if float((w + s).min()) > 0 else -1 if float((w + s).max()) < 0 else 0
            t = torch.log((w + s).abs())
            if sign == 0 or not bool(torch.isfinite(t).all()) or float(t.std()) <= 1e-12 * (float(t.abs().mean()) or 1.0):
                continue
            inverse = (lambda e, _, sg=sign, sh=s, k=scale, p=power: k * (sg * sympy.exp(e) - sh) ** p)  # noqa: E731
            out.append((Transform(f"log({label}{s:+d})", torch.log, inverse, "nonzero"), 1, t))
    return out


def _trig_rational(x: Tensor, t: Tensor, variables: Sequence[str], kind: str, rtol: float) -> sympy.Expr | None:
    """A rational law of ``t`` in the variables with ``x_i`` replaced by ``cos(x_i)`` or
    ``sin(x_i)`` (``kind`` = ``"cos i"`` / ``"sin i"``): ``x1² + x2² - 2·x1·x2·cos(u)``."""
    name, i = kind.split()[0], int(kind.split()[1])
    z = x.clone()
    z[:, i] = TRIG[name][0](x[:, i])
    inner = rational_fit(z, t, variables, rtol=rtol, max_degree=3)
    sym = sympy.Symbol(variables[i], real=True)
    return None if inner is None else inner.xreplace({sym: TRIG[name][1](sym)})


def _trig_pair_rational(x: Tensor, t: Tensor, variables: Sequence[str], kind: str,
                        rtol: float) -> sympy.Expr | None:
    """A rational law of ``t`` with the pair ``x_i, x_j`` replaced by one variable
    ``cos(x_i·x_j)`` or ``sin(x_i·x_j)`` (``kind`` = ``"cos i j"`` / ``"sin i j"``):
    ``x1·(cos(ω·t) + α·cos²(ω·t))``, ``2·U·(1 - cos(k·d))``."""
    name, i, j = kind.split()[0], int(kind.split()[1]), int(kind.split()[2])
    rest = [k for k in range(x.shape[1]) if k != j]
    z = x[:, rest].clone()
    z[:, rest.index(i)] = TRIG[name][0](x[:, i] * x[:, j])
    names = [variables[k] for k in rest]
    inner = rational_fit(z, t, names, rtol=rtol, max_degree=4)
    sym = sympy.Symbol(variables[i], real=True)
    arg = sym * sympy.Symbol(variables[j], real=True)
    return None if inner is None else inner.xreplace({sym: TRIG[name][1](arg)})


def cheap_candidates(
    x: Tensor, y: Tensor, variables: Sequence[str], *, rtol: float, library: Sequence[str] | None = None,
    seconds: float | None = None,
) -> Iterator[sympy.Expr]:
    """Candidate formulas of ``y (N,)`` on ``x (N, n)``, each fitting the training data to
    relative RMSE ~``rtol`` in its transformed space. No test starts after ``seconds``
    (default: :data:`CHEAP_SECONDS`, at most :data:`CHEAP_SHARE` of the budget left) or once
    the budget in force has expired."""
    x, y = x.double(), y.double().reshape(-1)
    budget = current_budget()
    if seconds is None:
        seconds = min(CHEAP_SECONDS, CHEAP_SHARE * budget.remaining())
    deadline = time.monotonic() + seconds
    targets = _targets(y)
    # rational laws lowest degree first over all transforms (a high-degree approximant of y
    # must not win over the exact low-degree law of y**2), then the product laws
    tests = [(f"rational {d}", t) for d in range(1, RATIONAL_DEGREE + 1) for t in targets
             if t[0].name in RATIONAL_TRANSFORMS]  # fmt: skip
    tests += [("product", t) for t in targets if t[0].name in PRODUCT_TRANSFORMS]
    tests += [("product", t) for t in _shifted_targets(x, y, variables)]
    tests += [("offset", t) for t in targets if t[0].name in OFFSET_TRANSFORMS]
    tests += [("split", t) for t in targets if t[0].name in OFFSET_TRANSFORMS and x.shape[1] >= 3]
    tests += [(f"{fn} {i}", t) for t in targets if t[0].name in TRIG_TRANSFORMS
              for i in range(x.shape[1]) for fn in TRIG]  # fmt: skip
    tests += [(f"{fn} {i} {j}", t) for t in targets if t[0].name in TRIG_TRANSFORMS
              for i in range(x.shape[1]) for j in range(i + 1, x.shape[1]) for fn in TRIG]  # fmt: skip
    rat_tol = rtol if rtol > EXACT_RATIONAL else rtol * 1e-3  # exact data: a Pade approximant may come close
    for kind, (transform, sign, t) in tests:
        if budget.check() or time.monotonic() > deadline:
            return
        _log.debug("cheap test %s on %s (%.1f s left)", kind, transform.name, budget.remaining())
        if kind == "split":
            for inner in split_candidates(x, t, variables, rtol=rtol, library=library, deadline=deadline):
                yield transform.inverse(inner, sign or 1)
            continue
        try:
            if kind.startswith("rational"):
                d = int(kind.split()[1])
                inner = rational_fit(x, t, variables, rtol=rat_tol, min_degree=d, max_degree=d)
            elif kind.split()[0] in TRIG and len(kind.split()) == 3:
                inner = _trig_pair_rational(x, t, variables, kind, rat_tol)
            elif kind.split()[0] in TRIG:
                inner = _trig_rational(x, t, variables, kind, rat_tol)
            else:
                inner = product_formula(x, t, variables, library, exact_rel=rtol, offset=kind == "offset")
        except (ValueError, RuntimeError, ZeroDivisionError, OverflowError):
            continue
        if inner is not None:
            yield transform.inverse(inner, sign or 1)
