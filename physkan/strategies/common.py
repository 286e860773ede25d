"""Helpers shared by the discovery strategies: model building, symbolic stage, metrics."""

from __future__ import annotations

import sympy
import torch

from physkan.kan.network import MultKAN
from physkan.problems import ProblemSpec
from physkan.strategies.base import Reporter
from physkan.symbolic.edges import ENGINE_AUTO_SYMBOLIC, AutoSymbolicReport, auto_symbolic
from physkan.symbolic.library import DEFAULT_LIBRARY
from physkan.symbolic.parse import lambdify_torch

__all__ = ["build_model", "formula_rmse", "library_of", "sample_ranges", "symbolic_stage"]



def build_model(spec: ProblemSpec, inputs: list[str], outputs: list[str], width=None) -> MultKAN:
    """The ``[model]`` network of a problem, in float64, with the problem's names."""
    m = spec.model
    return MultKAN(
        width or m.width or [len(inputs), 5, len(outputs)],
        grid=m.grid, k=m.k, basis=m.basis, mult_arity=m.mult_arity,
        grid_range=tuple(m.grid_range) if m.grid_range else (-1.0, 1.0),
        seed=m.seed, variables=inputs, outputs=outputs, grid_eps=m.grid_eps, base_fun=m.base_fun,
    ).double()  # fmt: skip


def library_of(spec: ProblemSpec):
    return spec.discover.library


def symbolic_stage(model: MultKAN, x: torch.Tensor, spec: ProblemSpec, say: Reporter) -> AutoSymbolicReport:
    say("fitting symbolic functions to the edges")
    return auto_symbolic(
        model, x, library_of(spec) or DEFAULT_LIBRARY, r2_threshold=spec.discover.r2_threshold,
        weight_simple=spec.discover.weight_simple, **ENGINE_AUTO_SYMBOLIC,  # type: ignore[arg-type]
    )  # fmt: skip


def formula_rmse(formulas: list[sympy.Expr], variables: list[str], x: torch.Tensor, y: torch.Tensor) -> float:
    preds = []
    for expr in formulas:
        fn = lambdify_torch(expr, variables)
        preds.append(fn(x).reshape(-1) * torch.ones(x.shape[0], dtype=x.dtype))
    pred = torch.stack(preds, 1)
    return float(((pred - y) ** 2).mean().sqrt())


def sample_ranges(spec: ProblemSpec, names: list[str]) -> dict[str, tuple[float, float]]:
    return {n: tuple(map(float, spec.data.ranges[n])) for n in names if n in spec.data.ranges}


