"""Anatomical structure: neuron swapping, sparse initialisation and module constraints.

* :func:`auto_swap` permutes the hidden nodes of every layer (a function-preserving
  relabelling) to shorten the weighted connections of the network diagram (KAN 2.0,
  Sec. 4.2.1); node ``i`` of a layer with ``n`` nodes sits at ``(i + 0.5) / n``.
* :func:`sparse_init` masks all but a fraction of the edges (trick B of Sec. 4.3), keeping
  every node connected.
* :func:`constrain_module` masks the edges between a block of nodes and the rest of the
  next layer (a module / block-diagonal constraint, Sec. 3.2).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from physkan.interpret.attribution import attribution, subnode_to_node
from physkan.interpret.prune import _subnodes_of, select_nodes
from physkan.kan import MultKAN

__all__ = ["auto_swap", "connection_cost", "constrain_module", "sparse_init"]


def _positions(n: int) -> Tensor:
    return (torch.arange(n, dtype=torch.float64) + 0.5) / n


def _node_weights(model: MultKAN, x: Tensor) -> list[Tensor]:
    """Per KAN layer, node-to-node edge scores ``(n_nodes(l), n_nodes(l+1))``."""
    att = attribution(model, x)
    return [subnode_to_node(model, lyr + 1, att.edge_scores[lyr]).double()
            for lyr in range(model.depth)]


def connection_cost(weights: Sequence[Tensor], perms: Sequence[Sequence[int]]) -> float:
    """``sum_l sum_ij w_ij |pos(perm_l^-1 i) - pos(perm_{l+1}^-1 j)|`` for node orders ``perms``."""
    total = 0.0
    for lyr, w in enumerate(weights):
        p_in = torch.empty(w.shape[0], dtype=torch.float64)
        p_in[list(perms[lyr])] = _positions(w.shape[0])
        p_out = torch.empty(w.shape[1], dtype=torch.float64)
        p_out[list(perms[lyr + 1])] = _positions(w.shape[1])
        total += float((w * (p_in[:, None] - p_out[None, :]).abs()).sum())
    return total


@torch.no_grad()
def auto_swap(model: MultKAN, x: Tensor, max_rounds: int = 10) -> MultKAN:
    """A new network with hidden nodes reordered to minimise :func:`connection_cost`.

    Greedy pairwise swaps (addition nodes among themselves, multiplication nodes among
    themselves) until no swap helps. The function is unchanged. ``x``: ``(N, n_in)``.
    """
    weights = _node_weights(model, x)
    perms = [list(range(model.n_nodes(lyr))) for lyr in range(model.depth + 1)]
    best = connection_cost(weights, perms)
    for _ in range(max_rounds):
        improved = False
        for lyr in range(1, model.depth):
            n_add, n_mult = model.width[lyr]
            for lo, hi in ((0, n_add), (n_add, n_add + n_mult)):
                for a in range(lo, hi):
                    for b in range(a + 1, hi):
                        perms[lyr][a], perms[lyr][b] = perms[lyr][b], perms[lyr][a]
                        cost = connection_cost(weights, perms)
                        if cost < best - 1e-12:
                            best, improved = cost, True
                        else:
                            perms[lyr][a], perms[lyr][b] = perms[lyr][b], perms[lyr][a]
        if not improved:
            break
    return select_nodes(model, perms)


@torch.no_grad()
def sparse_init(model: MultKAN, fraction: float = 0.3, seed: int = 0) -> MultKAN:
    """Mask edges so about ``fraction`` of each layer's edges stay (in place; returns model).

    Each input node keeps its edge to the nearest subnode (by position) and each subnode its
    edge from the nearest input node; further edges are added at random up to ``fraction``.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction!r}")
    gen = torch.Generator().manual_seed(seed)
    for layer in model.layers:
        n_in, n_out = layer.in_dim, layer.out_dim
        p_in, p_out = _positions(n_in), _positions(n_out)
        dist = (p_in[:, None] - p_out[None, :]).abs()
        mask = torch.zeros(n_in, n_out)
        mask[torch.arange(n_in), dist.argmin(1)] = 1.0
        mask[dist.argmin(0), torch.arange(n_out)] = 1.0
        extra = round(fraction * n_in * n_out) - int(mask.sum())
        if extra > 0:
            free = (mask == 0).nonzero()
            pick = free[torch.randperm(len(free), generator=gen)[:extra]]
            mask[pick[:, 0], pick[:, 1]] = 1.0
        layer.mask.mul_(mask.to(layer.mask))
    return model


@torch.no_grad()
def constrain_module(
    model: MultKAN, layer: int, in_nodes: Sequence[int], out_nodes: Sequence[int]
) -> MultKAN:
    """Make ``in_nodes`` of layer ``layer`` feed only ``out_nodes`` of layer ``layer + 1``
    and ``out_nodes`` receive only from ``in_nodes`` (masks cross edges; in place).

    ``out_nodes`` are node indices; a multiplication node brings all its subnodes.
    """
    if not 0 <= layer < model.depth:
        raise ValueError(f"layer must lie in [0, {model.depth - 1}], got {layer}")
    kan = model.layers[layer]
    ins = torch.zeros(kan.in_dim, dtype=torch.bool)
    ins[list(in_nodes)] = True
    outs = torch.zeros(kan.out_dim, dtype=torch.bool)
    outs[_subnodes_of(model, layer + 1, out_nodes)] = True
    cross = (ins[:, None] & ~outs[None, :]) | (~ins[:, None] & outs[None, :])
    kan.mask.masked_fill_(cross, 0.0)
    return model
