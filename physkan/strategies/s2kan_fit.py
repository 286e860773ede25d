"""S2KAN as the network of a discovery (``[model] kind = "s2kan"`` in a problem file).

The structure search of each strategy stays the same; where a strategy would train a KAN and
run auto-symbolic on it, an S2KAN is trained instead and its MDL gates choose each edge's
terms (:func:`physkan.s2kan.train_s2kan`, through the Lightning engine, with the strategy's
loss). Edges whose spline stays open are reported as such.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from torch import Tensor

from physkan.problems import Dataset, ProblemSpec

if TYPE_CHECKING:  # physkan.s2kan imports Lightning: only when an S2KAN is trained
    from physkan.s2kan import S2KAN, S2KANResult, S2KANTrainConfig

__all__ = ["S2KANReport", "fit_s2kan", "kinetic_teacher", "s2kan_config", "s2kan_model"]

#: MDL-phase steps of a discovery (the warm-up takes 2/3 of it).
DISCOVER_MDL_STEPS = 150


@dataclass
class S2KANReport:
    """What the gates chose: the open terms of every edge (duck-types ``AutoSymbolicReport``)."""

    terms: list[tuple[int, int, int, str]]
    spline_lines: list[str]

    @classmethod
    def of(cls, model: S2KAN) -> S2KANReport:
        return cls(model.open_terms(), model.spline_report())

    @property
    def complete(self) -> bool:
        """True when no spline is left open."""
        return not any(name == "spline" for *_, name in self.terms)

    def summary(self) -> str:
        lines = [f"({lyr},{i},{j}) -> {name} (S2KAN gate open)" for lyr, i, j, name in self.terms
                 if name != "spline"]  # fmt: skip
        return "\n".join(lines + self.spline_lines)


def s2kan_config(spec: ProblemSpec, steps: int = DISCOVER_MDL_STEPS, warmup_gate: float | None = None) -> S2KANTrainConfig:
    """Training schedule of a discovery (``[train].steps`` is a KAN's LBFGS budget; S2KAN
    uses its own Adam schedule of ``steps`` MDL steps). ``warmup_gate``: relative error of the
    spline warm-up above which the structure is given up (see :class:`S2KANTrainConfig`)."""
    from physkan.s2kan import S2KANTrainConfig

    return S2KANTrainConfig(mdl_steps=steps, warmup_steps=max(1, 2 * steps // 3), warmup_gate=warmup_gate)


def s2kan_model(spec: ProblemSpec, width: list, inputs: list[str], outputs: list[str]) -> S2KAN:
    """An S2KAN (float64) with the problem file's grid, order, basis, library and seed."""
    from physkan.s2kan import S2KAN

    return S2KAN(width, spec.discover.library, grid=spec.model.grid, k=spec.model.k, variables=inputs,
                 outputs=outputs, seed=spec.model.seed, basis=spec.model.basis).double()  # fmt: skip


def kinetic_teacher(state: Tensor) -> dict[str, Tensor]:
    """Regression batch ``T = |q̇|²/2`` on ``state (N, 2n) = [q, q̇]``: the free-particle
    Lagrangian a Lagrangian S2KAN starts from (its velocity Hessian is the identity)."""
    n = state.shape[1] // 2
    return {"x": state, "y": 0.5 * (state[:, n:] ** 2).sum(1, keepdim=True)}


def fit_s2kan(spec: ProblemSpec, data: Dataset, width: list, *, log_space: bool = False,
              warmup_gate: float | None = None) -> S2KANResult:  # fmt: skip
    """Fit ``width`` to ``y`` (or to ``log|y|``) with an S2KAN; formulas snapped on the data.

    In log space the dictionary is the regression strategy's ``LOG_LIBRARY`` (powers and
    exponential factors) plus the problem's library, as for a KAN."""
    from physkan.s2kan import s2kan_discover
    from physkan.strategies.logsep import LOG_LIBRARY

    library = spec.discover.library
    if log_space:
        library = list(dict.fromkeys([*LOG_LIBRARY, *(library or [])]))
    res = s2kan_discover(data.x_train, data.y_train, data.x_test, data.y_test, data.inputs, data.outputs,
                         width=width, transform="log" if log_space else "identity",
                         library=library, grid=spec.model.grid, seed=spec.model.seed, basis=spec.model.basis,
                         config=s2kan_config(spec, warmup_gate=warmup_gate))  # fmt: skip
    return res
