"""Attribution, pruning and modularity on a trained KAN for f = x1*x2 + sin(x3) (+ distractor x4)."""

from __future__ import annotations

import pytest
import torch
from _fit import fit_lbfgs

from physkan.interpret import (
    attribution,
    prune,
    prune_edge,
    prune_input,
    prune_node,
    select_nodes,
    separability,
)
from physkan.kan import MultKAN


def _target(x: torch.Tensor) -> torch.Tensor:
    return (x[:, 0] * x[:, 1] + torch.sin(x[:, 2]))[:, None]


@pytest.fixture(scope="module")
def data() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(600, 4, generator=gen) * 2 - 1
    return x, _target(x)


@pytest.fixture(scope="module")
def trained(data: tuple[torch.Tensor, torch.Tensor]) -> MultKAN:
    x, y = data
    model = MultKAN([4, [4, 2], 1], grid=5, seed=0, variables=["x1", "x2", "x3", "x4"])
    rmse = fit_lbfgs(model, x, y, steps=80, lamb=1e-2)
    assert rmse < 0.08
    return model


@pytest.fixture(scope="module")
def pruned_small(trained: MultKAN, data) -> MultKAN:
    """The paper's workflow: prune, drop unused inputs, retrain."""
    x, y = data
    small = prune_input(prune(trained, x), x)
    assert fit_lbfgs(small, x[:, :3], y, steps=60) < 0.03
    return small


def test_attribution_shapes_and_ranking(trained: MultKAN, data) -> None:
    x, _ = data
    att = attribution(trained, x)
    assert [s.shape for s in att.node_scores] == [(4,), (6,), (1,)]
    assert [s.shape for s in att.edge_scores] == [(4, 8), (6, 1)]
    assert torch.allclose(att.node_scores[-1], torch.ones(1))
    assert att.ranking[-1] == "x4"
    assert att.input_scores[3] < 0.1 * att.input_scores[:3].min()


def test_attribution_passes_mult_scores_to_every_subnode() -> None:
    model = MultKAN([2, [0, 1], 1], seed=0)
    x = torch.rand(200, 2) * 2 - 1
    att = attribution(model, x)
    assert att.subnode_scores[0].shape == (2,)
    assert torch.allclose(att.subnode_scores[0], att.node_scores[1].expand(2))


def test_prune_input_drops_distractor(trained: MultKAN, pruned_small: MultKAN, data) -> None:
    x, y = data
    assert pruned_small.variables == ["x1", "x2", "x3"]
    assert pruned_small.width[0] == (3, 0)
    direct = prune_input(trained, x, threshold=0.1)
    assert direct.variables == ["x1", "x2", "x3"]
    err = (direct(x[:, :3]) - trained(x)).pow(2).mean().sqrt()
    assert err < 0.05
    kept = prune_input(trained, x, keep=["x3", "x1"])
    assert kept.variables == ["x1", "x3"]
    with pytest.raises(ValueError, match="unknown variables"):
        prune_input(trained, x, keep=["nope"])


def test_prune_shrinks_and_keeps_function(trained: MultKAN, data) -> None:
    x, _ = data
    pruned = prune(trained, x)
    assert pruned.n_nodes(1) < trained.n_nodes(1)
    assert pruned.variables == trained.variables
    err = (pruned(x) - trained(x)).pow(2).mean().sqrt()
    assert err < 0.1


def test_prune_node_exact_when_removed_parts_are_constant() -> None:
    torch.manual_seed(0)
    model = MultKAN([2, [3, 1], 1], seed=0)
    with torch.no_grad():  # hidden add node 1 gets no input -> constant; mult node dead out
        model.layers[0].mask[:, 1] = 0
        model.subnode_bias[0][1] = 0.7
    x = torch.rand(300, 2) * 2 - 1
    small = prune_node(model, x, threshold=1e-6)
    assert small.width[1] == (2, 1)
    assert torch.allclose(small(x), model(x), atol=1e-5)
    # masking edges folds their mean into the bias
    edged = prune_edge(model, x, threshold=0.0)
    assert torch.allclose(edged(x), model(x), atol=1e-6)


def test_select_nodes_permutation_and_mult_consistency() -> None:
    model = MultKAN([3, [2, 2], 2], seed=1)
    x = torch.rand(100, 3) * 2 - 1
    perm = select_nodes(model, [[0, 1, 2], [1, 0, 3, 2], [1, 0]])
    assert torch.allclose(perm(x), model(x).flip(1), atol=1e-6)
    assert perm.outputs == ["y1", "y0"]
    drop_mult = select_nodes(model, [[0, 1, 2], [0, 1, 3], [0, 1]])
    assert drop_mult.width[1] == (2, 1)
    assert drop_mult.layers[0].coef.shape[2] == 2 + 2  # 2 add subnodes + 1 mult x arity 2
    with pytest.raises(ValueError):
        select_nodes(model, [[0, 1, 2], [2, 0], [0, 1]])


def test_trained_kan_is_additively_separable(trained: MultKAN, pruned_small: MultKAN, data) -> None:
    x, _ = data
    res = separability(pruned_small, x[:300, :3], mode="add")
    assert res.separable
    assert sorted(map(sorted, res.names)) == [["x1", "x2"], ["x3"]]
    # the unpruned model too (it still carries some noise, hence the looser threshold)
    res = separability(trained, x[:300], mode="add", threshold=0.1)
    groups = {frozenset(g) for g in res.names}
    assert frozenset({"x1", "x2"}) in groups and frozenset({"x3"}) in groups
