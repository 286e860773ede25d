"""Conservation strategy: find ``n_quantities`` independent conserved quantities of ``dz/dt = f(z)``.

Following KAN 2.0 (sec. 5.1), each quantity ``H`` is a KAN trained so that its normalised
gradient is orthogonal to the flow, ``mean (f_hat . grad_hat H)^2 -> 0``. Quantities are
found one at a time; each new one is also pushed away from the gradients of the ones
already found, so the set becomes independent. Every KAN is made symbolic, the formula is
put in a canonical form (constant dropped, leading coefficient 1) and checked: ``grad H . f``
must simplify to 0 and the set's Jacobian must have full rank.
"""

from __future__ import annotations

from collections.abc import Callable

import sympy
import torch
from torch import Tensor

from physkan.discover import Discovery, Reporter, register_strategy
from physkan.kan.network import MultKAN
from physkan.physics.losses import conservation_loss
from physkan.problems import Dataset, ProblemSpec
from physkan.strategies.common import build_model, sample_ranges, symbolic_stage
from physkan.symbolic.formula import model_formula
from physkan.symbolic.simplify import clean_formula, lambdify_torch, snap_constants

__all__ = ["canonical_quantity", "discover_conservation"]


def _unit_gradients(fn: Callable[[Tensor], Tensor], z: Tensor, create_graph: bool) -> Tensor:
    z = z.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(fn(z).sum(), z, create_graph=create_graph)
    return g / (torch.linalg.vector_norm(g, dim=1, keepdim=True) + 1e-8)


class _NewQuantityObjective:
    """Conservation loss plus a penalty on alignment with already-found quantities."""

    def __init__(self, previous: list[Tensor], weight: float = 0.1) -> None:
        self.previous = previous  # unit gradients (N, d) of the quantities found so far
        self.weight = weight

    def loss(self, model, batch: dict[str, Tensor]) -> Tensor:
        z, f = batch["z"], batch["f"]
        loss = conservation_loss(model, z, f)
        if self.previous:
            unit = _unit_gradients(model, z, create_graph=True)
            for prev in self.previous:
                loss = loss + self.weight * ((unit * prev.to(unit)).sum(1) ** 2).mean()
        return loss

    def grid_samples(self, batch: dict[str, Tensor]) -> Tensor:
        return batch["z"]


def canonical_quantity(expr: sympy.Expr, *, snap: bool = True) -> sympy.Expr:
    """A conserved quantity up to affine freedom: expanded, no constant, first coefficient 1."""
    expr = sympy.expand(expr)
    terms = [t for t in sympy.Add.make_args(expr) if t.free_symbols]
    if not terms:
        return sympy.Integer(0)
    expr = sympy.Add(*terms)
    lead = sorted(terms, key=sympy.default_sort_key)[0]
    coeff, _ = lead.as_coeff_Mul()
    if coeff != 0:
        expr = sympy.expand(expr / coeff)
    if snap:
        expr = snap_constants(expr)
    return clean_formula(expr)


def discover_conservation(spec: ProblemSpec, data: Dataset, say: Reporter) -> Discovery:
    """Train one KAN per quantity (different seeds), make them symbolic, verify the set."""
    from physkan.physics.verify import conserved_quantities_check
    from physkan.train import fit

    system = spec.system
    state = list(system.state)
    z, f = data.x_train, data.extras["f_train"]
    batch = {"z": z, "f": f}
    n_wanted = system.n_quantities
    steps = max(5, spec.train.steps // 10)
    found: list[sympy.Expr] = []
    previous: list[Tensor] = []
    models: list[MultKAN] = []
    attempts = 0
    numeric: list[tuple[int, int, int]] = []
    while len(found) < n_wanted and attempts < 3 * n_wanted:
        seed = spec.model.seed + attempts
        attempts += 1
        say(f"training quantity {len(found) + 1}/{n_wanted} (seed {seed})")
        model = build_model(spec, state, [f"H{len(found) + 1}"])
        model = _reseed(model, spec, state, seed)
        model.update_grid(z)
        fit(model, _NewQuantityObjective(previous), batch, steps=steps, seed=seed)
        report = symbolic_stage(model, z, spec, say)
        if not report.complete:
            numeric.extend((e.layer, e.i, e.j) for e in report.kept_numeric)
            continue
        fit(model, _NewQuantityObjective(previous), batch, steps=max(3, steps // 2), seed=seed)
        expr = canonical_quantity(model_formula(model, z, snap=spec.discover.snap).expressions[0],
                                  snap=spec.discover.snap)  # fmt: skip
        if not expr.free_symbols:
            continue
        candidate = found + [expr]
        check = conserved_quantities_check(candidate, system.dynamics_exprs(), _symbols(state, candidate),
                                           sample_ranges(spec, state))  # fmt: skip
        if check["ok"]:
            found.append(expr)
            models.append(model)
            previous.append(_unit_gradients(lambdify_torch(expr, state), z, create_graph=False).detach())
        else:
            say(f"candidate {expr} rejected (not exactly conserved or not independent)")
    recovered = len(found) == n_wanted
    why = (f"{len(found)} independent exactly conserved quantities (grad H . f = 0 symbolically, "
           f"full-rank Jacobian)")  # fmt: skip
    if not recovered:
        why += f"; wanted {n_wanted}"
    metrics = _residuals(found, state, data)
    return Discovery(
        problem=spec.name, type=spec.type, variables=state,
        outputs=[f"H{i + 1}" for i in range(len(found))], formulas=found, recovered=recovered,
        recovery=why, metrics=metrics, seconds=0.0, model=models[0] if models else None,
        numeric_edges=numeric if not recovered else [],
    )  # fmt: skip


def _reseed(model: MultKAN, spec: ProblemSpec, state: list[str], seed: int) -> MultKAN:
    if seed == spec.model.seed:
        return model
    return build_model(spec.updated({"model.seed": seed}), state, list(model.outputs))


def _symbols(state: list[str], exprs: list[sympy.Expr]) -> list[sympy.Symbol]:
    by_name = {s.name: s for e in exprs for s in e.free_symbols}
    return [by_name.get(n, sympy.Symbol(n, real=True)) for n in state]


def _residuals(found: list[sympy.Expr], state: list[str], data: Dataset) -> dict[str, float]:
    """Test-set conservation residual ``max |f_hat . grad_hat H|`` of each quantity."""
    z, f = data.x_test, data.extras["f_test"]
    fhat = f / (torch.linalg.vector_norm(f, dim=1, keepdim=True) + 1e-12)
    worst = 0.0
    for expr in found:
        unit = _unit_gradients(lambdify_torch(expr, state), z, create_graph=False)
        worst = max(worst, float((unit * fhat).sum(1).abs().max()))
    return {"test_rmse": worst, "max_conservation_residual": worst, "n_found": float(len(found))}


register_strategy("conservation", discover_conservation)
