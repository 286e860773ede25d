"""Ground-truth data makers and symbolic verification helpers."""

from __future__ import annotations

import sympy
import torch

from physkan.physics import (
    conservation_data,
    conserved_quantities_check,
    harmonic_oscillator_2d,
    lagrangian_accelerations,
    lagrangian_data,
    lagrangian_from_sympy,
    lagrangian_trajectories,
    metric_data,
    neo_hookean_data,
    neo_hookean_stress,
    neo_hookean_sympy,
    sympy_callable,
)

DT = torch.float64
PEND_RANGES = [(-3.0, 3.0), (-2.0, 2.0)]


def test_lagrangian_data_deterministic_and_exact() -> None:
    L = lagrangian_from_sympy("q_dot**2/2 + cos(q)", ["q"])
    a = lagrangian_data(L, 1, PEND_RANGES, 100, seed=3)
    b = lagrangian_data(L, 1, PEND_RANGES, 100, seed=3)
    c = lagrangian_data(L, 1, PEND_RANGES, 100, seed=4)
    assert a["state"].shape == (100, 2) and a["qddot"].shape == (100, 1)
    assert a["state"].dtype == DT and not a["qddot"].requires_grad
    torch.testing.assert_close(a["state"], b["state"], rtol=0, atol=0)
    assert not torch.equal(a["state"], c["state"])
    assert float(a["state"][:, 0].min()) >= -3 and float(a["state"][:, 1].max()) <= 2
    torch.testing.assert_close(a["qddot"][:, 0], -torch.sin(a["state"][:, 0]), rtol=0, atol=1e-13)
    noisy = lagrangian_data(L, 1, PEND_RANGES, 100, seed=3, noise=0.01)
    rel = (noisy["qddot"] - a["qddot"]).abs() / a["qddot"].abs()
    assert 0 < float(rel.max()) < 0.06


def test_lagrangian_from_sympy_two_coordinates() -> None:
    L = lagrangian_from_sympy(
        "(x_dot**2 + y_dot**2)/2 - (x**2 + y**2)/2 - x*y/4 + pi*0", ["x", "y"]
    )
    s = torch.tensor([[0.3, -0.2, 0.1, 0.5]], dtype=DT)
    qdd = lagrangian_accelerations(L, s)
    torch.testing.assert_close(qdd, torch.tensor([[-0.3 + 0.05, 0.2 - 0.075]], dtype=DT))
    const = sympy_callable("2", ["x"])
    assert const(torch.zeros(3, 1, dtype=DT)).shape == (3,)


def test_lagrangian_trajectories_shape_and_energy() -> None:
    L = lagrangian_from_sympy("q_dot**2/2 + cos(q)", ["q"])
    z0 = torch.tensor([[0.5, 0.0], [1.0, 1.0]], dtype=DT)
    traj = lagrangian_trajectories(L, z0, torch.linspace(0, 3, 11, dtype=DT))
    assert traj.shape == (11, 2, 2)
    E = 0.5 * traj[..., 1] ** 2 - torch.cos(traj[..., 0])
    assert float((E - E[0]).abs().max()) < 1e-7


def test_conservation_and_metric_data() -> None:
    d = conservation_data(harmonic_oscillator_2d, [(-1.0, 1.0)] * 4, 50, seed=0)
    assert d["z"].shape == (50, 4) and d["f"].shape == (50, 4)
    torch.testing.assert_close(d["f"][:, 2], -d["z"][:, 0])
    torch.testing.assert_close(
        conservation_data(harmonic_oscillator_2d, [(-1.0, 1.0)] * 4, 50, seed=0)["z"], d["z"]
    )
    m = metric_data(n=64, seed=2)
    assert m["r"].shape == (64, 1) and float(m["r"].min()) >= 1.2 and float(m["r"].max()) <= 3.0


def test_neo_hookean_data() -> None:
    for form in ("first_piola", "paper"):
        d = neo_hookean_data(200, seed=0, form=form)
        F, P = d["F"], d["P"]
        assert F.shape == (200, 4) and P.shape == (200, 2) and F.dtype == DT
        eye = torch.tensor([1.0, 0.0, 0.0, 1.0], dtype=DT)
        assert float((F - eye).abs().max()) <= 0.2
        J = F[:, 0] * F[:, 3] - F[:, 1] * F[:, 2]
        assert float(J.min()) > 0
        P0 = neo_hookean_stress(eye[None], form=form)
        assert float(P0.abs().max()) < 1e-15
        # sympy form agrees with the data
        exprs = neo_hookean_sympy(form=form)
        syms = sympy.symbols("F11 F12 F21 F22")
        for k, name in enumerate(("P11", "P12")):
            f = sympy_callable(exprs[name], syms)
            torch.testing.assert_close(f(F), P[:, k], rtol=1e-12, atol=1e-14)
    # first Piola: P = mu (F - F^-T) + lam log J F^-T, checked with matrices
    d = neo_hookean_data(5, seed=1, mu=0.7, lam=0.3)
    Fm = d["F"].reshape(5, 2, 2)
    FinvT = torch.linalg.inv(Fm).transpose(1, 2)
    Pm = 0.7 * (Fm - FinvT) + 0.3 * torch.log(torch.linalg.det(Fm))[:, None, None] * FinvT
    torch.testing.assert_close(d["P"], Pm[:, 0, :])
    paper = neo_hookean_sympy(5 / 12, 5 / 18, form="paper")  # floats become exact rationals
    F11, F12, F21, F22 = syms
    assert sympy.simplify(paper["P12"] - sympy.Rational(5, 12) * (F11 * F21 + F12 * F22)) == 0
    expected_p11 = sympy.Rational(5, 12) * (F11**2 + F12**2 - 1) + sympy.Rational(
        5, 18
    ) * sympy.log(F11 * F22 - F12 * F21)
    assert sympy.simplify(paper["P11"] - expected_p11) == 0


def test_conserved_quantities_check() -> None:
    x, y, px, py = sympy.symbols("x y p_x p_y")
    state = [x, y, px, py]
    f = [px, py, -x, -y]
    box = [(-1.0, 1.0)] * 4
    H1 = (x**2 + px**2) / 2
    H2 = (y**2 + py**2) / 2
    H3 = x * py - y * px
    res = conserved_quantities_check([H1, H2, H3], f, state, box)
    assert res["ok"] and res["rank"] == 3 and res["independent"]
    assert all(r["symbolic_zero"] is True for r in res["residuals"])
    dep = conserved_quantities_check([H1, H2, H1 + H2], f, state, box)
    assert not dep["ok"] and dep["rank"] == 2
    bad = conserved_quantities_check([H1, x * px], f, state, box)
    assert not bad["ok"] and bad["residuals"][0]["conserved"]
    assert not bad["residuals"][1]["conserved"] and bad["residuals"][1]["numeric_max_abs"] > 0.01
