"""Attribution scores of edges, nodes and inputs (KAN 2.0, eq. 9).

Scores are propagated backwards from the outputs. Every output starts with score 1; a node
passes its score to its subnodes (an addition node to its single subnode, a multiplication
node to each of the subnodes it multiplies), and a subnode ``j`` of layer ``l+1`` passes
``B_{l,i,j} = A_{l+1,j} * E_{l,i,j} / N_{l+1,j}`` to edge ``(i, j)``, where ``E`` is the
standard deviation of the edge activation over the data and ``N`` that of the subnode (the
sum of its incoming edges). A node's score is the sum of its outgoing edges' scores. As in
pykan, the propagation runs once per output and the scores are averaged over the outputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from physkan.kan import MultKAN

__all__ = ["Attribution", "attribution", "node_to_subnode_scores"]

_EPS = 1e-4


@dataclass
class Attribution:
    """Attribution scores of a model on some data.

    Attributes:
        node_scores: per layer ``l = 0..L``, the node scores ``(n_nodes(l),)``; layer 0
            holds the inputs, layer ``L`` the outputs (all ones).
        edge_scores: per KAN layer ``l = 0..L-1``, the edge scores ``(in_l, n_subnodes(l+1))``.
        subnode_scores: per KAN layer, the subnode scores ``(n_subnodes(l+1),)``.
        input_scores: ``node_scores[0]``, ``(n_in,)``.
        ranking: input names, most important first.
    """

    node_scores: list[Tensor]
    edge_scores: list[Tensor]
    subnode_scores: list[Tensor]
    input_scores: Tensor
    ranking: list[str]

    def node_edge_scores(self, model: MultKAN, layer: int) -> Tensor:
        """Edge scores of layer ``layer`` summed per *node* of layer ``layer+1``: ``(in, out_nodes)``."""
        return subnode_to_node(model, layer + 1, self.edge_scores[layer])


def node_to_subnode_scores(model: MultKAN, layer: int, scores: Tensor) -> Tensor:
    """Scores ``(..., n_nodes(layer))`` -> ``(..., n_subnodes(layer))`` (mult nodes copied)."""
    n_add, n_mult = model.width[layer]
    mult = scores[..., n_add:].unsqueeze(-1).expand(*scores.shape[:-1], n_mult, model.mult_arity)
    return torch.cat([scores[..., :n_add], mult.reshape(*scores.shape[:-1], -1)], dim=-1)


def subnode_to_node(model: MultKAN, layer: int, values: Tensor) -> Tensor:
    """Sum values ``(..., n_subnodes(layer))`` over each node's subnodes: ``(..., n_nodes)``."""
    n_add, n_mult = model.width[layer]
    mult = values[..., n_add:].reshape(*values.shape[:-1], n_mult, model.mult_arity).sum(-1)
    return torch.cat([values[..., :n_add], mult], dim=-1)


@torch.no_grad()
def attribution(model: MultKAN, x: Tensor) -> Attribution:
    """Attribution scores of ``model`` on samples ``x (N, n_in)`` (eq. 9 of KAN 2.0)."""
    _, acts = model.forward_with_activations(x)
    n_out = model.n_nodes(model.depth)
    node = torch.eye(n_out, dtype=x.dtype)  # (n_out queries, n_nodes)
    nodes, edges, subs = [node], [], []
    for lyr in range(model.depth - 1, -1, -1):
        sub = node_to_subnode_scores(model, lyr + 1, node)  # (q, n_sub)
        edge_std = acts.edges[lyr].std(0) if x.shape[0] > 1 else acts.edges[lyr].abs()[0]
        sub_std = acts.edges[lyr].sum(1).std(0) if x.shape[0] > 1 else edge_std.sum(0)
        edge = edge_std[None] * (sub / (sub_std + _EPS))[:, None, :]  # (q, in, n_sub)
        node = edge.sum(-1)
        subs.append(sub)
        edges.append(edge)
        nodes.append(node)
    node_scores = [s.mean(0) for s in reversed(nodes)]
    edge_scores = [s.mean(0) for s in reversed(edges)]
    sub_scores = [s.mean(0) for s in reversed(subs)]
    inputs = node_scores[0]
    order = torch.argsort(inputs, descending=True, stable=True).tolist()
    return Attribution(
        node_scores=node_scores,
        edge_scores=edge_scores,
        subnode_scores=sub_scores,
        input_scores=inputs,
        ranking=[model.variables[i] for i in order],
    )
