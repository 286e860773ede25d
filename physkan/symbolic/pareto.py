"""A Pareto front of candidate formulas: complexity (sympy node count) against test RMSE.

Every stage of a discovery that evaluates a closed-form candidate offers it to the front in
force (:func:`current_front`, set by :func:`front_scope`, ``contextvars``), with its RMSE on
held-out data. :meth:`ParetoFront.front` keeps the non-dominated candidates (no other one is
both as simple and more accurate), simplest first, as PySR's equations table does;
:meth:`ParetoFront.choose` picks the simplest one within a tolerance of the best RMSE.

Candidates are kept for one output (the front of a multi-output problem is the caller's to
split); formulas with undefined functions (spline edges) are refused, they are not formulas.
"""

from __future__ import annotations

import contextvars
import math
from contextlib import AbstractContextManager
from dataclasses import dataclass

import sympy

from physkan.budget import scoped

__all__ = ["Candidate", "ParetoFront", "complexity", "current_front", "front_scope", "offer"]


def complexity(expr: sympy.Expr) -> int:
    """The number of nodes of ``expr``'s sympy tree (symbols, numbers and operations)."""
    return sum(1 for _ in sympy.preorder_traversal(sympy.sympify(expr)))


@dataclass(frozen=True)
class Candidate:
    """One candidate formula.

    Attributes:
        formula: the closed-form expression (of the problem's input symbols).
        complexity: :func:`complexity` of ``formula`` (nodes).
        test_rmse: RMSE on held-out data, in the output's units (``inf`` if not finite).
        source: the stage that offered it (a structure label, ``"product"``...).
    """

    formula: sympy.Expr
    complexity: int
    test_rmse: float
    source: str = ""

    def as_json(self) -> dict[str, object]:
        """``{formula, complexity, test_rmse}`` (the ``pareto`` rows of ``--json``)."""
        from physkan.symbolic.simplify import to_text

        rmse = self.test_rmse if math.isfinite(self.test_rmse) else None
        return {"formula": to_text(self.formula), "complexity": self.complexity, "test_rmse": rmse}


class ParetoFront:
    """All candidates offered so far; :meth:`front` is their Pareto-optimal subset."""

    def __init__(self) -> None:
        self._by_key: dict[str, Candidate] = {}

    def __len__(self) -> int:
        return len(self._by_key)

    def add(self, expr: sympy.Expr, test_rmse: float, source: str = "") -> Candidate | None:
        """Offer ``expr`` with its held-out RMSE; returns the stored candidate, or ``None``
        when the expression is refused (not closed-form: it has spline edges, or is not a
        sympy expression). A formula offered twice keeps its smaller RMSE."""
        try:
            expr = sympy.sympify(expr)
        except (sympy.SympifyError, TypeError):
            return None
        if not isinstance(expr, sympy.Expr) or expr.atoms(sympy.core.function.AppliedUndef):
            return None
        rmse = float(test_rmse)
        if not math.isfinite(rmse):
            rmse = math.inf
        key = sympy.srepr(expr)
        old = self._by_key.get(key)
        if old is not None and old.test_rmse <= rmse:
            return old
        cand = Candidate(expr, complexity(expr), rmse, source)
        self._by_key[key] = cand
        return cand

    def candidates(self) -> list[Candidate]:
        """Every candidate offered, in order of complexity then RMSE."""
        return sorted(self._by_key.values(), key=lambda c: (c.complexity, c.test_rmse))

    def front(self) -> list[Candidate]:
        """The non-dominated candidates, simplest first (each strictly more accurate than
        every simpler one); candidates with an infinite RMSE are left out."""
        out: list[Candidate] = []
        best = math.inf
        for c in self.candidates():
            if c.test_rmse < best:
                out.append(c)
                best = c.test_rmse
        return out

    def best(self) -> Candidate | None:
        """The candidate with the smallest RMSE (the most complex of the front)."""
        front = self.front()
        return front[-1] if front else None

    def choose(self, tolerance: float) -> Candidate | None:
        """The simplest candidate whose RMSE is within ``tolerance`` (absolute, output
        units) of the best RMSE; ``None`` when the front is empty."""
        front = self.front()
        if not front:
            return None
        limit = front[-1].test_rmse + max(0.0, float(tolerance))
        return next(c for c in front if c.test_rmse <= limit)

    def as_json(self) -> list[dict[str, object]]:
        """The front as ``--json`` rows, simplest first."""
        return [c.as_json() for c in self.front()]


_CURRENT: contextvars.ContextVar[ParetoFront | None] = contextvars.ContextVar("physkan_front", default=None)


def current_front() -> ParetoFront | None:
    """The front in force (innermost :func:`front_scope`), or ``None``."""
    return _CURRENT.get()


def offer(expr: sympy.Expr, test_rmse: float, source: str = "") -> None:
    """Offer a candidate to the front in force, if any (a no-op outside a scope)."""
    front = _CURRENT.get()
    if front is not None:
        front.add(expr, test_rmse, source)


def front_scope(front: ParetoFront) -> AbstractContextManager[ParetoFront]:
    """Make ``front`` the one :func:`current_front` returns inside the ``with`` block."""
    return scoped(_CURRENT, front)  # type: ignore[arg-type]
