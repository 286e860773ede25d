"""kanpiler: compile a symbolic formula into an exactly equivalent, fully symbolic MultKAN.

KAN 2.0, Sec. 3.3. The formula is parsed into an expression tree
(:func:`physkan.symbolic.tree.expression_tree`: sums, products and unary-function edges with
folded affine arguments), every node is placed one layer above its deepest child (inputs at
layer 0, so the variables are combined in the first layer), and a child needed further up
is carried forward by dummy identity (``"x"``) nodes. Every used edge is a fixed symbolic
edge ``c·f(a·x + b) + d`` (numeric branch zeroed); unused edges are masked. Constants go
into an edge's ``d`` (or a subnode bias for an edge-less subnode); a product's coefficient
scales its first factor's edges.

Example::

    model = kanpiler(["x", "y"], "exp(sin(pi*x) + y**2)")   # width [2, 1, 1]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import sympy
import torch

from physkan.kan.network import MultKAN
from physkan.symbolic.parse import parse_expression
from physkan.symbolic.tree import Edge, Group, TreeNode, expression_tree, variable_nodes

__all__ = ["CompiledLayout", "build_model", "kanpiler", "layout"]


@dataclass
class CompiledLayout:
    """Placement of the tree's nodes in KAN layers.

    Attributes:
        layers: per layer, the nodes in KAN order (addition nodes, then multiplication
            nodes); a node is ``(tree node, is_carry)``. ``layers[0]`` are the inputs.
        index: ``(id(tree node), layer) -> position`` of a value available at that layer.
        mult_arity: the arity of every multiplication node.
    """

    layers: list[list[tuple[TreeNode, bool]]] = field(default_factory=list)
    index: dict[tuple[int, int], int] = field(default_factory=dict)
    mult_arity: int = 2

    @property
    def width(self) -> list[int | list[int]]:
        out: list[int | list[int]] = []
        for nodes in self.layers:
            n_mult = sum(1 for n, carry in nodes if n.kind == "mult" and not carry)
            out.append(len(nodes) - n_mult if n_mult == 0 else [len(nodes) - n_mult, n_mult])
        return out


def _heights(root: TreeNode) -> dict[int, int]:
    """``id(node) -> layer``: inputs 0, others one above their deepest child."""
    height: dict[int, int] = {}

    def visit(node: TreeNode) -> int:
        if id(node) not in height:
            kids = [visit(c) for c in node.children()]
            height[id(node)] = 0 if node.kind == "var" else 1 + max(kids, default=0)
        return height[id(node)]

    visit(root)
    return height


def layout(
    root: TreeNode, inputs: Sequence[TreeNode], mult_arity: int | None = None
) -> CompiledLayout:
    """Place ``root``'s DAG into layers, adding identity carries; ``root`` is the output.

    Args:
        root: a non-``"var"`` tree node (the output).
        inputs: the ``"var"`` nodes of all input variables, in input order.
        mult_arity: arity of multiplication nodes (``None``: the largest product, >= 2).
    """
    height = _heights(root)
    nodes: dict[int, TreeNode] = {}
    stack = [root]
    while stack:
        n = stack.pop()
        if id(n) not in nodes:
            nodes[id(n)] = n
            stack.extend(n.children())
    depth = height[id(root)]
    need: dict[int, int] = {}  # id(child) -> highest layer the child's value is needed at
    for n in nodes.values():
        for c in n.children():
            need[id(c)] = max(need.get(id(c), 0), height[id(n)] - 1)
    arity = mult_arity or max(
        (len(n.groups) for n in nodes.values() if n.kind == "mult"), default=2
    )
    out = CompiledLayout(mult_arity=max(arity, 2))
    out.layers = [[(n, False) for n in inputs]] + [[] for _ in range(depth)]
    order = sorted(nodes.values(), key=lambda n: (height[id(n)], n.kind == "mult"))
    for lyr in range(1, depth + 1):
        adds = [(n, False) for n in order if height[id(n)] == lyr and n.kind == "add"]
        carries = [(n, True) for n in order if height[id(n)] < lyr <= need.get(id(n), 0)]
        mults = [(n, False) for n in order if height[id(n)] == lyr and n.kind == "mult"]
        out.layers[lyr] = adds + carries + mults
    for lyr, layer_nodes in enumerate(out.layers):
        for pos, (n, _) in enumerate(layer_nodes):
            out.index[(id(n), lyr)] = pos
    for n in nodes.values():
        if n.kind == "mult" and len(n.groups) > out.mult_arity:
            raise ValueError(f"kanpiler: product {n.expr} has more than {out.mult_arity} factors")
    return out


def _set_edge(
    model: MultKAN, lyr: int, i: int, s: int, edge: Edge, d: float = 0.0, scale: float = 1.0
) -> None:
    layer = model.layers[lyr]
    layer.mask[i, s] = 1.0
    layer.symbolic_mask[i, s] = 1.0
    layer.symbolic_names[i][s] = edge.fn
    layer.symbolic_affine.data[i, s] = torch.tensor(
        [edge.a, edge.b, edge.c * scale, d], dtype=layer.symbolic_affine.dtype
    )


def _fill_subnode(
    model: MultKAN, lay: CompiledLayout, lyr: int, s: int, group: Group, scale: float = 1.0
) -> None:
    """Write ``scale·group`` into subnode ``s`` of layer ``lyr + 1``."""
    edges = list(group.edges.values())
    if not edges:
        model.subnode_bias[lyr].data[s] = group.const * scale
    for k, e in enumerate(edges):
        i = lay.index[(id(e.child), lyr)]
        _set_edge(model, lyr, i, s, e, group.const * scale if k == 0 else 0.0, scale)


def build_model(
    lay: CompiledLayout,
    *,
    variables: Sequence[str],
    output: str,
    grid: int,
    k: int,
    dtype: torch.dtype,
) -> MultKAN:
    """A MultKAN realising ``lay`` (all used edges symbolic, all others masked)."""
    model = MultKAN(
        lay.width, grid=grid, k=k, mult_arity=lay.mult_arity, seed=0,
        variables=list(variables), outputs=[output],
    ).to(dtype)  # fmt: skip
    ident = Group()
    with torch.no_grad():
        for layer in model.layers:
            layer.mask.zero_()
            layer.coef.zero_()
            layer.scale_base.zero_()
        for lyr, nodes in enumerate(lay.layers[1:]):
            n_add = sum(1 for n, carry in nodes if carry or n.kind != "mult")
            for pos, (node, carry) in enumerate(nodes):
                if carry:
                    ident.edges = {0: Edge("x", 1.0, 0.0, 1.0, node, node.expr, 1.0)}
                    _fill_subnode(model, lay, lyr, pos, ident)
                elif node.kind == "add":
                    _fill_subnode(model, lay, lyr, pos, node.groups[0])
                else:
                    first = n_add + lay.mult_arity * (pos - n_add)
                    model.node_bias[lyr].data[pos] = node.bias
                    for g in range(lay.mult_arity):
                        group = node.groups[g] if g < len(node.groups) else Group(const=1.0)
                        scale = node.scale if g == 0 else 1.0
                        _fill_subnode(model, lay, lyr, first + g, group, scale)
    return model


def _symbols(variables: Iterable[str | sympy.Symbol]) -> list[sympy.Symbol]:
    names = [v.name if isinstance(v, sympy.Symbol) else str(v) for v in variables]
    if not names or len(set(names)) != len(names):
        raise ValueError(f"kanpiler: variables must be unique names, got {names}")
    return [sympy.Symbol(n, real=True) for n in names]


def _to_expr(expr: sympy.Expr | str, syms: list[sympy.Symbol]) -> sympy.Expr:
    # strings parse to plain symbols (the public convention); the kanpiler works on the
    # real symbols of ``syms``, matched by name below
    expr = parse_expression(expr, syms) if isinstance(expr, str) else sympy.sympify(expr)
    by_name = {s.name: s for s in syms}
    foreign = sorted(s.name for s in expr.free_symbols if s.name not in by_name)
    if foreign:
        raise ValueError(
            f"kanpiler: {expr} uses {', '.join(foreign)}, which are not among the variables "
            f"({', '.join(by_name)})"
        )
    return expr.xreplace({s: by_name[s.name] for s in expr.free_symbols})


@torch.no_grad()
def _fit_grids(model: MultKAN, ranges: Mapping[str, tuple[float, float]], n: int = 512) -> None:
    """Adapt every layer's (unused) spline grid to the node values on samples of ``ranges``."""
    gen = torch.Generator().manual_seed(0)
    dtype = model.layers[0].coef.dtype
    cols = []
    for name in model.variables:
        lo, hi = ranges.get(name, model.grid_range)
        cols.append(lo + (hi - lo) * torch.rand(n, generator=gen, dtype=dtype))
    x = torch.stack(cols, dim=1)
    for lyr, layer in enumerate(model.layers):
        x = x[torch.isfinite(x).all(dim=1)]
        if x.shape[0] < 2:
            return
        layer.update_grid(x)
        x = model._combine(lyr, layer(x))


def kanpiler(
    variables: Sequence[str | sympy.Symbol],
    expr: sympy.Expr | str,
    *,
    grid: int = 5,
    k: int = 3,
    ranges: Mapping[str, tuple[float, float]] | None = None,
    library: Iterable[str] | None = None,
    output: str = "y",
    mult_arity: int | None = None,
    dtype: torch.dtype | None = None,
) -> MultKAN:
    """Compile ``expr`` into a MultKAN whose output equals it.

    Args:
        variables: input names or symbols (the model's inputs, in this order).
        expr: a sympy expression or a formula string over ``variables``.
        grid, k: spline grid of the (zeroed, unused) numeric branch, for later fine-tuning.
        ranges: ``{name: (lo, hi)}``: if given, every layer's grid is adapted to the values
            its nodes take on samples of this box (missing names use ``(-1, 1)``).
        library: allowed symbolic-function names (default: every registered one).
        output: the output's name.
        mult_arity: factors per multiplication node; ``None`` uses the largest product of
            the formula (one layer per product); ``2`` nests longer products.
        dtype: parameter dtype (default: torch's default); use ``torch.float64`` for exact
            constants.

    Returns:
        A model with ``model(x)`` ``(N, len(variables)) -> (N, 1)`` equal to ``expr``.
        ``x**p`` for a ``p`` outside the library's powers (and their compositions) uses
        ``exp(p·log x)``, valid for a positive base only.

    Raises:
        ValueError: an unsupported function (named), a symbol outside ``variables``, or a
            function outside ``library``.
    """
    if mult_arity is not None and (isinstance(mult_arity, bool) or mult_arity < 2):
        raise ValueError(f"kanpiler: mult_arity must be an integer >= 2, got {mult_arity!r}")
    syms = _symbols(variables)
    target = _to_expr(expr, syms)
    root = expression_tree(target, syms, library=library, mult_arity=mult_arity)
    if root.kind == "var":
        root = TreeNode(
            "add", root.expr, [Group({0: Edge("x", 1.0, 0.0, 1.0, root, root.expr, 1.0)})]
        )
    found = variable_nodes(root)
    inputs = [found.get(s) or TreeNode("var", s) for s in syms]
    lay = layout(root, inputs, mult_arity)
    model = build_model(
        lay, variables=[s.name for s in syms], output=output, grid=grid, k=k,
        dtype=dtype or torch.get_default_dtype(),
    )  # fmt: skip
    if ranges is not None:
        _fit_grids(model, ranges)
    return model
