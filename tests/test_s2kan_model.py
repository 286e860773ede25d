"""Fast unit tests of S2KAN: gates, vectorised layer, MDL cost, persistence, 2nd-order grads."""

from __future__ import annotations

import math

import torch

from physkan.io import model_from_payload, model_to_payload
from physkan.s2kan import S2KAN
from physkan.s2kan.gates import deterministic_gate, open_logit, prob_open, sample_gate


def test_gates_hard_concrete() -> None:
    la = torch.tensor([-10.0, 0.0, 10.0])
    z = sample_gate(la.expand(2000, 3))
    assert float(z.min()) >= 0 and float(z.max()) <= 1
    frac_open = (z > 0).double().mean(0)
    assert torch.allclose(frac_open, prob_open(la).double(), atol=0.05)
    assert deterministic_gate(la).tolist() == [0.0, deterministic_gate(la)[1].item(), 1.0]
    assert math.isclose(float(prob_open(torch.tensor(open_logit(0.9)))), 0.9, rel_tol=1e-6)


def test_forward_shapes_and_mult_nodes() -> None:
    m = S2KAN([3, [1, 2], 2], grid=4)
    x = torch.rand(7, 3)
    assert m(x).shape == (7, 2)
    assert m.layers[0].n_sub == 5 and m.layers[1].n_in == 3
    cost = m.model_cost_bits(100)
    cost.backward()
    assert m.layers[0].log_alpha.grad is not None


def test_second_order_gradients() -> None:
    m = S2KAN([2, 2, 1]).double().eval()
    x = torch.rand(5, 2, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(m(x).sum(), x, create_graph=True)
    (h,) = torch.autograd.grad(g[:, 0].sum(), x, create_graph=True)
    assert h.shape == x.shape and torch.isfinite(h).all()
    h.sum().backward()
    assert m.layers[0].a.grad is not None


def test_config_roundtrip() -> None:
    m = S2KAN([2, 1], library=["x", "sin"], variables=["p", "q"], outputs=["E"], seed=3)
    with torch.no_grad():
        m.layers[0].c.normal_()
    cfg, state = model_to_payload(m)
    assert cfg["kind"] == "s2kan"
    m2 = model_from_payload(cfg, state)
    x = torch.rand(4, 2)
    assert torch.equal(m.eval()(x), m2.eval()(x))
    assert m2.library == ["x", "sin"]
