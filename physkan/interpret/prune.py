"""Pruning: build a NEW, smaller :class:`MultKAN` keeping only the important parts.

:func:`select_nodes` is the workhorse: given, per layer, the (ordered) node indices to keep,
it slices every per-edge tensor (``coef``, ``grid``, scales, masks, symbolic state) and
every affine, and builds a network of the smaller width. A multiplication node is kept or
removed together with all of its subnodes. The constant part (mean over the data) of every
edge that disappears is folded into the bias of the subnode it fed, so the output is
unchanged on the data wherever the removed parts were inactive (constant).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from physkan.interpret.attribution import attribution
from physkan.interpret.history import inherit_history
from physkan.kan import MultKAN

__all__ = ["drop_dead_nodes", "prune", "prune_edge", "prune_input", "prune_node", "select_nodes"]


def _subnodes_of(model: MultKAN, layer: int, nodes: Sequence[int]) -> list[int]:
    """Subnode indices of layer ``layer`` behind ``nodes`` (kept in the given order)."""
    n_add, _ = model.width[layer]
    out: list[int] = []
    for n in nodes:
        if n < n_add:
            out.append(n)
        else:
            start = n_add + model.mult_arity * (n - n_add)
            out.extend(range(start, start + model.mult_arity))
    return out


@torch.no_grad()
def select_nodes(
    model: MultKAN, keep: Sequence[Sequence[int]], x: Tensor | None = None
) -> MultKAN:
    """A new network with only the nodes ``keep[l]`` of every layer ``l = 0..L``.

    Args:
        model: the source network (left untouched).
        keep: per layer, node indices to keep; addition nodes must come before
            multiplication nodes (the order inside each kind may permute nodes).
        x: samples ``(N, n_in)``; when given, the mean of each removed edge is folded
            into the bias of its subnode.

    Returns:
        A network whose width is the kept nodes, with variables/outputs names sliced.
    """
    if len(keep) != model.depth + 1:
        raise ValueError(f"keep: expected {model.depth + 1} layers, got {len(keep)}")
    width: list[list[int]] = []
    for lyr, nodes in enumerate(keep):
        n_add = model.width[lyr][0]
        adds = [n for n in nodes if n < n_add]
        if list(nodes[: len(adds)]) != adds or len(set(nodes)) != len(nodes):
            raise ValueError(f"keep[{lyr}]: addition nodes first, no repeats, got {list(nodes)}")
        if not nodes or max(nodes) >= model.n_nodes(lyr) or min(nodes) < 0:
            raise ValueError(f"keep[{lyr}]: need 1..{model.n_nodes(lyr)} valid nodes, got {list(nodes)}")
        width.append([len(adds), len(nodes) - len(adds)])
    means = _edge_means(model, x) if x is not None else None
    cfg = model.config()
    cfg["width"] = [a if m == 0 else [a, m] for a, m in width]
    cfg["variables"] = [model.variables[i] for i in keep[0]]
    cfg["outputs"] = [model.outputs[i] for i in keep[-1]]
    subs = [_subnodes_of(model, lyr + 1, keep[lyr + 1]) for lyr in range(model.depth)]
    cfg["symbolic_names"] = [
        [[layer.symbolic_names[i][j] for j in subs[lyr]] for i in keep[lyr]]
        for lyr, layer in enumerate(model.layers)
    ]
    new = MultKAN.from_config(cfg).to(model.layers[0].coef)
    for lyr, (old_l, new_l) in enumerate(zip(model.layers, new.layers, strict=True)):
        rows = torch.tensor(list(keep[lyr]), dtype=torch.long)
        cols = torch.tensor(subs[lyr], dtype=torch.long)
        new_l.grid.copy_(old_l.grid[rows])
        new_l.coef.copy_(old_l.coef[rows][:, :, cols])
        for name in ("scale_base", "scale_sp", "mask", "symbolic_mask", "symbolic_affine"):
            getattr(new_l, name).copy_(getattr(old_l, name)[rows][:, cols])
        bias = model.subnode_bias[lyr][cols].clone()
        if means is not None:
            dropped = torch.ones(old_l.in_dim, dtype=torch.bool)
            dropped[rows] = False
            lost = means[lyr][dropped].sum(0)
            bias += model.subnode_scale[lyr][cols] * lost[cols]
        new.subnode_scale[lyr].copy_(model.subnode_scale[lyr][cols])
        new.subnode_bias[lyr].copy_(bias)
        out_nodes = torch.tensor(list(keep[lyr + 1]), dtype=torch.long)
        new.node_scale[lyr].copy_(model.node_scale[lyr][out_nodes])
        new.node_bias[lyr].copy_(model.node_bias[lyr][out_nodes])
    inherit_history(model, new)
    return new


def _edge_means(model: MultKAN, x: Tensor) -> list[Tensor]:
    """Mean over ``x`` of every (masked) edge activation: ``(in, n_sub)`` per layer."""
    _, acts = model.forward_with_activations(x)
    return [edges.mean(0) for edges in acts.edges]


def _keep_layer(scores: Tensor, threshold: float) -> list[int]:
    """Indices with ``score > threshold`` (at least the best one), addition nodes first order."""
    kept = (scores > threshold).nonzero().flatten().tolist()
    return kept or [int(scores.argmax())]


@torch.no_grad()
def prune_node(model: MultKAN, x: Tensor, threshold: float = 1e-2) -> MultKAN:
    """Remove hidden nodes whose attribution score is ``<= threshold`` (new network).

    ``x``: samples ``(N, n_in)``. Inputs and outputs are kept.
    """
    att = attribution(model, x)
    keep = [list(range(model.n_nodes(0)))]
    keep += [_keep_layer(att.node_scores[lyr], threshold) for lyr in range(1, model.depth)]
    keep.append(list(range(model.n_nodes(model.depth))))
    return select_nodes(model, keep, x)


@torch.no_grad()
def prune_edge(model: MultKAN, x: Tensor, threshold: float = 3e-2) -> MultKAN:
    """Mask edges whose attribution score is ``< threshold`` (new network, same width).

    The mean of each removed edge over ``x (N, n_in)`` is folded into its subnode's bias.
    """
    att = attribution(model, x)
    means = _edge_means(model, x)
    new = model.copy()
    inherit_history(model, new)
    for lyr, layer in enumerate(new.layers):
        drop = (att.edge_scores[lyr] < threshold) & (layer.mask > 0)
        lost = (means[lyr] * drop).sum(0)
        new.subnode_bias[lyr].add_(new.subnode_scale[lyr] * lost)
        layer.mask.masked_fill_(drop, 0.0)
    return new


def prune(
    model: MultKAN, x: Tensor, node_th: float = 1e-2, edge_th: float = 3e-2
) -> MultKAN:
    """:func:`prune_node`, :func:`prune_edge`, then drop the hidden nodes left without
    alive incoming or outgoing edges (a new network)."""
    return drop_dead_nodes(prune_edge(prune_node(model, x, node_th), x, edge_th), x)


@torch.no_grad()
def drop_dead_nodes(model: MultKAN, x: Tensor) -> MultKAN:
    """Remove hidden nodes with no alive outgoing edge, or whose subnodes all lack alive
    incoming edges (constants, folded into the next biases). ``x``: ``(N, n_in)``."""
    keep = [list(range(model.n_nodes(0)))]
    for lyr in range(1, model.depth):
        fed = model.layers[lyr - 1].mask.sum(0) > 0  # (n_sub,)
        used = model.layers[lyr].mask.sum(1) > 0  # (n_nodes,)
        nodes = [n for n in range(model.n_nodes(lyr))
                 if used[n] and bool(fed[_subnodes_of(model, lyr, [n])].any())]
        keep.append(nodes or [int(used.float().argmax())])
    keep.append(list(range(model.n_nodes(model.depth))))
    return select_nodes(model, keep, x)


@torch.no_grad()
def prune_input(
    model: MultKAN,
    x: Tensor,
    threshold: float | None = None,
    keep: Sequence[str] | None = None,
) -> MultKAN:
    """Drop input variables: those scoring ``<= threshold`` (default ``1e-2``), or all but ``keep``.

    Args:
        x: samples ``(N, n_in)`` used for the attribution and the bias folding.
        threshold: attribution threshold (ignored when ``keep`` is given).
        keep: names of the variables to keep (in the model's order).

    Returns:
        A new network whose ``variables`` are the kept inputs; feed it ``x[:, kept]``.
    """
    if keep is not None:
        unknown = [k for k in keep if k not in model.variables]
        if unknown:
            raise ValueError(f"keep: unknown variables {unknown}; the model has {model.variables}")
        inputs = [i for i, v in enumerate(model.variables) if v in set(keep)]
    else:
        th = 1e-2 if threshold is None else threshold
        inputs = _keep_layer(attribution(model, x).input_scores, th)
    nodes = [inputs] + [list(range(model.n_nodes(lyr))) for lyr in range(1, model.depth + 1)]
    return select_nodes(model, nodes, x)

