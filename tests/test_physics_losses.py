"""Physics losses: Euler-Lagrange and conserved quantities."""

from __future__ import annotations

import torch

from physkan.physics import (
    conservation_data,
    conservation_loss,
    conservation_loss_terms,
    euler_lagrange_loss,
    harmonic_oscillator_2d,
    independence_penalty,
    lagrangian_data,
    metric_flatness_loss,
)

DT = torch.float64


def val(x: torch.Tensor | float) -> float:
    """Python float of a (possibly graph-attached) scalar tensor."""
    return float(x.detach()) if isinstance(x, torch.Tensor) else float(x)


BOX = [(-1.0, 1.0)] * 4


def _osc_data(n: int = 256) -> dict[str, torch.Tensor]:
    return conservation_data(harmonic_oscillator_2d, BOX, n, seed=0)


def H1(z: torch.Tensor) -> torch.Tensor:
    return 0.5 * (z[:, 0] ** 2 + z[:, 2] ** 2)


def H2(z: torch.Tensor) -> torch.Tensor:
    return 0.5 * (z[:, 1] ** 2 + z[:, 3] ** 2)


def H3(z: torch.Tensor) -> torch.Tensor:
    return z[:, 0] * z[:, 3] - z[:, 1] * z[:, 2]


def test_euler_lagrange_loss_zero_for_truth_positive_for_wrong() -> None:
    L = lambda s: 0.5 * s[:, 1] ** 2 + torch.cos(s[:, 0])  # noqa: E731
    data = lagrangian_data(L, 1, [(-3.0, 3.0), (-2.0, 2.0)], 128, seed=0)
    assert val(euler_lagrange_loss(L, data["state"], data["qddot"])) < 1e-26
    wrong = lambda s: 0.5 * s[:, 1] ** 2 - 0.5 * s[:, 0] ** 2  # noqa: E731  small-angle
    assert val(euler_lagrange_loss(wrong, data["state"], data["qddot"])) > 1e-2


def test_conservation_loss_true_energy_is_zero() -> None:
    d = _osc_data()
    energy = lambda z: H1(z) + H2(z)  # noqa: E731
    assert val(conservation_loss(energy, d["z"], d["f"])) < 1e-12
    for H in (H1, H2, H3):
        assert val(conservation_loss(H, d["z"], d["f"])) < 1e-12


def test_conservation_loss_non_conserved_is_large() -> None:
    d = _osc_data()
    assert val(conservation_loss(lambda z: z[:, 0], d["z"], d["f"])) > 0.1
    assert val(conservation_loss(lambda z: z[:, 0] * z[:, 1] + z[:, 2], d["z"], d["f"])) > 0.1


def test_constant_quantity_is_not_a_trivial_solution() -> None:
    d = _osc_data()
    const = lambda z: 0.0 * z[:, 0] + 3.0  # noqa: E731
    terms = conservation_loss_terms(const, d["z"], d["f"])
    assert val(terms["alignment"]) == 0.0
    assert val(terms["total"]) > 0.9
    # no graph to z at all (constant tensor) is also handled
    assert val(conservation_loss(lambda z: torch.ones(z.shape[0], dtype=DT), d["z"], d["f"])) > 0.9


def test_independence_term() -> None:
    d = _osc_data()
    pair = lambda z: torch.stack([H1(z), H2(z)], dim=-1)  # noqa: E731  orthogonal gradients
    same = lambda z: torch.stack([H1(z), 2.0 * H1(z)], dim=-1)  # noqa: E731
    t_pair = conservation_loss_terms(pair, d["z"], d["f"])
    t_same = conservation_loss_terms(same, d["z"], d["f"])
    assert val(t_pair["total"]) < 1e-12
    assert val(t_same["alignment"]) < 1e-12
    assert abs(val(t_same["independence"]) - 1.0) < 1e-6  # eps shrinks |unit| slightly
    assert val(conservation_loss(same, d["z"], d["f"], independence_weight=0.0)) < 1e-12
    # logdet variant: dependent gradients give a large value, orthogonal ones ~0
    u = torch.nn.functional.normalize(torch.randn(5, 2, 4, dtype=DT), dim=-1)
    dep = torch.stack([u[:, 0], u[:, 0]], dim=1)
    assert val(independence_penalty(dep, kind="logdet")) > 10.0
    eye = torch.eye(4, dtype=DT)[:2].expand(5, 2, 4)
    assert val(independence_penalty(eye, kind="logdet")) < 1e-6
    assert val(independence_penalty(eye[:, :1], kind="gram")) == 0.0


def test_conservation_loss_trains_a_module() -> None:
    d = _osc_data(64)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2)).to(DT)
    loss = conservation_loss(net, d["z"], d["f"])
    loss.backward()
    # the output bias does not change grad H: its gradient stays None
    grads = [p.grad for p in list(net.parameters())[:-1]]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    first = val(loss)
    for _ in range(30):
        opt.zero_grad()
        loss = conservation_loss(net, d["z"], d["f"])
        loss.backward()
        opt.step()
    assert val(loss) < first


def test_metric_flatness_alias() -> None:
    from physkan.physics import gullstrand_painleve_derivative

    r = torch.linspace(1.2, 3.0, 50, dtype=DT)[:, None]
    loss = metric_flatness_loss(gullstrand_painleve_derivative, r, derivative_given=True)
    assert val(loss) < 1e-28
