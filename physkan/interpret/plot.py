"""Network diagram of a KAN with every edge's activation curve drawn on it.

Layer ``l`` nodes sit on the row ``y = l`` (inputs at the bottom). Every alive edge
``(l, i, j)`` gets a small box in the row above its layer showing ``phi_ij`` over the data;
a line runs from node ``i`` to the box and from the box to subnode ``j``. Transparency is
``tanh(beta * attribution score)``; symbolic edges are red and labelled with their
function; multiplication nodes are drawn as circled ``×`` with their subnodes below.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import Tensor

from physkan.interpret.attribution import attribution
from physkan.kan import MultKAN

__all__ = ["plot"]

_NUMERIC = "#1f3b73"
_SYMBOLIC = "#c0392b"


def _node_x(n: int, width: float) -> list[float]:
    return [(i + 0.5) / n * width for i in range(n)]


def _subnode_xy(model: MultKAN, layer: int, node_x: list[float], gap: float) -> list[tuple[float, float]]:
    """Positions of the subnodes of layer ``layer`` (below their mult node when it has any)."""
    n_add, n_mult = model.width[layer]
    if n_mult == 0:
        return [(x, float(layer)) for x in node_x]
    y_sub = layer - 0.16
    out = [(node_x[i], y_sub) for i in range(n_add)]
    for m in range(n_mult):
        cx = node_x[n_add + m]
        for r in range(model.mult_arity):
            out.append((cx + (r - (model.mult_arity - 1) / 2) * gap, y_sub))
    return out


@torch.no_grad()
def plot(
    model: MultKAN,
    x: Tensor,
    path: str | Path,
    *,
    beta: float = 3.0,
    title: str | None = None,
    dpi: int = 130,
) -> Path:
    """Draw ``model`` on samples ``x (N, n_in)`` to the PNG ``path``; returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle, Rectangle

    att = attribution(model, x)
    _, acts = model.forward_with_activations(x)
    n_max = max(model.n_nodes(lyr) for lyr in range(model.depth + 1))
    width = float(max(n_max, 2))
    alive = [(layer.mask > 0).nonzero().tolist() for layer in model.layers]
    n_box = max(max((len(a) for a in alive), default=1), 1)
    fig_w = max(4.0, min(16.0, 1.3 * width + 0.35 * n_box))
    fig, ax = plt.subplots(figsize=(fig_w, 1.0 + 2.3 * model.depth))
    node_xs = [_node_x(model.n_nodes(lyr), width) for lyr in range(model.depth + 1)]
    r_node = 0.04 * width / max(fig_w / 4, 1)

    for lyr, layer in enumerate(model.layers):
        edges = alive[lyr]
        subs = _subnode_xy(model, lyr + 1, node_xs[lyr + 1], 0.3 * width / model.n_nodes(lyr + 1))
        n_e = max(len(edges), 1)
        slot = width / n_e
        bw = min(0.8 * slot, 0.22 * width / max(math.sqrt(n_e), 1), 0.55)
        bh = 0.22
        y_box = lyr + 0.5
        inputs = acts.inputs[lyr]
        symbolic = {(i, j): name for i, j, name in layer.symbolic_edges()}
        for k, (i, j) in enumerate(edges):
            score = float(att.edge_scores[lyr][i, j])
            alpha = max(0.03, math.tanh(beta * score))
            color = _SYMBOLIC if (i, j) in symbolic else _NUMERIC
            bx = (k + 0.5) * slot
            xi, yi = node_xs[lyr][i], float(lyr)
            sx, sy = subs[j]
            ax.plot([xi, bx], [yi, y_box - bh / 2], color=color, alpha=alpha, lw=1.2, zorder=1)
            ax.plot([bx, sx], [y_box + bh / 2, sy], color=color, alpha=alpha, lw=1.2, zorder=1)
            ax.add_patch(Rectangle((bx - bw / 2, y_box - bh / 2), bw, bh, fill=True, fc="white",
                                   ec=color, alpha=alpha, lw=1.0, zorder=2))
            order = torch.argsort(inputs[:, i])
            u = inputs[order, i].double()
            v = acts.edges[lyr][order, i, j].double()
            u = (u - u.min()) / (u.max() - u.min()).clamp_min(1e-12)
            span = float(v.max() - v.min())
            v = (v - v.min()) / span if span > 1e-9 else torch.full_like(v, 0.5)
            ax.plot((bx - bw / 2 + 0.08 * bw + 0.84 * bw * u).numpy(),
                    (y_box - bh / 2 + 0.1 * bh + 0.8 * bh * v).numpy(),
                    color=color, alpha=alpha, lw=1.4, zorder=3)
            if (i, j) in symbolic:
                ax.text(bx, y_box + bh / 2 + 0.03, symbolic[(i, j)], ha="center", va="bottom",
                        fontsize=9, color=_SYMBOLIC, alpha=max(alpha, 0.5), zorder=4)
        n_add, n_mult = model.width[lyr + 1]
        if n_mult:  # addition subnodes sit below their node in a layer with mult nodes
            for i in range(n_add):
                ax.plot([subs[i][0]] * 2, [subs[i][1], lyr + 1], color="0.3", lw=1.0, zorder=1)
        for m in range(n_mult):  # subnodes -> mult node
            cx = node_xs[lyr + 1][n_add + m]
            for r in range(model.mult_arity):
                sx, sy = subs[n_add + model.mult_arity * m + r]
                ax.plot([sx, cx], [sy, lyr + 1], color="0.3", lw=1.0, zorder=1)
                ax.add_patch(Circle((sx, sy), r_node * 0.45, color="0.3", zorder=5))

    for lyr in range(model.depth + 1):
        n_add, _ = model.width[lyr]
        for i, cx in enumerate(node_xs[lyr]):
            if i < n_add:
                ax.add_patch(Circle((cx, lyr), r_node, color="black", zorder=5))
            else:
                ax.add_patch(Circle((cx, lyr), r_node * 1.6, fc="white", ec="black", lw=1.5,
                                    zorder=5))
                ax.text(cx, lyr, "×", ha="center", va="center", fontsize=11, zorder=6)
    for i, name in enumerate(model.variables):
        ax.text(node_xs[0][i], -0.12, name, ha="center", va="top", fontsize=11)
    for i, name in enumerate(model.outputs):
        ax.text(node_xs[-1][i], model.depth + 0.1, name, ha="center", va="bottom", fontsize=11)

    ax.set_xlim(-0.05 * width, 1.05 * width)
    ax.set_ylim(-0.35, model.depth + 0.35)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=11)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return path
