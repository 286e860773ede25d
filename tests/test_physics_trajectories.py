"""Trajectory files: simulate -> CSV -> load round trips, bad files, `physkan simulate` (issue 16)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import sympy
import torch
from click.testing import CliRunner

from physkan.cli import cli
from physkan.physics.simulate import hamiltonian_system, simulate_trajectories, write_trajectory_csv
from physkan.problems import ProblemError, make_dataset, problem_from_dict
from physkan.problems.trajectories import estimate_noise, load_trajectory_states, read_trajectories

OSCILLATOR = {"name": "osc", "type": "hamiltonian",
              "system": {"coordinates": ["q"], "hamiltonian": "p_q**2/2 + 2*q**2"},
              "data": {"ranges": {"q": [-1, 1], "p_q": [-1, 1]}}}  # fmt: skip


@pytest.fixture(scope="module")
def oscillator_sim():
    """3 trajectories of H = p^2/2 + 2 q^2 (omega = 2), t in [0, 4], dt = 0.01."""
    q, p = sympy.symbols("q p_q")
    rhs, energy = hamiltonian_system(p**2 / 2 + 2 * q**2, ["q"], ["p_q"])
    sim = simulate_trajectories(rhs, energy, [(-1, 1), (-1, 1)], n_traj=3, t_max=4.0, dt=0.01)
    assert sim.energy_drift < 1e-8
    return sim


@pytest.fixture(scope="module")
def oscillator_csv(oscillator_sim, tmp_path_factory: pytest.TempPathFactory) -> Path:
    sim = oscillator_sim
    return write_trajectory_csv(tmp_path_factory.mktemp("traj") / "osc.csv", sim.t, sim.states, ["q", "p_q"])


def _rewrite(src: Path, dst: Path, keep=lambda i, row: True) -> Path:
    with src.open() as fh:
        rows = list(csv.reader(fh))
    with dst.open("w", newline="") as fh:
        csv.writer(fh).writerows([rows[0], *(r for i, r in enumerate(rows[1:]) if keep(i, r))])
    return dst


@pytest.mark.parametrize("uneven", [False, True], ids=["even", "uneven"])
@pytest.mark.parametrize("noise", [0.0, 1e-3], ids=["exact", "noisy"])
def test_roundtrip_derivatives_match_hamiltons_equations(oscillator_sim, tmp_path: Path, uneven: bool,
                                                         noise: float) -> None:  # fmt: skip
    sim = oscillator_sim
    path = write_trajectory_csv(tmp_path / "osc.csv", sim.t, sim.states, ["q", "p_q"], noise=noise)
    rng = np.random.default_rng(1)
    if uneven:  # drop 40 % of the rows at random: uneven sampling
        path = _rewrite(path, tmp_path / "uneven.csv", keep=lambda i, r: rng.random() > 0.4)
    states = load_trajectory_states(path, ["q"], kind="hamiltonian")
    q, p = states.q[:, 0], states.p[:, 0]
    # Hamilton: q_dot = p, p_dot = -4 q (checked against the smoothed states themselves)
    err_qdot = (states.qdot[:, 0] - p).abs()
    err_pdot = (states.pdot[:, 0] + 4 * q).abs()
    if noise:
        assert states.smoothed
        assert float(err_qdot.pow(2).mean().sqrt()) < 0.02 * float(p.std())
        assert float(err_pdot.pow(2).mean().sqrt()) < 0.02 * float((4 * q).std())
    else:
        assert not states.smoothed
        assert float(err_qdot.max()) < 1e-5 and float(err_pdot.max()) < 1e-5
    assert set(states.trajectory.unique().tolist()) == {0.0, 1.0, 2.0}


def test_hdf5_file_with_the_same_columns_gives_the_same_states(oscillator_csv: Path, tmp_path: Path) -> None:
    import h5py

    table = np.loadtxt(oscillator_csv, delimiter=",", skiprows=1)
    with h5py.File(tmp_path / "osc.h5", "w") as fh:
        fh.create_dataset("table", data=table).attrs["columns"] = ["t", "q", "p_q", "trajectory"]
    a = load_trajectory_states(oscillator_csv, ["q"], kind="hamiltonian")
    b = load_trajectory_states(tmp_path / "osc.h5", ["q"], kind="hamiltonian")
    assert torch.equal(a.pdot, b.pdot) and torch.equal(a.trajectory, b.trajectory)


def test_noise_estimate_is_round_off_for_smooth_and_sigma_for_noisy() -> None:
    t = np.sort(np.random.default_rng(0).uniform(0, 10, 800))
    y = np.sin(1.3 * t)
    assert estimate_noise(t, y) < 1e-7
    noisy = y + 1e-3 * np.random.default_rng(1).standard_normal(len(t))
    assert 0.7e-3 < estimate_noise(t, noisy) < 1.3e-3


def test_lagrangian_dataset_from_file_has_the_sampled_layout(oscillator_csv: Path, tmp_path: Path) -> None:
    # the columns t, q, p_q, trajectory: for a Lagrangian problem p_q is ignored and q_ddot
    # comes from the spline of q (omega = 2: q_ddot = -4 q)
    spec = problem_from_dict({"name": "osc-l", "type": "lagrangian",
                              "system": {"coordinates": ["q"]},  # no ground truth: optional with a file
                              "data": {"file": str(oscillator_csv), "n_train": 500, "n_test": 200}})  # fmt: skip
    data = make_dataset(spec)
    assert data.inputs == ["q", "q_dot"] and data.outputs == ["q_ddot"]
    assert data.x_train.shape == (500, 2) and data.extras["qddot_train"].shape == (500, 1)
    assert data.meta["source"] == "file" and data.meta["trajectories"] == 3
    q, qddot = data.x_train[:, 0], data.extras["qddot_train"][:, 0]
    assert float((qddot + 4 * q).abs().max()) < 1e-4


def test_hamiltonian_dataset_from_file(oscillator_csv: Path) -> None:
    spec = problem_from_dict({**OSCILLATOR, "data": {"file": str(oscillator_csv), "n_train": 300, "n_test": 100}})
    data = make_dataset(spec)
    assert data.inputs == ["q", "p_q"] and data.outputs == ["q_dot", "p_q_dot"]
    assert torch.equal(data.y_test, data.extras["zdot_test"])


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda rows: [["t", "x", "p_q", "trajectory"], *rows[1:]], "missing column(s) q"),
        (lambda rows: [rows[0], *rows[1:3][::-1], *rows[3:]], "column 't' is not strictly increasing"),
        (lambda rows: [rows[0], ["0.5", "nan", "0.1", "0"], *rows[2:]], "column 'q' has 1 missing/NaN"),
        (lambda rows: [rows[0], *rows[1:6]], "needs at least 12 per trajectory"),
        (lambda rows: [["t", "q", "momentum", "trajectory"], *rows[1:]], "missing column(s) p_q"),
    ],
    ids=["missing-q", "time-order", "nan", "too-few", "no-momenta"],
)
def test_bad_trajectory_files_name_the_column(oscillator_csv: Path, tmp_path: Path, edit, message: str) -> None:
    with oscillator_csv.open() as fh:
        rows = list(csv.reader(fh))[:400]
    bad = tmp_path / "bad.csv"
    with bad.open("w", newline="") as fh:
        csv.writer(fh).writerows(edit(rows))
    with pytest.raises(ProblemError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        read_trajectories(bad, ["q"], need_momenta=True)
    assert str(bad) in str(info.value)


def test_schema_refuses_unknown_derivative_route() -> None:
    with pytest.raises(ProblemError, match="data.derivatives"):
        problem_from_dict({**OSCILLATOR, "data": {"file": "x.csv", "derivatives": "rollout"}})


def test_simulate_cli_writes_a_loadable_file(tmp_path: Path) -> None:
    out = tmp_path / "pend.csv"
    result = CliRunner().invoke(cli, ["simulate", "--problem", "pendulum", "--out", str(out),
                                      "--n-traj", "2", "--t-max", "1", "--dt", "0.05", "--noise", "0"])  # fmt: skip
    assert result.exit_code == 0, result.output
    with out.open() as fh:
        header = next(csv.reader(fh))
    assert header == ["t", "q", "q_dot", "trajectory"]
    trajs = read_trajectories(out, ["q"])
    assert len(trajs) == 2 and len(trajs[0].t) == 21 and trajs[0].qdot is not None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dt", "-1"], "Error: --dt: must be in"),
        (["--n-traj", "two"], "Error: --n-traj: 'two' is not an integer"),
        (["--dt", "5", "--t-max", "1"], "Error: --dt: 5 is longer than --t-max 1"),
        (["--problem", "tutorial"], "Error: type: physkan simulate needs a lagrangian or hamiltonian"),
        (["--problem", "no-such-problem"], "Error: "),
    ],
    ids=["dt", "n-traj", "dt-long", "type", "unknown"],
)
def test_simulate_cli_bad_options_give_one_error_line(tmp_path: Path, args: list[str], message: str) -> None:
    base = {"--problem": "pendulum", "--out": str(tmp_path / "x.csv")}
    for key, value in zip(args[::2], args[1::2]):
        base[key] = value
    result = CliRunner().invoke(cli, ["simulate", *(s for kv in base.items() for s in kv)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), result.output
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.slow
@pytest.mark.recovery
def test_pendulum_lagrangian_from_its_trajectory_file(tmp_path: Path) -> None:
    from physkan.discover import discover

    out = tmp_path / "pend.csv"
    result = CliRunner().invoke(cli, ["simulate", "--problem", "pendulum", "--out", str(out),
                                      "--n-traj", "6", "--t-max", "5"])  # fmt: skip
    assert result.exit_code == 0, result.output
    spec = problem_from_dict({
        "name": "pendulum-traj", "type": "lagrangian",
        "system": {"coordinates": ["q"], "lagrangian": "q_dot**2/2 + cos(q)"},
        "data": {"file": str(out), "n_train": 600, "n_test": 300,
                 "ranges": {"q": [-1.5, 1.5], "q_dot": [-1.5, 1.5]}},
        "model": {"width": [2, 5, 1]}, "train": {"steps": 200},
        "discover": {"library": ["x", "x^2", "sin", "cos"]},
    })  # fmt: skip
    found = discover(spec, time_budget=240)
    assert found.recovered is True, (found.formula_text, found.recovery)
