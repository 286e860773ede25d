"""augment_input / expand_width / expand_depth keep the function; perturb revives zero edges."""

from __future__ import annotations

import pytest
import torch

from physkan.kan.network import MultKAN
from physkan.symbolic.compile import kanpiler
from physkan.symbolic.expand import augment_input, expand_depth, expand_width, perturb

RANGES = {"m0": (0.5, 2.0), "v": (0.1, 0.9), "c": (1.0, 2.0)}


@pytest.fixture
def compiled() -> tuple[MultKAN, torch.Tensor]:
    """Relativistic mass, compiled (width [3, [1, 1], [0, 1]]), with samples ``(200, 3)``."""
    model = kanpiler(list(RANGES), "m0/sqrt(1 - v**2/c**2)", ranges=RANGES, dtype=torch.float64)
    x = torch.stack(
        [torch.empty(200, dtype=torch.float64).uniform_(*r) for r in RANGES.values()], 1
    )
    return model, x


@pytest.fixture
def numeric() -> tuple[MultKAN, torch.Tensor]:
    """A random (trained-looking) MultKAN with multiplication nodes and a masked edge."""
    model = MultKAN([2, [2, 2], [1, 1], 1], grid=4, seed=1).double()
    with torch.no_grad():
        model.layers[0].mask[1, 0] = 0.0
        model.node_bias[0].fill_(0.3)
        model.subnode_scale[1].fill_(1.5)
    return model, torch.rand(100, 2, dtype=torch.float64) * 2 - 1


def _close(a: MultKAN, xa: torch.Tensor, b: MultKAN, xb: torch.Tensor) -> bool:
    with torch.no_grad():
        return torch.allclose(a(xa), b(xb), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("fixture", ["compiled", "numeric"])
def test_expand_width_keeps_output(fixture: str, request: pytest.FixtureRequest) -> None:
    model, x = request.getfixturevalue(fixture)
    before = [p.detach().clone() for p in model.parameters()]
    wide = expand_width(model, 1, 2, n_mult=1)
    n_add, n_mult = model.width[1]
    assert wide.width[1] == (n_add + 2, n_mult + 1)
    assert wide.width[2:] == model.width[2:] and wide.variables == model.variables
    assert _close(model, x, wide, x)
    assert all(
        torch.equal(p, q) for p, q in zip(before, model.parameters(), strict=True)
    )  # input untouched
    with pytest.raises(ValueError, match="hidden layer"):
        expand_width(model, model.depth, 1)


@pytest.mark.parametrize("fixture", ["compiled", "numeric"])
def test_expand_depth_keeps_output(fixture: str, request: pytest.FixtureRequest) -> None:
    model, x = request.getfixturevalue(fixture)
    deep = expand_depth(model, x)
    assert deep.depth == model.depth + 1 and deep.width_spec[-1] == 1
    assert deep.layers[-1].symbolic_names[0][0] == "x"
    assert _close(model, x, deep, x)


def test_augment_input_adds_columns_and_keeps_output(compiled) -> None:
    model, x = compiled
    aug, x_aug = augment_input(model, x, None, {"beta": "v/c", "gamma": "1/sqrt(1 - v**2/c**2)"})
    assert aug.variables == ["m0", "v", "c", "beta", "gamma"] and aug.width[0] == (5, 0)
    assert x_aug.shape == (200, 5)
    assert torch.allclose(x_aug[:, 3], x[:, 1] / x[:, 2])
    assert torch.allclose(x_aug[:, 4], (1 - (x[:, 1] / x[:, 2]) ** 2) ** -0.5)
    assert _close(model, x, aug, x_aug)
    interior = aug.layers[0].grid_interior()[3]
    assert interior[0] <= x_aug[:, 3].min() and interior[-1] >= x_aug[:, 3].max()
    with pytest.raises(ValueError, match="new, unused names"):
        augment_input(model, x, None, {"v": "2*v"})


def test_perturb_is_small_and_gives_gradients(compiled) -> None:
    model, x = compiled
    grown = expand_depth(expand_width(model, 1, 1), x)
    moved = perturb(grown, magnitude=0.01, seed=0)
    with torch.no_grad():
        y0, y1 = grown(x), moved(x)
    change = (y1 - y0).abs().max() / y0.abs().mean()
    assert 0 < change < 0.2
    assert _close(model, x, grown, x)  # perturb returned a copy
    moved(x).pow(2).mean().backward()
    # the new node of layer 1 (index 1): its incoming and outgoing edges are trainable now
    assert moved.layers[0].coef.grad[:, :, 1].abs().amax(1).gt(0).all()
    assert moved.layers[1].coef.grad[1].abs().amax(0).gt(0).all()
    # formerly masked edges are active numeric edges with gradients
    revived = (grown.layers[0].mask == 0) & (moved.layers[0].mask == 1)
    assert revived.any()
    assert moved.layers[0].coef.grad.abs().amax(1)[revived].gt(0).all()
    assert torch.equal(
        moved.layers[0].symbolic_mask, grown.layers[0].symbolic_mask * grown.layers[0].mask
    )


def test_perturb_symbolic_zero_coefficient() -> None:
    model = kanpiler(["x"], "sin(x)", dtype=torch.float64)
    with torch.no_grad():
        model.layers[0].symbolic_affine[0, 0, 2] = 0.0
    moved = perturb(model, magnitude=0.1, include_masked=False)
    x = torch.rand(20, 1, dtype=torch.float64)
    assert torch.equal(perturb(model, 0.1, include_masked=False)(x), moved(x))  # deterministic
    assert torch.equal(moved.layers[0].symbolic_affine[0, 0, :2], torch.tensor([1.0, 0.0]).double())
    c = moved.layers[0].symbolic_affine[0, 0, 2].item()
    assert 0.05 <= abs(c) <= 0.1 and moved.layers[0].symbolic_mask[0, 0] == 1
