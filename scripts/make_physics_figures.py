"""Figures of docs/physics.md: the Kepler Hamiltonian learned from simulated trajectories.

    .venv/bin/python scripts/make_physics_figures.py [--out docs/figures]

Simulates 10 Kepler orbits (``physkan simulate``'s code, dt = 0.01, no noise), discovers H
from the trajectory file (``type = "hamiltonian"``), then rolls the true and the learned H out
for t in [0, 20] from two held-out initial states and draws the orbits and the relative
energy error along the learned rollout: ``kepler_rollout.png``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from physkan.discover import discover  # noqa: E402
from physkan.physics.data import sympy_callable  # noqa: E402
from physkan.physics.dynamics import integrate  # noqa: E402
from physkan.physics.hamiltonian import hamiltonian_rhs  # noqa: E402
from physkan.physics.simulate import hamiltonian_system, simulate_trajectories, write_trajectory_csv  # noqa: E402
from physkan.problems import load_problem  # noqa: E402


def kepler_rollout(out: Path) -> Path:
    """Draw ``kepler_rollout.png`` into ``out``; returns its path."""
    spec = load_problem("kepler-hamiltonian")
    names = spec.system.input_names()
    truth = spec.system.hamiltonian_expr()
    rhs, energy = hamiltonian_system(truth, spec.system.coordinates, spec.system.momenta())
    ranges = [tuple(spec.data.ranges[v]) for v in names]
    sim = simulate_trajectories(rhs, energy, ranges, n_traj=10, t_max=10.0, dt=0.01, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_trajectory_csv(Path(tmp) / "kepler.csv", sim.t, sim.states, names)
        found = discover(spec.updated({"data.file": str(path)}), time_budget=120)
    print(f"found H = {found.formula_text[0]} (recovered: {found.recovered}, {found.seconds:.0f} s)")
    z0 = simulate_trajectories(rhs, energy, ranges, n_traj=2, t_max=20.0, dt=0.05, seed=99).states[0]
    t = torch.linspace(0, 20, 801, dtype=torch.float64)
    true = integrate(rhs, z0, t, rtol=1e-10, atol=1e-12)
    learned = integrate(hamiltonian_rhs(sympy_callable(found.formulas[0], names)), z0, t, rtol=1e-10, atol=1e-12)
    fig, (ax, ax_e) = plt.subplots(1, 2, figsize=(10, 4.2))
    for b, colour in enumerate(("C0", "C1")):
        ax.plot(true[:, b, 0], true[:, b, 1], color=colour, lw=3, alpha=0.35, label=f"true, orbit {b + 1}")
        ax.plot(learned[:, b, 0], learned[:, b, 1], color=colour, lw=1, ls="--", label=f"learned, orbit {b + 1}")
        e = energy(learned[:, b])
        ax_e.semilogy(t, ((e - e[0]).abs() / e[0].abs()).clamp_min(1e-17), color=colour, label=f"orbit {b + 1}")
    ax.plot([0], [0], "k*", ms=10)
    ax.set(aspect="equal", xlabel="x", ylabel="y", title=f"Kepler: H = {found.formula_text[0]}")
    ax.legend(fontsize=7, loc="upper right")
    ax_e.set(xlabel="t", ylabel="|E(t) - E(0)| / |E(0)| (true H, learned rollout)", title="energy drift")
    ax_e.legend(fontsize=8)
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    target = out / "kepler_rollout.png"
    fig.savefig(target, dpi=110)
    print(f"wrote {target}; max |learned - true| = {float((learned - true).abs().max()):.1e}")
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/figures"))
    kepler_rollout(parser.parse_args().out)


if __name__ == "__main__":
    main()
