"""Tree converter (KAN 2.0, Sec. 4.2.2): the hierarchical modular structure of a function.

Unused inputs (attribution ~0) are left out of the tree. :func:`build_tree` tests, on a set
of variables ``S`` (the others held at their median), in order of specificity: additive
separability, multiplicative separability, a product plus a constant (``x0*x1 + 3``: a
``mul`` node with an ``offset``), generalized
separability ``F(g(y) + h(z))`` and finally generalized symmetry ``g(h(y), z)`` (largest
proper symmetric subset ``y``); it then recurses into every group found. Holding the other
variables fixed keeps each sub-function's structure up to an outer function/constant, which
the generalized tests are insensitive to. Works on any differentiable function or module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from physkan.interpret.modularity import (
    Func,
    as_function,
    general_separability,
    gradient,
    hessian,
    separability,
    variable_labels,
)
from physkan.interpret.symmetry import UNUSED_THRESHOLD, find_symmetries, used_inputs

__all__ = ["TreeNode", "build_tree", "plot_tree", "product_offset", "tree_of"]

_SYMBOL = {"add": "+", "mul": "×", "general": "F(+)", "symmetry": "g(h,·)",
           "inseparable": "f", "var": ""}


@dataclass
class TreeNode:
    """A node of the modularity tree.

    Attributes:
        kind: ``"var"`` (a leaf), ``"add"``, ``"mul"``, ``"general"`` (``F(g + h)``),
            ``"symmetry"`` (``g(h(first child), second child)``) or ``"inseparable"``.
        variables: names of the variables below this node.
        children: sub-trees (empty for a leaf).
    """

    kind: str
    variables: list[str]
    children: list[TreeNode] = field(default_factory=list)
    #: constant added to a ``"mul"`` node (``x0*x1 + 3``: offset 3).
    offset: float = 0.0

    def formula(self) -> str:
        """A compact formula-like rendering, e.g. ``"[x1 × x2] + x3"``."""
        if self.kind == "var":
            return self.variables[0]
        parts = [c.formula() if c.kind == "var" else f"[{c.formula()}]" for c in self.children]
        if self.kind == "add":
            return " + ".join(parts)
        if self.kind == "mul":
            prod = " × ".join(parts)
            return f"{prod} {'+' if self.offset >= 0 else '-'} {abs(self.offset):.4g}" \
                if self.offset else prod  # fmt: skip
        if self.kind == "general":
            return "F(" + " + ".join(parts) + ")"
        if self.kind == "symmetry":
            return f"g(h({parts[0].strip('[]')}), {', '.join(parts[1:])})"
        return "f(" + ", ".join(parts) + ")"

    def _lines(self, prefix: str = "", last: bool = True, root: bool = True) -> list[str]:
        label = self.variables[0] if self.kind == "var" else (
            f"{_SYMBOL[self.kind]} {self.kind} [{', '.join(self.variables)}]")
        if self.offset:
            label += f" {self.offset:+.4g}"
        lines = [label if root else prefix + ("└── " if last else "├── ") + label]
        child_prefix = "" if root else prefix + ("    " if last else "│   ")
        for i, child in enumerate(self.children):
            lines += child._lines(child_prefix, i == len(self.children) - 1, False)
        return lines

    def __str__(self) -> str:
        return "\n".join(self._lines())

    def leaves(self) -> list[TreeNode]:
        return [self] if not self.children else [v for c in self.children for v in c.leaves()]


def build_tree(
    f: Func | nn.Module,
    x: Tensor,
    names: Sequence[str] | None = None,
    threshold: float = 1e-2,
    sym_threshold: float | None = None,
    unused_threshold: float = UNUSED_THRESHOLD,
) -> TreeNode:
    """The modularity tree of ``f`` on samples ``x (N, n)``.

    Args:
        f: a module or function ``(N, n) -> (N,)`` / ``(N, 1)``.
        names: variable names (default: ``f.variables`` or ``x0..x{n-1}``).
        threshold: threshold of the separability tests (see :mod:`.modularity`).
        sym_threshold: threshold of the symmetry test (default ``threshold``).
        unused_threshold: inputs with a smaller attribution are left out of the tree.
    """
    fn = as_function(f)
    n = x.shape[1]
    labels = variable_labels(names, f, n)
    x = x.detach().double()
    ref = x.median(0).values
    pool = used_inputs(fn, x, unused_threshold) or list(range(n))
    return _build(fn, x, ref, pool, labels, threshold,
                  threshold if sym_threshold is None else sym_threshold)


def product_offset(fn: Func, x: Tensor, pool: list[int], th: float) -> float | None:
    """The constant ``c`` when ``f = c + g(y)·h(z)`` on the samples ``x (N, n)``, else ``None``.

    For such an ``f`` and ``a`` in ``y``, ``b`` in ``z``: ``f - f_a f_b / f_ab = c`` on every
    sample; ``c`` is the median over the interacting pairs, accepted when the estimates agree
    (median deviation ``<= th·std(f)``) and ``|c| > th·std(f)`` (else plain ``mul`` applies).
    """
    with torch.no_grad():
        f = fn(x)
    scale = float(f.std().clamp_min(1e-12))
    g = gradient(fn, x)
    h = hessian(fn, x)
    std = x.std(0)
    ests = []
    for a, b in ((a, b) for k, a in enumerate(pool) for b in pool[k + 1:]):
        hab = h[:, a, b]
        if float(hab.abs().median()) * float(std[a] * std[b]) <= th * scale:
            continue
        ok = hab.abs() > 1e-3 * hab.abs().median()
        ests.append(f[ok] - g[ok, a] * g[ok, b] / hab[ok])
    if not ests:
        return None
    est = torch.cat(ests)
    c = float(est.median())
    if float((est - c).abs().median()) > th * scale or abs(c) <= th * scale:
        return None
    return c


def _build(fn: Func, x: Tensor, ref: Tensor, pool: list[int], labels: list[str],
           th: float, sym_th: float, offset: bool = True) -> TreeNode:
    """The tree of ``fn`` on ``pool`` (others at ``ref``); ``offset``: whether an additive
    constant means anything here (below a sum the terms' constants are arbitrary: a product
    plus a constant is then shown as the bare product)."""
    names = [labels[i] for i in pool]
    if len(pool) == 1:
        return TreeNode("var", names)
    xs = ref.expand_as(x).clone()
    xs[:, pool] = x[:, pool]
    for mode in ("add", "mul"):
        res = separability(fn, xs, mode, th, labels, names)
        if res.separable:
            return TreeNode(mode, names, [_build(fn, x, ref, g, labels, th, sym_th, mode == "mul")
                                          for g in res.groups])
    c = product_offset(fn, xs, pool, th)
    if c is not None:
        res = separability(lambda z: fn(z) - c, xs, "mul", th, labels, names)
        if res.separable:
            shifted = lambda z: fn(z) - c  # noqa: E731
            return TreeNode("mul", names, [_build(shifted, x, ref, g, labels, th, sym_th)
                                           for g in res.groups], offset=c if offset else 0.0)
    res = general_separability(fn, xs, th, labels, names)
    if res.separable:
        return TreeNode("general", names, [_build(fn, x, ref, g, labels, th, sym_th, False)
                                           for g in res.groups])
    syms = find_symmetries(fn, xs, sym_th, names, labels)
    if syms:
        group = max(syms, key=len)
        rest = [i for i in pool if i not in group]
        return TreeNode("symmetry", names, [_build(fn, x, ref, group, labels, th, sym_th),
                                            _build(fn, x, ref, rest, labels, th, sym_th)])
    return TreeNode("inseparable", names, [TreeNode("var", [labels[i]]) for i in pool])


def plot_tree(tree: TreeNode, path: str | Path, title: str | None = None) -> Path:
    """Draw ``tree`` (leaves at the bottom, the root on top) to a PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    leaves = tree.leaves()
    pos: dict[int, tuple[float, float]] = {}

    def depth(node: TreeNode) -> int:
        return 0 if not node.children else 1 + max(depth(c) for c in node.children)

    height = depth(tree)
    counter = iter(range(len(leaves)))

    def place(node: TreeNode, level: int) -> tuple[float, float]:
        if not node.children:
            xy = (float(next(counter)), 0.0)
        else:
            kids = [place(c, level + 1) for c in node.children]
            xy = (sum(k[0] for k in kids) / len(kids), float(height - level))
        pos[id(node)] = xy
        return xy

    place(tree, 0)
    fig, ax = plt.subplots(figsize=(1.4 + 1.2 * len(leaves), 1.2 + 1.1 * height))

    def draw(node: TreeNode) -> None:
        x0, y0 = pos[id(node)]
        for c in node.children:
            x1, y1 = pos[id(c)]
            ax.plot([x0, x1], [y0, y1], color="0.4", lw=1.5, zorder=1)
            draw(c)
        text = node.variables[0] if node.kind == "var" else _SYMBOL[node.kind]
        style = dict(boxstyle="round", fc="#dbe9f6" if node.kind == "var" else "#fde0c5",
                     ec="0.3")
        ax.text(x0, y0, text, ha="center", va="center", fontsize=11, bbox=style, zorder=2)

    draw(tree)
    ax.set_xlim(-0.7, len(leaves) - 0.3)
    ax.set_ylim(-0.5, height + 0.5)
    ax.axis("off")
    ax.set_title(title or tree.formula(), fontsize=10)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def tree_of(model: nn.Module, x: Tensor, **kwargs: object) -> TreeNode:
    """Shorthand for :func:`build_tree` on a model (uses its variable names)."""
    return build_tree(model, x, **kwargs)  # type: ignore[arg-type]


