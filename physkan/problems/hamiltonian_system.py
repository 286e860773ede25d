"""The ``hamiltonian`` problem type: its ``[system]`` table (data maker: ``hamiltonian.py``).

``[system] coordinates = ["x", "y"]`` names ``q``; the conjugate momenta are named
``p_<q>`` (``p_x``, ``p_y``; :func:`~physkan.problems.trajectories.momentum_name`) and
``hamiltonian = "..."`` is the ground truth H(q, p), optional when ``[data] file`` gives
trajectories. Data are phase-space states ``z = (q, p)`` with their time derivatives
``dz/dt = (dH/dp, -dH/dq)`` (Hamilton's equations): sampled uniformly in ``[data].ranges``
from the truth, or differentiated from a trajectory file
(:func:`physkan.problems.trajectory_data.hamiltonian_file_dataset`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import sympy
from pydantic import Field, ValidationInfo, field_validator

from .expressions import parse_expression
from .systems import SystemBase, _constants, check_coordinates
from .trajectories import momentum_name

__all__ = ["HamiltonianSystem", "hamilton_rhs_exprs"]


class HamiltonianSystem(SystemBase):
    """``type = "hamiltonian"``: learn H(q, p); momenta are named ``p_<q>``."""

    truth_field: ClassVar[str | None] = "hamiltonian"

    coordinates: list[str]
    constants: dict[str, float] = Field(default_factory=dict)
    hamiltonian: str | None = None

    @field_validator("coordinates")
    @classmethod
    def _check_coordinates(cls, value: list[str]) -> list[str]:
        return check_coordinates(value, momentum_name, "momentum")

    @field_validator("constants", mode="before")
    @classmethod
    def _check_constants(cls, value: Any, info: ValidationInfo) -> dict[str, float]:
        coords = info.data.get("coordinates", [])
        return _constants(value, [*coords, *map(momentum_name, coords)])

    @field_validator("hamiltonian")
    @classmethod
    def _check_hamiltonian(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or "coordinates" not in info.data or "constants" not in info.data:
            return value
        coords = info.data["coordinates"]
        moms = [momentum_name(q) for q in coords]
        expr = parse_expression(value, [*coords, *moms], info.data["constants"])
        used = {s.name for s in expr.free_symbols}
        if not used & set(moms):
            raise ValueError(
                f"does not depend on any momentum ({', '.join(moms)}); a Hamiltonian needs a "
                "kinetic term such as 'p_x**2/2' (momenta are named p_<coordinate>)"
            )
        return value

    def momenta(self) -> list[str]:
        """Momentum names, ``[f"p_{q}" for q in coordinates]``."""
        return [momentum_name(q) for q in self.coordinates]

    def hamiltonian_expr(self) -> sympy.Expr | None:
        """The ground-truth Hamiltonian with constants substituted (None if not given)."""
        if self.hamiltonian is None:
            return None
        return parse_expression(self.hamiltonian, self.input_names(), self.constants)

    def derivative_names(self) -> list[str]:
        """Names of ``dz/dt``: ``[q_dot..., p_q_dot...]``."""
        return [f"{v}_dot" for v in self.input_names()]

    def input_names(self) -> list[str]:
        return [*self.coordinates, *self.momenta()]

    def output_names(self) -> list[str]:
        return ["H"]


def hamilton_rhs_exprs(H: sympy.Expr, coordinates: list[str]) -> list[sympy.Expr]:
    """Hamilton's equations ``[dH/dp_1..dH/dp_n, -dH/dq_1..-dH/dq_n]`` as sympy."""
    qs = [sympy.Symbol(q) for q in coordinates]
    ps = [sympy.Symbol(momentum_name(q)) for q in coordinates]
    return [sympy.diff(H, p) for p in ps] + [-sympy.diff(H, q) for q in qs]
