"""Expression trees for the kanpiler: a sympy formula as nodes joined by unary-function edges.

:func:`expression_tree` parses an expression into a DAG (shared sub-expressions are one node)
that already has the shape of a KAN graph (KAN 2.0, Sec. 3.3):

* a **node** is a value a KAN node can hold: an input variable (``"var"``), a sum
  (``"add"``: one subnode) or a product (``"mult"``: one subnode per factor, times ``scale``);
* a **group** is a subnode: ``sum_e c_e·f_e(a_e·child_e + b_e) + const``;
* an **edge** is a library function with its affine argument folded in.

Products of more than ``mult_arity`` factors are split into nested products. ``x**p`` uses the
library powers (``x^2``, ``sqrt``, ``1/x^1.5`` ...), nested when needed (``x**6 =
(x^3)^2``), else ``exp(p·log x)`` (valid for a positive base). ``exp(-k·u**2)`` becomes a
``gaussian`` edge. Two different edges from the same child into the same subnode are not
possible in a KAN, so one of them is moved onto its own node ("promoted").
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import sympy

__all__ = [
    "POWER_NAMES",
    "SYMPY_TO_LIBRARY",
    "Edge",
    "Group",
    "TreeNode",
    "expression_tree",
    "variable_nodes",
]

#: sympy function class name -> symbolic-library name.
SYMPY_TO_LIBRARY: dict[str, str] = {
    "exp": "exp", "log": "log", "sin": "sin", "cos": "cos", "tan": "tan", "tanh": "tanh",
    "sinh": "sinh", "cosh": "cosh", "asin": "arcsin", "acos": "arccos", "atan": "arctan",
    "atanh": "arctanh", "Abs": "abs", "sign": "sgn",
}  # fmt: skip

#: exponent -> library name of ``x**exponent``.
POWER_NAMES: dict[sympy.Rational, str] = {
    sympy.Rational(p): n
    for p, n in (
        (1, "x"), (2, "x^2"), (3, "x^3"), (4, "x^4"), (5, "x^5"), (-1, "1/x"), (-2, "1/x^2"),
        (-3, "1/x^3"), (-4, "1/x^4"), ("1/2", "sqrt"), ("3/2", "x^1.5"), ("-1/2", "1/sqrt"),
        ("-3/2", "1/x^1.5"),
    )
}  # fmt: skip


@dataclass
class Edge:
    """``c·fn(a·child + b)``, which equals ``w·expr`` (``expr``: a sympy sub-expression)."""

    fn: str
    a: float
    b: float
    c: float
    child: TreeNode
    expr: sympy.Expr
    w: float

    @property
    def is_identity(self) -> bool:
        return self.fn == "x" and self.a == 1.0 and self.b == 0.0


@dataclass
class Group:
    """A subnode: ``sum(edges) + const``; edges are keyed by ``id(child)`` (one per child)."""

    edges: dict[int, Edge] = field(default_factory=dict)
    const: float = 0.0


@dataclass(eq=False)
class TreeNode:
    """A node: ``"var"`` (input), ``"add"`` (one group) or ``"mult"``
    (``scale·prod(groups) + bias``)."""

    kind: str
    expr: sympy.Expr
    groups: list[Group] = field(default_factory=list)
    scale: float = 1.0
    bias: float = 0.0

    def children(self) -> Iterable[TreeNode]:
        for g in self.groups:
            for e in g.edges.values():
                yield e.child

    def format(self, indent: str = "", label: str = "") -> list[str]:
        """Lines of an indented drawing of the tree below this node."""
        head = {"var": "var", "add": "sum", "mult": f"prod×{self.scale:.6g}{self.bias:+.6g}"}[
            self.kind
        ]
        lines = [f"{indent}{label}{head}: {self.expr}"]
        for k, g in enumerate(self.groups):
            tag = f"[{k}] " if self.kind == "mult" else ""
            if g.const:
                lines.append(f"{indent}  {tag}+ {g.const:.6g}")
            for e in g.edges.values():
                edge = f"{tag}{e.c:.6g}·{e.fn}({e.a:.6g}·u{e.b:+.6g}) <- "
                lines += e.child.format(indent + "  ", edge)
        return lines

    def __str__(self) -> str:
        return "\n".join(self.format())


def _num(value: sympy.Expr, where: sympy.Expr) -> float:
    try:
        out = complex(value)
    except TypeError as exc:
        raise ValueError(f"kanpiler: cannot evaluate the constant {value} in {where}") from exc
    if out.imag != 0 or not math.isfinite(out.real):
        raise ValueError(f"kanpiler: the constant {value} in {where} is not a finite real number")
    return out.real


def _pow_chain(p: sympy.Rational, names: Sequence[sympy.Rational], depth: int = 3):
    """Library exponents ``[e1, e2, ...]`` (inner first) with product ``p``, or ``None``.

    For an integer ``p`` only integer exponents are used, so ``(x^2)^(1/2) = |x|`` never
    replaces ``x``.
    """
    allowed = [e for e in names if e != 1 and (e.is_integer or not p.is_integer)]
    if p in allowed:
        return [p]
    if depth <= 1:
        return None
    for outer in allowed:
        rest = _pow_chain(p / outer, names, depth - 1)
        if rest is not None:
            return [*rest, outer]
    return None


class _Parser:
    def __init__(self, symbols: Sequence[sympy.Symbol], library: set[str], mult_arity: int | None):
        self.symbols = tuple(symbols)
        self.library = library
        self.arity = mult_arity
        self.nodes: dict[sympy.Expr, TreeNode] = {}
        self.powers = [p for p, n in POWER_NAMES.items() if n in library]

    # ------------------------------------------------------------------ nodes
    def node(self, expr: sympy.Expr) -> TreeNode:
        if expr in self.nodes:
            return self.nodes[expr]
        if isinstance(expr, sympy.Symbol):
            out = TreeNode("var", expr)
        else:
            const, rest = expr.as_independent(*self.symbols, as_Add=True)
            coef, dep = rest.as_independent(*self.symbols, as_Add=False)
            factors = list(sympy.Mul.make_args(dep)) if dep.is_Mul else [dep]
            if len(factors) >= 2:
                bias = _num(const, expr) if const != 0 else 0.0
                out = TreeNode("mult", expr, scale=_num(coef, expr), bias=bias)
                if self.arity is not None and len(factors) > self.arity:
                    size = -(-len(factors) // self.arity)
                    chunks = [factors[i : i + size] for i in range(0, len(factors), size)]
                    factors = [sympy.Mul(*c) for c in chunks]
                self.nodes[expr] = out  # before recursing (children never reach back)
                out.groups = [self.group(f) for f in factors]
            else:
                out = TreeNode("add", expr)
                self.nodes[expr] = out
                out.groups = [self.group(expr)]
        self.nodes[expr] = out
        return out

    def group(self, expr: sympy.Expr) -> Group:
        const, dep = expr.as_independent(*self.symbols, as_Add=True)
        g = Group(const=_num(const, expr) if const != 0 else 0.0)
        self._add_terms(g, dep, 1.0)
        return g

    def _add_terms(self, g: Group, expr: sympy.Expr, coef: float) -> None:
        if expr == 0:
            return
        for term in sympy.Add.make_args(expr):
            k, dep = term.as_independent(*self.symbols, as_Add=False)
            c = coef * _num(k, term)
            if dep.is_Add:
                self._add_terms(g, dep, c)
            elif dep != 1:
                self._insert(g, self.edge(dep, c))

    def _insert(self, g: Group, edge: Edge) -> None:
        key = id(edge.child)
        old = g.edges.get(key)
        if old is None:
            g.edges[key] = edge
        elif (old.fn, old.a, old.b) == (edge.fn, edge.a, edge.b):
            old.c += edge.c
            old.w += edge.w
        else:  # one child, two functions: move the non-identity one onto its own node
            victim, keep = (edge, old) if not edge.is_identity else (old, edge)
            g.edges[key] = keep
            node = self.node(victim.expr)
            self._insert(g, Edge("x", 1.0, 0.0, victim.w, node, node.expr, victim.w))

    # ------------------------------------------------------------------ edges
    def _check(self, name: str, expr: sympy.Expr) -> str:
        if name not in self.library:
            raise ValueError(
                f"kanpiler: {expr} needs the symbolic function {name!r}, which is not in the library"
            )
        return name

    def affine(self, arg: sympy.Expr) -> tuple[float, float, sympy.Expr]:
        """``arg = a·g + b`` with constants ``a, b`` and a non-constant ``g``."""
        b, rest = arg.as_independent(*self.symbols, as_Add=True)
        if rest.is_Add:
            rest = sympy.factor_terms(rest)
        a, g = rest.as_independent(*self.symbols, as_Add=False)
        return _num(a, arg), _num(b, arg) if b != 0 else 0.0, g

    def _fn_edge(self, name: str, arg: sympy.Expr, c: float, expr: sympy.Expr) -> Edge:
        a, b, g = self.affine(arg)
        return Edge(self._check(name, expr), a, b, c, self.node(g), expr, c)

    def edge(self, expr: sympy.Expr, c: float) -> Edge:
        """The edge computing ``c·expr`` for a non-constant, non-sum ``expr``."""
        if isinstance(expr, sympy.Symbol) or expr.is_Mul:
            return Edge("x", 1.0, 0.0, c, self.node(expr), expr, c)
        if expr.is_Pow:
            return self._pow_edge(expr, c)
        name = SYMPY_TO_LIBRARY.get(type(expr).__name__)
        if name is None or len(expr.args) != 1:
            fname = getattr(expr.func, "__name__", str(expr.func))
            raise ValueError(f"kanpiler: unsupported function {fname!r} in {expr}")
        if name == "exp" and "gaussian" in self.library:
            b, rest = expr.args[0].as_independent(*self.symbols, as_Add=True)
            k, sq = rest.as_independent(*self.symbols, as_Add=False)
            if sq.is_Pow and sq.exp == 2 and k.is_negative:
                scale = math.sqrt(-_num(k, expr))
                a2, b2, g = self.affine(sq.base)
                c2 = c * math.exp(_num(b, expr))
                return Edge("gaussian", scale * a2, scale * b2, c2, self.node(g), expr, c)
        return self._fn_edge(name, expr.args[0], c, expr)

    def _pow_edge(self, expr: sympy.Pow, c: float) -> Edge:
        base, ex = expr.args
        if ex.free_symbols & set(self.symbols):  # b**e = exp(e·log b)
            if base.free_symbols & set(self.symbols):
                inner = sympy.Mul(ex, sympy.log(base))
                return Edge(self._check("exp", expr), 1.0, 0.0, c, self.node(inner), expr, c)
            a, b, g = self.affine(ex)
            lb = _num(sympy.log(base), expr)
            return Edge(self._check("exp", expr), a * lb, b * lb, c, self.node(g), expr, c)
        p = ex if ex.is_Rational else sympy.nsimplify(ex, rational=True) if ex.is_Float else None
        chain = _pow_chain(sympy.Rational(p), self.powers) if p is not None else None
        if chain is None:  # x**p = exp(p·log x), for a positive base
            self._check("log", expr)
            return Edge(self._check("exp", expr), _num(ex, expr), 0.0, c,
                        self.node(sympy.log(base)), expr, c)  # fmt: skip
        outer = chain[-1]
        if len(chain) == 1:
            return self._fn_edge(POWER_NAMES[outer], base, c, expr)
        inner = sympy.Pow(base, sympy.Rational(p) / outer)
        return Edge(POWER_NAMES[outer], 1.0, 0.0, c, self.node(inner), expr, c)


def expression_tree(
    expr: sympy.Expr,
    variables: Sequence[sympy.Symbol] | None = None,
    *,
    library: Iterable[str] | None = None,
    mult_arity: int | None = None,
) -> TreeNode:
    """Parse ``expr`` into a :class:`TreeNode` DAG (print it with ``str``).

    Args:
        expr: the formula; its non-constant symbols must be among ``variables``.
        variables: the input symbols (default: the free symbols of ``expr``).
        library: allowed symbolic-function names (default: every registered one).
        mult_arity: the most factors one product node may have (``None``: no limit).

    Raises:
        ValueError: an unsupported function (named), or one missing from ``library``.
    """
    from physkan.symbolic.library import available_symbolic, get_symbolic

    expr = sympy.sympify(expr)
    symbols = (
        list(variables)
        if variables is not None
        else sorted(expr.free_symbols, key=lambda s: s.name)
    )
    names = (
        set(available_symbolic()) if library is None else {get_symbolic(n).name for n in library}
    )
    return _Parser(symbols, names | {"x"}, mult_arity).node(expr)


def variable_nodes(root: TreeNode) -> dict[sympy.Symbol, TreeNode]:
    """The ``"var"`` nodes of the DAG below ``root``, by symbol."""
    seen: set[int] = set()
    found: dict[sympy.Symbol, TreeNode] = {}
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node.kind == "var":
            found[node.expr] = node
        stack.extend(node.children())
    return found
