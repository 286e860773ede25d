"""End-to-end discovery of the built-in physics problems (issue: physics on the engine)."""

from __future__ import annotations

import pytest
import sympy

from physkan.discover import discover

pytestmark = pytest.mark.recovery


def test_oscillator_2d_three_independent_exact_quantities() -> None:
    result = discover("oscillator-2d")
    assert result.recovered is True, result.recovery
    assert len(result.formulas) == 3
    x, y, px, py = sympy.symbols("x y px py", real=True)
    names = {s.name: s for f in result.formulas for s in f.free_symbols}
    subs = {names.get(n, s): s for n, s in zip(["x", "y", "px", "py"], [x, y, px, py])}
    for q in result.formulas:
        q = q.subs(subs)
        dq = sympy.diff(q, x) * px + sympy.diff(q, y) * py - sympy.diff(q, px) * x - sympy.diff(q, py) * y
        assert sympy.simplify(dq) == 0
    jac = sympy.Matrix([[sympy.diff(q.subs(subs), v) for v in (x, y, px, py)] for q in result.formulas])
    assert jac.subs({x: 0.3, y: -0.7, px: 0.2, py: 0.9}).rank() == 3


def test_schwarzschild_reaches_1e_12_and_gullstrand_painleve() -> None:
    result = discover("schwarzschild")
    assert result.metrics["spline_loss"] <= 1e-12
    assert result.recovered is True, result.recovery
    r = sympy.Symbol("r", positive=True)
    found = result.formulas[0].subs({s: r for s in result.formulas[0].free_symbols})
    gp = sympy.sqrt(1 / r) / (1 - 1 / r)  # 2M = 1
    for value in (1.3, 2.0, 2.9):
        assert abs(float(found.subs(r, value)) - abs(float(gp.subs(r, value)))) < 1e-9


def test_neo_hookean_both_components_exact() -> None:
    result = discover("neo-hookean")
    assert result.recovered is True, result.recovery
    assert result.outputs == ["P11", "P12"]
    assert result.metrics["test_rmse"] < 1e-9


def test_relativistic_particle_exact_lagrangian() -> None:
    from physkan.symbolic import equivalent

    result = discover("relativistic-particle")
    assert result.recovered is True, result.recovery
    truth = "-sqrt(1 - q_dot**2) - q"
    ranges = {"q": (-2, 2), "q_dot": (-0.9, 0.9)}
    assert equivalent(result.formulas[0], truth, ["q", "q_dot"], ranges, up_to="scale_offset")
    assert result.metrics["rollout_traj_rmse"] < 1e-8
