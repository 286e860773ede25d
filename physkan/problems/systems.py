"""The ``[system]`` tables of the built-in problem types.

Each problem type maps to one pydantic model derived from :class:`SystemBase`. A plugin
adds a type by subclassing :class:`SystemBase` and calling
:func:`physkan.problems.register_problem_type`. The hooks a system model can override:

* :meth:`SystemBase.input_names` / :meth:`SystemBase.output_names` — the data columns;
* :meth:`SystemBase.required_ranges` — the inputs that need a sampling box in
  ``[data].ranges`` when data are generated (not read from a file);
* :meth:`SystemBase.check_data` — extra checks against ``[data]`` (e.g. a horizon);
* ``truth_field`` — the field holding the ground truth, required unless ``[data].file``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import sympy
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import InitErrorDetails

from .errors import field_error
from .expressions import check_name, lambdify, parse_expression, parse_number

if TYPE_CHECKING:
    from .spec import DataSection

__all__ = [
    "ConservationSystem",
    "LagrangianSystem",
    "MetricSystem",
    "RegressionSystem",
    "SystemBase",
    "velocity_name",
]


def velocity_name(coordinate: str) -> str:
    """The name of the velocity of ``coordinate`` (``q`` -> ``q_dot``)."""
    return f"{coordinate}_dot"


class SystemBase(BaseModel):
    """Base of every ``[system]`` model; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")

    #: name of the field holding the ground truth (None: the type always knows its truth).
    truth_field: ClassVar[str | None] = None
    #: whether ``[data].file`` may give the data instead of the ground truth.
    reads_data_files: ClassVar[bool] = True

    def input_names(self) -> list[str]:
        """Names of the model inputs, in column order."""
        return []

    def output_names(self) -> list[str] | None:
        """Names of the model outputs, or None when the type fixes no output columns."""
        return None

    def required_ranges(self) -> list[str]:
        """Inputs that need a ``[data].ranges`` entry to sample data."""
        return self.input_names()

    def network_shape(self) -> tuple[int | None, int | None]:
        """(inputs, outputs) the KAN must have, None where the type leaves it open.

        ``[model].width`` is checked against it and defaults to ``[n_in, 5, n_out]``.
        """
        outputs = self.output_names()
        return (len(self.input_names()) or None, len(outputs) if outputs else None)

    def has_truth(self) -> bool:
        """Whether the file gives a ground truth to sample data from."""
        return self.truth_field is None or getattr(self, self.truth_field) is not None

    def check_data(self, data: DataSection) -> list[InitErrorDetails]:
        """Type-specific checks of ``[data]``; return errors located at their fields."""
        return []


#: most names a list of variables / coordinates / state variables may hold.
MAX_NAMES = 100
#: most coordinates of a Lagrangian (its velocity Hessian is a symbolic determinant).
MAX_COORDINATES = 16


def _names(value: list[str], what: str) -> list[str]:
    if not value:
        raise ValueError(f"needs at least one {what}")
    if len(value) > MAX_NAMES:
        raise ValueError(f"at most {MAX_NAMES} {what}s, got {len(value)}")
    for name in value:
        check_name(name)
    dupes = sorted({n for n in value if value.count(n) > 1})
    if dupes:
        raise ValueError(f"duplicate {what} {dupes[0]!r}")
    return value


def _constants(value: Any, taken: list[str]) -> dict[str, float]:
    if not isinstance(value, dict):
        raise ValueError("expected a table of name = number")
    out = {}
    for name, number in value.items():
        check_name(name)
        if name in taken:
            raise ValueError(f"{name!r} is both a variable and a constant")
        try:
            out[name] = parse_number(number)
        except ValueError:
            raise ValueError(
                f"{name} = {number!r} is not a number or a numeric formula such as '5/12'"
            ) from None
    return out


def _random_points(names: list[str], n: int = 16, scale: float = 1.0) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.uniform(-scale, scale, n) for _ in names]


class RegressionSystem(SystemBase):
    """``type = "regression"``: fit ``target`` (one formula or several) of ``variables``."""

    truth_field: ClassVar[str | None] = "target"

    variables: list[str]
    constants: dict[str, float] = Field(default_factory=dict)
    target: str | list[str] | None = None
    outputs: list[str] | None = None

    @field_validator("variables")
    @classmethod
    def _check_variables(cls, value: list[str]) -> list[str]:
        return _names(value, "variable")

    @field_validator("constants", mode="before")
    @classmethod
    def _check_constants(cls, value: Any, info: ValidationInfo) -> dict[str, float]:
        return _constants(value, info.data.get("variables", []))

    @field_validator("target", mode="before")
    @classmethod
    def _check_target(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return None
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not items or not all(isinstance(t, str) for t in items):
            raise ValueError("expected a formula string or a non-empty list of them")
        if "variables" in info.data and "constants" in info.data:
            for i, text in enumerate(items):
                where = f"[{i}] " if len(items) > 1 else ""
                try:
                    parse_expression(text, info.data["variables"], info.data["constants"])
                except ValueError as err:
                    raise ValueError(f"{where}{err}") from None
        return value

    @field_validator("outputs")
    @classmethod
    def _check_outputs(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        if value is None:
            return None
        _names(value, "output")
        n = len(cls._as_list(info.data.get("target")))
        if n and len(value) != n:
            raise ValueError(f"{len(value)} output names for {n} targets")
        clash = set(value) & set(info.data.get("variables", []))
        if clash:
            raise ValueError(f"output {sorted(clash)[0]!r} is also a variable")
        return value

    @staticmethod
    def _as_list(target: str | list[str] | None) -> list[str]:
        if target is None:
            return []
        return [target] if isinstance(target, str) else list(target)

    def targets(self) -> list[str]:
        """The target formulas as a list (empty when the data come from a file)."""
        return self._as_list(self.target)

    def target_exprs(self) -> list[sympy.Expr]:
        """The targets as sympy expressions with the constants substituted."""
        return [parse_expression(t, self.variables, self.constants) for t in self.targets()]

    def input_names(self) -> list[str]:
        return list(self.variables)

    def output_names(self) -> list[str]:
        if self.outputs is not None:
            return list(self.outputs)
        n = max(len(self.targets()), 1)
        return ["y"] if n == 1 else [f"y{i}" for i in range(n)]


def check_coordinates(value: list[str], partner: Callable[[str], str], what: str) -> list[str]:
    """Valid, distinct coordinate names, at most :data:`MAX_COORDINATES`, none equal to the
    ``what`` name (``partner(q)``: a velocity or a momentum) of another coordinate."""
    _names(value, "coordinate")
    if len(value) > MAX_COORDINATES:
        raise ValueError(f"at most {MAX_COORDINATES} coordinates, got {len(value)}")
    clash = set(value) & {partner(q) for q in value}
    if clash:
        raise ValueError(f"coordinate {sorted(clash)[0]!r} collides with a {what} name")
    return value


class LagrangianSystem(SystemBase):
    """``type = "lagrangian"``: learn L(q, q_dot); velocities are named ``<q>_dot``."""

    truth_field: ClassVar[str | None] = "lagrangian"

    coordinates: list[str]
    constants: dict[str, float] = Field(default_factory=dict)
    lagrangian: str | None = None

    @field_validator("coordinates")
    @classmethod
    def _check_coordinates(cls, value: list[str]) -> list[str]:
        return check_coordinates(value, velocity_name, "velocity")

    @field_validator("constants", mode="before")
    @classmethod
    def _check_constants(cls, value: Any, info: ValidationInfo) -> dict[str, float]:
        coords = info.data.get("coordinates", [])
        return _constants(value, [*coords, *map(velocity_name, coords)])

    @field_validator("lagrangian")
    @classmethod
    def _check_lagrangian(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or "coordinates" not in info.data or "constants" not in info.data:
            return value
        coords = info.data["coordinates"]
        vels = [velocity_name(q) for q in coords]
        expr = parse_expression(value, [*coords, *vels], info.data["constants"])
        used = {s.name for s in expr.free_symbols}
        if not used & set(vels):
            raise ValueError(
                f"does not depend on any velocity ({', '.join(vels)}); a Lagrangian needs a "
                "kinetic term such as 'q_dot**2/2' (velocities are named <coordinate>_dot)"
            )
        missing = [v for v in vels if v not in used]
        if missing:
            raise ValueError(f"does not depend on {missing[0]!r}; that coordinate has no dynamics")
        if _hessian_singular(expr, coords, vels):
            raise ValueError(
                "the velocity Hessian d2L/dq_dot2 is singular, so the accelerations cannot "
                "be solved from the Euler-Lagrange equations"
            )
        return value

    def velocities(self) -> list[str]:
        """Velocity names, ``[f"{q}_dot" for q in coordinates]``."""
        return [velocity_name(q) for q in self.coordinates]

    def lagrangian_expr(self) -> sympy.Expr | None:
        """The ground-truth Lagrangian with constants substituted (None if not given)."""
        if self.lagrangian is None:
            return None
        return parse_expression(self.lagrangian, self.input_names(), self.constants)

    def input_names(self) -> list[str]:
        return [*self.coordinates, *self.velocities()]

    def output_names(self) -> list[str]:
        return ["L"]


def _hessian_singular(expr: sympy.Expr, coords: list[str], vels: list[str]) -> bool:
    """True when det(d2L/dv2) vanishes at every finite random test point."""
    det = sympy.hessian(expr, [sympy.Symbol(v) for v in vels]).det()
    names = [*coords, *vels]
    fn = lambdify(det, names)
    values = fn(*_random_points(names, scale=0.5))
    finite = values[np.isfinite(values)]
    return finite.size > 0 and bool(np.all(np.abs(finite) < 1e-12))


class ConservationSystem(SystemBase):
    """``type = "conservation"``: find ``n_quantities`` conserved quantities of a flow."""

    truth_field: ClassVar[str | None] = "dynamics"
    reads_data_files: ClassVar[bool] = False

    state: list[str]
    constants: dict[str, float] = Field(default_factory=dict)
    dynamics: list[str] | None = None
    n_quantities: int = Field(1, ge=1, le=MAX_NAMES)
    quantities: list[str] | None = None

    @field_validator("state")
    @classmethod
    def _check_state(cls, value: list[str]) -> list[str]:
        return _names(value, "state variable")

    @field_validator("constants", mode="before")
    @classmethod
    def _check_constants(cls, value: Any, info: ValidationInfo) -> dict[str, float]:
        return _constants(value, info.data.get("state", []))

    @field_validator("dynamics")
    @classmethod
    def _check_dynamics(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        if value is None or "state" not in info.data or "constants" not in info.data:
            return value
        state = info.data["state"]
        if len(value) != len(state):
            raise ValueError(
                f"{len(value)} equations for {len(state)} state variables ({', '.join(state)})"
            )
        for i, text in enumerate(value):
            try:
                parse_expression(text, state, info.data["constants"])
            except ValueError as err:
                raise ValueError(f"[{i}] (d{state[i]}/dt): {err}") from None
        return value

    @field_validator("quantities")
    @classmethod
    def _check_quantities(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        needed = ("state", "constants", "n_quantities")
        if value is None or any(k not in info.data for k in needed):
            return value
        if len(value) > info.data["n_quantities"]:
            raise ValueError(f"{len(value)} quantities given but n_quantities is smaller")
        state, consts = info.data["state"], info.data["constants"]
        flow = info.data.get("dynamics")
        for i, text in enumerate(value):
            try:
                quantity = parse_expression(text, state, consts)
            except ValueError as err:
                raise ValueError(f"[{i}]: {err}") from None
            if flow is not None and not _is_conserved(quantity, flow, state, consts):
                raise ValueError(f"[{i}]: {text!r} is not conserved by the dynamics")
        return value

    def dynamics_exprs(self) -> list[sympy.Expr] | None:
        """The right-hand sides d(state)/dt as sympy expressions (None if not given)."""
        if self.dynamics is None:
            return None
        return [parse_expression(t, self.state, self.constants) for t in self.dynamics]

    def quantity_exprs(self) -> list[sympy.Expr]:
        """The known conserved quantities as sympy expressions (possibly empty)."""
        return [parse_expression(t, self.state, self.constants) for t in self.quantities or []]

    def input_names(self) -> list[str]:
        return list(self.state)

    def network_shape(self) -> tuple[int | None, int | None]:
        """One scalar-valued KAN per quantity (the paper trains one per seed)."""
        return (len(self.state), 1)


def _is_conserved(
    quantity: sympy.Expr, flow: list[str], state: list[str], consts: dict[str, float]
) -> bool:
    """Numerically check dQ/dt = grad(Q) . f = 0 at random points."""
    symbols = [sympy.Symbol(s) for s in state]
    rhs = [parse_expression(t, state, consts) for t in flow]
    terms = [sympy.diff(quantity, x) * f for x, f in zip(symbols, rhs, strict=True)]
    points = _random_points(state)
    values = np.stack([lambdify(term, state)(*points) for term in terms])
    total, scale = values.sum(axis=0), np.abs(values).sum(axis=0)
    ok = np.isfinite(total)
    return bool(np.all(np.abs(total[ok]) <= 1e-9 * (1.0 + scale[ok])))


class MetricSystem(SystemBase):
    """``type = "metric"``: a known spacetime metric; ``coordinates[1]`` is the radius.

    Only the radius needs a sampling range (the paper learns the time shift dt(r) that
    makes the spatial slices flat); the network shape is left to ``physkan.physics``.
    """

    reads_data_files: ClassVar[bool] = False

    coordinates: list[str] = Field(default_factory=lambda: ["t", "r", "theta", "phi"])
    metric: Literal["schwarzschild"] = "schwarzschild"
    mass: float = Field(1.0, gt=0)

    @field_validator("coordinates")
    @classmethod
    def _check_coordinates(cls, value: list[str]) -> list[str]:
        _names(value, "coordinate")
        if len(value) != 4:
            raise ValueError(
                f"a spacetime needs 4 coordinates (t, r, theta, phi), got {len(value)}"
            )
        return value

    def input_names(self) -> list[str]:
        return list(self.coordinates)

    def required_ranges(self) -> list[str]:
        return [self.coordinates[1]]

    def network_shape(self) -> tuple[int | None, int | None]:
        return (None, None)

    def horizon(self) -> float:
        """Schwarzschild radius r_s = 2M (G = c = 1)."""
        return 2.0 * self.mass

    def check_data(self, data: DataSection) -> list[InitErrorDetails]:
        radius = self.coordinates[1]
        if radius in data.ranges and data.ranges[radius][0] <= self.horizon():
            low = data.ranges[radius][0]
            return [
                field_error(
                    ("data", "ranges", radius),
                    f"low end {low:g} is at or inside the horizon r_s = 2*mass = "
                    f"{self.horizon():g}; sample outside it",
                )
            ]
        return []
