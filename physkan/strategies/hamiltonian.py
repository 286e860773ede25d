"""Hamiltonian strategy: learn H(q, p) with the symplectic loss, then its exact formula.

1. A KAN ``H(z)``, ``z = [q, p]`` (the problem's ``[model].width``, default ``[2n, 5, 1]``),
   starts as the free particle ``|p|^2 / 2`` (a short regression fit keeps it
   non-degenerate) and is trained on Hamilton's equations
   (:func:`physkan.physics.losses.symplectic_loss`: ``q_dot = dH/dp``, ``p_dot = -dH/dq``).
2. Its Hessian splits H into additive parts, and each part gets the sparsest library
   formula whose gradient matches the observed derivatives, with constants from least
   squares on Hamilton's equations, snapped
   (:mod:`physkan.strategies.hamiltonian_fit`). H is defined up to an additive constant:
   constant terms are dropped, and ``recovered`` compares up to an offset (the data fix
   the scale of H).
3. Verification: the vector-field error on held-out states, and with a ground truth a
   rollout of both Hamiltonians (torchdiffeq) with the drift of the true energy along the
   found trajectory (:func:`physkan.physics.verify.verify_hamiltonian_rollout`).

Every stage checks the time budget (:func:`physkan.budget.current_budget`).
"""

from __future__ import annotations

import sympy
import torch

from physkan.budget import budget_scope, current_budget
from physkan.kan.network import MultKAN
from physkan.problems import Dataset, ProblemSpec
from physkan.strategies.base import Discovery, Reporter
from physkan.strategies.common import build_model
from physkan.strategies.hamiltonian_fit import symbolic_hamiltonian, vector_field_error
from physkan.symbolic.equivalence import equivalent
from physkan.train.objectives import HamiltonianObjective

__all__ = ["HamiltonianObjective", "discover_hamiltonian"]

#: most training rows the network sees (the symplectic loss needs second derivatives).
MAX_TRAIN_ROWS = 600
#: share of the time budget the network may take (the closed-form stage takes seconds).
TRAIN_SHARE = 0.7
#: relative vector-field error of a closed form that counts as a law of the data.
FORMULA_GATE = 0.1




def _train(spec: ProblemSpec, data: Dataset, say: Reporter) -> tuple[MultKAN, float]:
    """The KAN H trained on Hamilton's equations; returns it and its relative field error."""
    from physkan.train import fit
    from physkan.train.objectives import RegressionObjective

    n = len(spec.system.coordinates)
    z, zdot = data.x_train[:MAX_TRAIN_ROWS], data.extras["zdot_train"][:MAX_TRAIN_ROWS]
    model = build_model(spec, data.inputs, ["H"])
    model.update_grid(z)
    fit(model, RegressionObjective(), {"x": z, "y": 0.5 * (z[:, n:] ** 2).sum(1, keepdim=True)}, steps=5)
    steps = max(10, spec.train.steps // 20)
    say(f"training H {model.width_spec} on Hamilton's equations ({steps} LBFGS steps)")
    fit(model, HamiltonianObjective(), {"z": z, "zdot": zdot}, steps=steps)
    return model, _network_error(model, data)


def _network_error(model: MultKAN, data: Dataset) -> float:
    from physkan.physics.hamiltonian import hamiltonian_vector_field

    zt, zdt = data.x_test, data.extras["zdot_test"]
    pred = hamiltonian_vector_field(model, zt)
    return float((pred - zdt).pow(2).mean().sqrt() / (zdt.std() or 1.0))


def discover_hamiltonian(spec: ProblemSpec, data: Dataset, say: Reporter) -> Discovery:
    """Learn ``H(q, p)`` from states and their time derivatives (see the module docstring)."""
    budget = current_budget()
    with budget_scope(budget.child(fraction=TRAIN_SHARE)):  # the closed-form stage needs the rest
        model, kan_error = _train(spec, data, say)
    formula, train_error = None, float("inf")
    if not budget.check():
        formula, train_error = symbolic_hamiltonian(
            model, data.x_train, data.extras["zdot_train"], data.inputs, say,
            kan_error=kan_error, library=spec.discover.library,
        )  # fmt: skip
    if formula is not None and train_error > FORMULA_GATE:
        say(f"discarding {formula}: relative field error {train_error:.1e}")
        formula = None
    metrics = {"network_relative_rmse": kan_error}
    if formula is None:
        return Discovery(
            problem=spec.name, type=spec.type, variables=data.inputs, outputs=["H"],
            formulas=[sympy.Symbol("H_network")], recovered=False if spec.system.hamiltonian else None,
            recovery="no closed form fitted the data", metrics={**metrics, "test_rmse": float("nan")},
            seconds=0.0, model=model, numeric_edges=[(0, 0, 0)],
        )  # fmt: skip
    zt, zdt = data.x_test, data.extras["zdot_test"]
    rel = vector_field_error(formula, data.inputs, zt, zdt)
    metrics.update(test_relative_rmse=rel, test_rmse=rel * float(zdt.std()))
    recovered, why = _check(spec, formula, data)
    if spec.system.hamiltonian is not None and not budget.check():
        metrics.update(_rollout_metrics(spec, formula, data))
    return Discovery(
        problem=spec.name, type=spec.type, variables=data.inputs, outputs=["H"], formulas=[formula],
        recovered=recovered, recovery=why, metrics=metrics, seconds=0.0, model=model,
    )  # fmt: skip


def _ranges(spec: ProblemSpec, data: Dataset) -> dict[str, tuple[float, float]]:
    """Comparison box: ``[data].ranges``, else the span of the training states."""
    if all(v in spec.data.ranges for v in data.inputs):
        return {v: tuple(map(float, spec.data.ranges[v])) for v in data.inputs}  # type: ignore[misc]
    lo, hi = data.x_train.min(0).values, data.x_train.max(0).values
    return {v: (float(a), float(b)) for v, a, b in zip(data.inputs, lo, hi, strict=True)}


def _check(spec: ProblemSpec, found: sympy.Expr, data: Dataset) -> tuple[bool | None, str]:
    truth = spec.system.hamiltonian_expr()
    if truth is None:
        return None, "no ground truth"
    eq = equivalent(found, truth, data.inputs, _ranges(spec, data), up_to="offset", rtol=1e-5)
    return eq.equivalent, eq.reason


def _rollout_metrics(spec: ProblemSpec, found: sympy.Expr, data: Dataset) -> dict[str, float]:
    """Roll the found and true H out from held-out states: trajectory error, energy drift."""
    from physkan.physics.data import sympy_callable
    from physkan.physics.verify import verify_hamiltonian_rollout

    H_true = sympy_callable(spec.system.hamiltonian_expr(), data.inputs)
    H_found = sympy_callable(found, data.inputs)
    t = torch.linspace(0, 5, 51, dtype=torch.float64)
    try:
        out = verify_hamiltonian_rollout(H_true, H_found, data.x_test[:8], t)
    except Exception as exc:  # noqa: BLE001 - a failed rollout is reported, not fatal
        return {"rollout_error": float("nan"), "rollout_failure": str(exc)[:200]}  # type: ignore[dict-item]
    return {f"rollout_{k}": float(v) for k, v in out.items() if isinstance(v, (int, float))}
