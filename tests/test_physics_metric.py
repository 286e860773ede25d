"""Schwarzschild hidden symmetry: metric, flatness loss, Gullstrand-Painleve solution."""

from __future__ import annotations

import time

import sympy
import torch

from physkan.physics import (
    gullstrand_painleve_delta_t,
    gullstrand_painleve_derivative,
    gullstrand_painleve_sympy,
    metric_data,
    schwarzschild_metric,
    spatial_flatness_loss,
    transformed_metric,
)

DT = torch.float64


def val(x: torch.Tensor | float) -> float:
    """Python float of a (possibly graph-attached) scalar tensor."""
    return float(x.detach()) if isinstance(x, torch.Tensor) else float(x)


def test_schwarzschild_metric_components() -> None:
    r = torch.tensor([1.5, 2.0, 3.0], dtype=DT)
    th = torch.tensor([0.3, 1.0, 2.0], dtype=DT)
    g = schwarzschild_metric(r, th)
    assert g.shape == (3, 4, 4)
    f = 1 - 1 / r
    torch.testing.assert_close(torch.diagonal(g, dim1=1, dim2=2)[:, 0], -f)
    torch.testing.assert_close(g[:, 1, 1], 1 / f)
    torch.testing.assert_close(g[:, 2, 2], r**2)
    torch.testing.assert_close(g[:, 3, 3], (r * torch.sin(th)) ** 2)
    assert val((g - torch.diag_embed(torch.diagonal(g, dim1=1, dim2=2))).abs().max()) == 0.0


def test_transformed_metric_gullstrand_painleve_is_spatially_flat() -> None:
    r = metric_data(n=20, seed=1)["r"]
    dtp = gullstrand_painleve_derivative(r)
    gp = transformed_metric(dtp, r, 1.0)
    torch.testing.assert_close(gp[:, 1, 1], torch.ones(20, dtype=DT))
    torch.testing.assert_close(gp, gp.transpose(1, 2))
    # t' = t + dt(r) has unit Jacobian determinant: det g is invariant
    torch.testing.assert_close(torch.linalg.det(gp), torch.linalg.det(schwarzschild_metric(r, 1.0)))


def test_exact_solution_gives_machine_zero_loss() -> None:
    r = metric_data(n=500, seed=0)["r"]
    assert r.shape == (500, 1) and val(r.min()) >= 1.2 and val(r.max()) <= 3.0
    assert (
        val(spatial_flatness_loss(gullstrand_painleve_derivative, r, derivative_given=True)) < 1e-28
    )
    neg = lambda x: -gullstrand_painleve_derivative(x)  # noqa: E731  the other branch
    assert val(spatial_flatness_loss(neg, r, derivative_given=True)) < 1e-28
    # Delta t itself, derivative by autograd
    assert val(spatial_flatness_loss(gullstrand_painleve_delta_t, r)) < 1e-26


def test_wrong_functions_give_positive_loss() -> None:
    r = metric_data(n=200, seed=0)["r"]
    assert val(spatial_flatness_loss(lambda x: 0.0 * x, r)) > 1e-2  # identity transform
    assert val(spatial_flatness_loss(lambda x: x, r)) > 1e-2
    half = lambda x: 0.5 * gullstrand_painleve_derivative(x)  # noqa: E731
    assert val(spatial_flatness_loss(half, r, derivative_given=True)) > 1e-2


def test_sympy_forms_agree() -> None:
    rs = sympy.Symbol("r", positive=True)
    dt = gullstrand_painleve_sympy(0.5, r=rs)
    dtp = gullstrand_painleve_sympy(0.5, derivative=True, r=rs)
    assert sympy.simplify(sympy.diff(dt, rs) - dtp) == 0
    f = sympy.lambdify(rs, dt)
    r = torch.tensor([1.3, 2.7], dtype=DT)
    torch.testing.assert_close(
        torch.tensor([f(1.3), f(2.7)], dtype=DT), gullstrand_painleve_delta_t(r)
    )


class Chebyshev(torch.nn.Module):
    """Smooth linear-in-parameters model sum_k c_k T_k(x), x = r mapped to [-1, 1]."""

    def __init__(self, degree: int, lo: float = 1.2, hi: float = 3.0) -> None:
        super().__init__()
        self.degree, self.lo, self.hi = degree, lo, hi
        c = torch.zeros(degree + 1, dtype=DT)
        c[0] = 1.0  # positive start (Delta t' = 0 is a saddle of the loss)
        self.c = torch.nn.Parameter(c)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        x = (2 * r - (self.lo + self.hi)) / (self.hi - self.lo)
        T = [torch.ones_like(x), x]
        for _ in range(self.degree - 1):
            T.append(2 * x * T[-1] - T[-2])
        return torch.cat(T, dim=-1) @ self.c[:, None]


def test_fit_smooth_model_to_machine_precision() -> None:
    r = metric_data(n=200, seed=0)["r"]
    model = Chebyshev(30)
    opt = torch.optim.LBFGS(
        model.parameters(),
        lr=1,
        max_iter=500,
        history_size=50,
        line_search_fn="strong_wolfe",
        tolerance_grad=1e-20,
        tolerance_change=1e-30,
    )

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = spatial_flatness_loss(model, r, derivative_given=True)
        loss.backward()
        return loss

    t0 = time.perf_counter()
    opt.step(closure)
    loss = val(spatial_flatness_loss(model, r, derivative_given=True))
    assert loss <= 1e-12, loss
    assert time.perf_counter() - t0 < 10
    r_test = metric_data(n=100, seed=5)["r"]
    err = (model(r_test) - gullstrand_painleve_derivative(r_test)).abs().max()
    assert val(err) < 1e-4


def test_second_order_gradient_reaches_parameters() -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(1, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)).to(DT)
    r = metric_data(n=32, seed=0)["r"]
    loss = spatial_flatness_loss(net, r)
    loss.backward()
    assert net[0].weight.grad is not None and torch.isfinite(net[0].weight.grad).all()
    assert val(net[0].weight.grad.abs().sum()) > 0
