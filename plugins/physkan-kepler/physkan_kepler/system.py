"""The ``[system]`` model and the data maker of ``type = "kepler"``.

State ``z = [x, y, px, py]`` of a unit mass in the potential ``-mu/r``::

    H = (px^2 + py^2)/2 - mu/r,   dz/dt = [px, py, -mu x/r^3, -mu y/r^3]

Conserved: energy ``H``, angular momentum ``L = x py - y px`` and the Laplace-Runge-Lenz
vector ``A = p x L - mu r/|r|`` (``A_x = py L - mu x/r``, ``A_y = -px L - mu y/r``).
"""

from __future__ import annotations

import math

import sympy
import torch
from pydantic import Field, field_validator

from physkan.problems import Dataset, ProblemSpec, SystemBase

__all__ = ["KeplerSystem", "make_kepler_dataset"]

QUANTITY_NAMES = ("energy", "angular_momentum", "lrl")


class KeplerSystem(SystemBase):
    """``type = "kepler"``: bound orbits sampled with radius and speed fractions."""

    state: list[str] = Field(default_factory=lambda: ["x", "y", "px", "py"])
    mu: float = Field(1.0, gt=0)
    radius: tuple[float, float] = (0.5, 2.0)
    speed_fraction: tuple[float, float] = (0.3, 0.9)

    @field_validator("state")
    @classmethod
    def _check_state(cls, value: list[str]) -> list[str]:
        if len(value) != 4 or len(set(value)) != 4:
            raise ValueError(f"needs 4 distinct state names [x, y, px, py], got {value}")
        return value

    @field_validator("radius", "speed_fraction")
    @classmethod
    def _check_interval(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0 < value[0] < value[1]:
            raise ValueError(f"needs 0 < low < high, got {list(value)}")
        return value

    def input_names(self) -> list[str]:
        return list(self.state)

    def required_ranges(self) -> list[str]:
        return []

    def network_shape(self) -> tuple[int | None, int | None]:
        return (4, 1)

    def symbols(self) -> list[sympy.Symbol]:
        """The state symbols ``x, y, px, py``."""
        return [sympy.Symbol(n, real=True) for n in self.state]

    def dynamics_exprs(self) -> list[sympy.Expr]:
        """``dz/dt`` as sympy expressions."""
        x, y, px, py = self.symbols()
        r3 = (x**2 + y**2) ** sympy.Rational(3, 2)
        mu = sympy.nsimplify(self.mu)
        return [px, py, -mu * x / r3, -mu * y / r3]

    def quantity_exprs(self) -> dict[str, sympy.Expr]:
        """The known conserved quantities: energy, L, A_x, A_y."""
        x, y, px, py = self.symbols()
        mu = sympy.nsimplify(self.mu)
        r = sympy.sqrt(x**2 + y**2)
        ang = x * py - y * px
        return {
            "energy": (px**2 + py**2) / 2 - mu / r,
            "angular_momentum": ang,
            "lrl_x": py * ang - mu * x / r,
            "lrl_y": -px * ang - mu * y / r,
        }


def _flow(z: torch.Tensor, mu: float) -> torch.Tensor:
    x, y, px, py = z.unbind(1)
    r3 = (x**2 + y**2) ** 1.5
    return torch.stack([px, py, -mu * x / r3, -mu * y / r3], 1)


def make_kepler_dataset(spec: ProblemSpec) -> Dataset:
    """Sample bound states (radius, angle, speed below escape, direction) and ``f(z)``."""
    system = spec.system
    assert isinstance(system, KeplerSystem)
    n_train, n_test = spec.data.n_train, spec.data.n_test
    n = n_train + n_test
    gen = torch.Generator().manual_seed(spec.data.seed)
    u = torch.rand((n, 4), generator=gen, dtype=torch.float64)
    r = system.radius[0] + (system.radius[1] - system.radius[0]) * u[:, 0]
    theta = 2 * math.pi * u[:, 1]
    lo, hi = system.speed_fraction
    speed = (lo + (hi - lo) * u[:, 2]) * torch.sqrt(2 * system.mu / r)
    phi = 2 * math.pi * u[:, 3]
    z = torch.stack([r * torch.cos(theta), r * torch.sin(theta),
                     speed * torch.cos(phi), speed * torch.sin(phi)], 1)  # fmt: skip
    f = _flow(z, system.mu)
    outputs = [f"d{name}" for name in system.state]
    meta = {"source": "sampled", "problem": spec.name, "type": spec.type,
            "seed": spec.data.seed, "noise": spec.data.noise}  # fmt: skip
    return Dataset(
        system.input_names(), outputs, z[:n_train], f[:n_train], z[n_train:], f[n_train:],
        meta=meta, extras={"f_train": f[:n_train], "f_test": f[n_train:]},
    )  # fmt: skip
