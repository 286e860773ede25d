"""MultKAN: widths, multiplication nodes, regularisation, save/load, seeds, errors."""

from __future__ import annotations

import math

import pytest
import torch

from physkan import KAN, MultKAN
from physkan.kan.regularize import layer_entropy


def test_width_forms_and_shapes() -> None:
    model = MultKAN([2, [5, 2], 1])
    assert model.width == [(2, 0), (5, 2), (1, 0)]
    assert model.layers[0].out_dim == 5 + 2 * 2
    assert model.layers[1].in_dim == 7
    assert model(torch.rand(10, 2)).shape == (10, 1)
    assert KAN is MultKAN


def test_mult_arity_configurable() -> None:
    model = MultKAN([3, [0, 1], 1], mult_arity=3)
    assert model.layers[0].out_dim == 3


def test_multiplication_node_multiplies_subnodes() -> None:
    """A [2,[0,1],1] network whose edges are identities computes x*y."""
    model = MultKAN([2, [0, 1], 1], base_fun="identity").double()
    for layer in model.layers:
        layer.coef.data.zero_()
        layer.scale_base.data.zero_()
    model.layers[0].scale_base.data[:] = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    model.layers[1].scale_base.data[:] = 1.0
    x = torch.rand(20, 2, dtype=torch.float64)
    assert torch.allclose(model(x)[:, 0], x[:, 0] * x[:, 1])


def test_seed_reproducible_and_distinct() -> None:
    x = torch.rand(5, 2)
    assert torch.equal(MultKAN([2, 3, 1], seed=7)(x), MultKAN([2, 3, 1], seed=7)(x))
    assert not torch.equal(MultKAN([2, 3, 1], seed=7)(x), MultKAN([2, 3, 1], seed=8)(x))


def test_regularization_matches_paper_definition() -> None:
    model = MultKAN([2, 3, 1]).double()
    x = torch.rand(50, 2, dtype=torch.float64) * 2 - 1
    y, acts = model.forward_with_activations(x)
    assert torch.allclose(y, model(x))
    expected = 0.0
    for edges in acts.edges:
        norms = edges.abs().mean(0)
        p = norms / norms.sum()
        expected += norms.sum().item() + 2.0 * -(p * torch.log(p)).sum().item()
    reg = model.regularization(acts, lamb_l1=1.0, lamb_entropy=2.0)
    assert reg.item() == pytest.approx(expected, rel=1e-6)
    uniform = torch.ones(2, 3)
    assert layer_entropy(uniform).item() == pytest.approx(math.log(6), rel=1e-6)


def test_save_load_round_trip_is_exact(tmp_path) -> None:
    model = MultKAN([2, [3, 1], 2], grid=4, seed=3, variables=["a", "b"], outputs=["u", "v"]).double()
    model.update_grid(torch.rand(100, 2, dtype=torch.float64) * 3 - 1)
    model.layers[0].refine(8)
    model.layers[0].mask[1, 2] = 0
    path = tmp_path / "model.h5"
    model.save(path)
    loaded = MultKAN.load(path)
    assert loaded.variables == ["a", "b"] and loaded.outputs == ["u", "v"]
    for (n1, t1), (n2, t2) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert n1 == n2 and t1.dtype == t2.dtype and torch.equal(t1, t2)
    x = torch.rand(30, 2, dtype=torch.float64)
    assert torch.equal(model(x), loaded(x))


def test_save_never_pickles(tmp_path) -> None:
    import h5py

    path = tmp_path / "m.h5"
    MultKAN([2, 2, 1]).save(path)
    with h5py.File(path) as fh:
        assert set(fh.keys()) == {"config", "state"}
        for ds in fh["state"].values():
            assert ds.dtype.kind == "f"


def test_to_dtype_moves_everything() -> None:
    model = MultKAN([2, [2, 1], 1]).to(torch.float64)
    assert all(t.dtype == torch.float64 for t in model.state_dict().values())
    assert model(torch.rand(3, 2, dtype=torch.float64)).dtype == torch.float64


@pytest.mark.parametrize(
    ("width", "match"),
    [([2], "at least"), ([2, 0, 1], r"width\[1\]"), ([[1, 1], 1], r"width\[0\]"), ([2, "a"], r"width\[1\]")],
)
def test_bad_width(width, match) -> None:
    with pytest.raises(ValueError, match=match):
        MultKAN(width)


def test_bad_input_wrong_width_and_nan() -> None:
    model = MultKAN([3, 2, 1], variables=["p", "q", "r"])
    with pytest.raises(ValueError, match=r"x: expected shape \(N, 3\)"):
        model(torch.rand(4, 2))
    with pytest.raises(ValueError, match="NaN"):
        model(torch.tensor([[0.0, float("nan"), 1.0]]))


def test_variable_name_errors() -> None:
    with pytest.raises(ValueError, match="variables"):
        MultKAN([2, 1], variables=["x"])
