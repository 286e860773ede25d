"""Physics for physkan: Euler-Lagrange mechanics by autograd, physics losses, the
Schwarzschild hidden-symmetry metric, torchdiffeq rollouts, data makers and verification.

Every function takes plain callables (torch functions or any ``nn.Module``, e.g. a KAN) and
works in float64 by default.
"""

from .data import (
    conservation_data,
    harmonic_oscillator_2d,
    lagrangian_data,
    lagrangian_from_sympy,
    lagrangian_trajectories,
    metric_data,
    neo_hookean_data,
    neo_hookean_stress,
    neo_hookean_sympy,
    sample_box,
    sympy_callable,
)
from .dynamics import autonomous, integrate, rollout_error
from .hamiltonian import hamiltonian_rhs, hamiltonian_vector_field
from .lagrangian import (
    SingularHessianError,
    lagrangian_accelerations,
    lagrangian_derivatives,
    lagrangian_energy,
    lagrangian_rhs,
)
from .losses import (
    conservation_loss,
    conservation_loss_terms,
    euler_lagrange_loss,
    independence_penalty,
    metric_flatness_loss,
    symplectic_loss,
)
from .metric import (
    gullstrand_painleve_delta_t,
    gullstrand_painleve_derivative,
    gullstrand_painleve_sympy,
    schwarzschild_metric,
    spatial_flatness_loss,
    spatial_metric_rr,
    transformed_metric,
)
from .verify import (
    conserved_quantities_check,
    verify_hamiltonian_rollout,
    verify_lagrangian_rollout,
)

__all__ = [
    "SingularHessianError",
    "autonomous",
    "conservation_data",
    "conservation_loss",
    "conservation_loss_terms",
    "conserved_quantities_check",
    "euler_lagrange_loss",
    "gullstrand_painleve_delta_t",
    "gullstrand_painleve_derivative",
    "gullstrand_painleve_sympy",
    "hamiltonian_rhs",
    "hamiltonian_vector_field",
    "harmonic_oscillator_2d",
    "independence_penalty",
    "integrate",
    "lagrangian_accelerations",
    "lagrangian_data",
    "lagrangian_derivatives",
    "lagrangian_energy",
    "lagrangian_from_sympy",
    "lagrangian_rhs",
    "lagrangian_trajectories",
    "metric_data",
    "metric_flatness_loss",
    "neo_hookean_data",
    "neo_hookean_stress",
    "neo_hookean_sympy",
    "rollout_error",
    "sample_box",
    "schwarzschild_metric",
    "spatial_flatness_loss",
    "spatial_metric_rr",
    "sympy_callable",
    "symplectic_loss",
    "transformed_metric",
    "verify_hamiltonian_rollout",
    "verify_lagrangian_rollout",
]
