"""``physkan simulate``: integrate a problem's true L or H and write a trajectory CSV.

``physkan simulate --problem kepler-hamiltonian --out traj.csv --n-traj 10 --t-max 10
--dt 0.01 --noise 0 --seed 0`` draws initial states in the problem's ``[data].ranges``,
integrates them (:mod:`physkan.physics.simulate`) and writes ``t, q..., q_dot... | p_q...,
trajectory`` (format: ``docs/physics.md``). Bad options print one ``Error:`` line (exit 2).
"""

from __future__ import annotations

import math

import click

__all__ = ["simulate_command"]

#: most rows a simulated file may have (n_traj * samples per trajectory).
MAX_ROWS = 5_000_000


def _number(option: str, text: str, kind: type, low: float, high: float) -> float:
    """Parse ``text`` as ``kind`` in ``[low, high]`` or raise a one-line user error."""
    from physkan.cli import UserError

    try:
        value = kind(text)
    except ValueError:
        raise UserError(f"{option}: {text!r} is not a{'n integer' if kind is int else ' number'}") from None
    if not (math.isfinite(value) and low <= value <= high):
        raise UserError(f"{option}: must be in [{low:g}, {high:g}], got {text}")
    return value


@click.command("simulate")
@click.option("--problem", "-p", required=True, help="Built-in problem name or path to a problem TOML.")
@click.option("--out", required=True, help="CSV file to write.")
@click.option("--n-traj", default="10", show_default=True, help="Number of trajectories.")
@click.option("--t-max", default="10", show_default=True, help="Duration of each trajectory.")
@click.option("--dt", default="0.01", show_default=True, help="Sampling interval.")
@click.option("--noise", default="0", show_default=True,
              help="Gaussian noise on the written states, relative to each column's std.")
@click.option("--seed", default="0", show_default=True, help="Seed of the initial states and noise.")
def simulate_command(problem: str, out: str, n_traj: str, t_max: str, dt: str, noise: str, seed: str) -> None:
    """Integrate the problem's true Lagrangian or Hamiltonian and write trajectories (CSV)."""
    from pathlib import Path

    from physkan.cli import UserError, user_errors
    from physkan.physics.simulate import (
        SimulationError,
        hamiltonian_system,
        lagrangian_system,
        simulate_trajectories,
        write_trajectory_csv,
    )
    from physkan.problems import load_problem

    n = int(_number("--n-traj", n_traj, int, 1, 10_000))
    duration = _number("--t-max", t_max, float, 1e-9, 1e6)
    step = _number("--dt", dt, float, 1e-9, 1e6)
    sigma = _number("--noise", noise, float, 0, 100)
    rng_seed = int(_number("--seed", seed, int, 0, 2**63 - 1))
    if step > duration:
        raise UserError(f"--dt: {step:g} is longer than --t-max {duration:g}")
    if n * (duration / step + 1) > MAX_ROWS:
        raise UserError(f"--n-traj x --t-max / --dt: at most {MAX_ROWS:,} rows, asked for "
                        f"{n * (duration / step + 1):,.0f}")  # fmt: skip
    if Path(out).is_dir():
        raise UserError(f"--out: {out!r} is a directory; give a file name such as traj.csv")
    with user_errors():
        spec = load_problem(problem)
        system = spec.system
        if spec.type == "lagrangian":
            truth, field = system.lagrangian_expr(), "lagrangian"
            columns = system.input_names()
            make = lambda: lagrangian_system(truth, system.coordinates)  # noqa: E731
        elif spec.type == "hamiltonian":
            truth, field = system.hamiltonian_expr(), "hamiltonian"
            columns = system.input_names()
            make = lambda: hamiltonian_system(truth, system.coordinates, system.momenta())  # noqa: E731
        else:
            raise UserError(f"type: physkan simulate needs a lagrangian or hamiltonian problem, "
                            f"{spec.name} is {spec.type!r}")  # fmt: skip
        if truth is None:
            raise UserError(f"system.{field}: physkan simulate needs the ground truth of {spec.name}")
        missing = [c for c in columns if c not in spec.data.ranges]
        if missing:
            raise UserError(f"data.ranges.{missing[0]}: needed to draw initial states")
        ranges = [tuple(spec.data.ranges[c]) for c in columns]
        rhs, energy = make()
        try:
            sim = simulate_trajectories(rhs, energy, ranges, n_traj=n, t_max=duration, dt=step, seed=rng_seed)
        except SimulationError as err:
            raise UserError(str(err)) from None
        try:
            write_trajectory_csv(out, sim.t, sim.states, columns, noise=sigma, seed=rng_seed)
        except OSError as err:
            raise UserError(f"--out: cannot write {out!r} ({err.strerror or err})") from None
    click.echo(f"wrote {n} trajectories x {len(sim.t)} samples to {out} "
               f"(energy drift {sim.energy_drift:.1e}, {sim.rejected} initial states rejected)")  # fmt: skip
