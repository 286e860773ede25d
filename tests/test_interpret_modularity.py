"""Separability / symmetry tests, the tree converter and structural helpers."""

from __future__ import annotations

import torch
from _fit import fit_lbfgs

from physkan.interpret import (
    auto_swap,
    build_tree,
    connection_cost,
    constrain_module,
    plot_tree,
    sparse_init,
)
from physkan.interpret import modularity as mod
from physkan.kan import MultKAN


def _x(n: int, d: int, lo: float = -1.0, hi: float = 1.0, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return lo + (hi - lo) * torch.rand(n, d, generator=gen, dtype=torch.float64)


def test_additive_separability_on_true_function() -> None:
    x = _x(300, 4)
    res = mod.separability(lambda z: z[:, 0] * z[:, 1] + torch.sin(z[:, 2]), x)
    assert res.groups == [[0, 1], [2], [3]]
    assert str(res) == "{x0, x1} + {x2} + {x3}"
    assert mod.test_separability(lambda z: z[:, 0] * z[:, 1] + torch.sin(z[:, 2]), x, [[0, 1], [2]])
    assert not mod.test_separability(lambda z: z[:, 0] * z[:, 1], x, [[0], [1]])


def test_multiplicative_separability_true_and_trained() -> None:
    x = _x(300, 2, seed=1)
    f = lambda z: torch.exp(z[:, 0]) * z[:, 1]  # noqa: E731
    res = mod.separability(f, x, mode="mul", names=["x1", "x2"])
    assert res.names == [["x1"], ["x2"]]
    assert not mod.separability(f, x, mode="add").separable
    # a KAN whose output is a multiplication node, wired as modules x1 -> subnode 0, x2 -> 1
    xt = _x(300, 2, seed=2).float()
    xt[:, 1] = xt[:, 1] * 0.5 + 1.0
    y = f(xt)[:, None]
    model = MultKAN([2, [0, 1]], grid=5, seed=0, grid_range=(-1.0, 1.5))
    with torch.no_grad():
        model.layers[0].mask.copy_(torch.eye(2))
    assert fit_lbfgs(model, xt, y, steps=40) < 2e-2
    assert mod.test_separability(model, xt[:200], [[0], [1]], mode="mul")
    assert not mod.test_separability(model, xt[:200], [[0], [1]], mode="add")


def test_general_separability() -> None:
    x = _x(200, 3)
    f = lambda z: torch.sin(z[:, 0] + z[:, 1] ** 2) + z[:, 2]  # noqa: E731
    res = mod.general_separability(f, x)
    assert res.groups == [[0, 1], [2]]
    g = lambda z: torch.exp(z[:, 0] + z[:, 1] ** 2 + torch.sin(z[:, 2]))  # noqa: E731
    assert mod.general_separability(g, x).groups == [[0], [1], [2]]
    assert mod.test_general_separability(g, x, [[0], [1, 2]])
    assert not mod.test_general_separability(lambda z: z[:, 0] * z[:, 1] + z[:, 2], x, [[0], [1, 2]])


def test_symmetry_finds_radial_group() -> None:
    x = _x(200, 3)
    f = lambda z: (z[:, 0] ** 2 + z[:, 1] ** 2) ** 0.5 + z[:, 2]  # noqa: E731
    assert mod.test_symmetry(f, x, ["x0", "x1"])
    assert not mod.test_symmetry(f, x, ["x0", "x2"])
    assert mod.find_symmetries(f, x) == [[0, 1]]


def test_tree_converter() -> None:
    x = _x(200, 4)
    f = lambda z: (z[:, 0] ** 2 + z[:, 1] ** 2) ** 2 + torch.exp(z[:, 2]) * z[:, 3]  # noqa: E731
    tree = build_tree(f, x)
    assert tree.kind == "add"
    kinds = sorted(c.kind for c in tree.children)
    assert kinds == ["general", "mul"]
    assert {frozenset(c.variables) for c in tree.children} == {
        frozenset({"x0", "x1"}), frozenset({"x2", "x3"})}
    text = str(tree)
    assert "add [x0, x1, x2, x3]" in text and "└── " in text
    assert "×" in tree.formula()


def test_tree_symmetry_node_and_plot(tmp_path) -> None:
    x = _x(150, 3)
    r = lambda z: (z[:, 0] ** 2 + z[:, 1] ** 2) ** 0.5  # noqa: E731
    f = lambda z: r(z) * (z[:, 2] + r(z))  # noqa: E731
    tree = build_tree(f, x, names=["a", "b", "c"])
    assert tree.kind == "symmetry"
    assert tree.children[0].variables == ["a", "b"]
    path = plot_tree(tree, tmp_path / "tree.png")
    assert path.stat().st_size > 3000


def test_auto_swap_preserves_function_and_shortens() -> None:
    model = MultKAN([4, [4, 2], 2], seed=3)
    with torch.no_grad():  # two modules, wired crosswise
        model.layers[0].mask.zero_()
        model.layers[0].mask[0:2, 2:4] = 1
        model.layers[0].mask[2:4, 0:2] = 1
        model.layers[1].mask.zero_()
        model.layers[1].mask[2:4, 0] = 1
        model.layers[1].mask[0:2, 1] = 1
    x = torch.rand(200, 4) * 2 - 1
    swapped = auto_swap(model, x)
    assert torch.allclose(swapped(x), model(x), atol=1e-5)
    from physkan.interpret.structure import _node_weights

    ident = [list(range(model.n_nodes(lyr))) for lyr in range(3)]
    before = connection_cost(_node_weights(model, x), ident)
    after = connection_cost(_node_weights(swapped, x), ident)
    assert after < before


def test_sparse_init_and_constrain_module() -> None:
    model = sparse_init(MultKAN([4, 6, 1], seed=0), fraction=0.4)
    mask = model.layers[0].mask
    assert (mask.sum(1) > 0).all() and (mask.sum(0) > 0).all()
    assert int(mask.sum()) == round(0.4 * 24)
    m2 = constrain_module(MultKAN([4, [2, 1], 1], seed=0), 0, [0, 1], [2])
    mask = m2.layers[0].mask  # mult node 2 = subnodes 2, 3
    assert mask[:2, 2:].all() and not mask[:2, :2].any() and not mask[2:, 2:].any()
    assert mask[2:, :2].all()
