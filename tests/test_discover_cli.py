"""End-to-end: `physkan discover` on built-in problems, the --json contract, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from physkan.cli import cli

REQUIRED_KEYS = {"problem", "formula", "formulas", "recovered", "metrics", "seconds"}


def run_cli(*args: str, env: dict | None = None):
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def run_discover_process(problem: str) -> subprocess.CompletedProcess:
    """`physkan discover --problem PROBLEM --no-register` in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "physkan.cli", "discover", "--problem", problem, "--no-register"],
        capture_output=True, text=True, timeout=300,
    )


@pytest.mark.recovery
def test_discover_pendulum_json_recovers_lagrangian(tmp_path: Path) -> None:
    result = run_cli("discover", "--problem", "pendulum", "--json", "--zoo", str(tmp_path / "zoo"))
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload.keys() >= REQUIRED_KEYS
    assert payload["recovered"] is True
    assert payload["formula"] == "q_dot**2/2 + cos(q)"
    assert payload["metrics"]["test_rmse"] < 1e-6
    assert payload["zoo_id"].startswith("pendulum-lagrangian:")


@pytest.mark.recovery
def test_discover_tutorial_recovers_exact_formula(tmp_path: Path) -> None:
    from physkan.symbolic import equivalent

    repo = Path(__file__).resolve().parents[1]
    result = run_cli("discover", "--problem", str(repo / "problems" / "tutorial.toml"), "--json",
                     "--no-register", "--out", str(tmp_path / "out"))  # fmt: skip
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["recovered"] is True
    assert equivalent(payload["formula"], "exp(sin(pi*x) + y**2)", ["x", "y"], {"x": (-1, 1), "y": (-1, 1)})
    assert payload["metrics"]["test_rmse"] < 1e-6
    assert (tmp_path / "out" / "model.h5").stat().st_size > 1000
    assert json.loads((tmp_path / "out" / "result.json").read_text())["recovered"] is True


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "unknown problem"),
        ('name = "x"\ntype = [', "malformed TOML"),
        ('name = "x"\ntype = "lagrangian"\n[system]\ncoordinates = []\n', "system.coordinates"),
        ('name = "x"\ntype = "alchemy"\n[system]\n', "type"),
        (
            'name = "x"\ntype = "regression"\n[system]\nvariables = ["x"]\ntarget = "x"\n'
            '[data]\nranges = {x = [0, 1]}\n[discover]\nlibrary = ["x", "frobnicate"]\n',
            "frobnicate",
        ),
        (
            'name = "x"\ntype = "lagrangian"\n[system]\ncoordinates = ["q"]\nlagrangian = "cos(q)"\n'
            '[data]\nranges = {q = [0, 1], q_dot = [0, 1]}\n',
            "velocit",
        ),
        (
            'name = "x"\ntype = "lagrangian"\n[system]\ncoordinates = ["q"]\nlagrangian = "q*q_dot + cos(q)"\n'
            '[data]\nranges = {q = [0, 1], q_dot = [0, 1]}\n',
            "singular",
        ),
    ],
)
def test_bad_input_one_line_exit_2(tmp_path: Path, content: str | None, message: str) -> None:
    target = "does-not-exist"
    if content is not None:
        target = str(tmp_path / "p.toml")
        Path(target).write_text(content)
    proc = run_discover_process(target)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:")
    assert message.lower() in lines[0].lower()


def test_problems_lists_builtins() -> None:
    result = run_cli("problems", "--json")
    names = {p["name"] for p in json.loads(result.stdout)}
    assert {"pendulum", "tutorial", "oscillator-2d", "schwarzschild", "neo-hookean"} <= names


def test_nan_in_data_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("x,y\n0.1,1.0\n0.2,nan\n0.3,2.0\n")
    problem = tmp_path / "p.toml"
    problem.write_text(
        'name = "nan"\ntype = "regression"\n[system]\nvariables = ["x"]\noutputs = ["y"]\n'
        '[data]\nfile = "data.csv"\n'
    )
    proc = run_discover_process(str(problem))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "nan" in proc.stderr.lower() and proc.stderr.startswith("Error:")


def test_csv_without_named_columns_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("a,b\n0.1,1.0\n0.2,2.0\n")
    problem = tmp_path / "p.toml"
    problem.write_text(
        'name = "cols"\ntype = "regression"\n[system]\nvariables = ["x"]\noutputs = ["y"]\n'
        '[data]\nfile = "data.csv"\n'
    )
    result = CliRunner().invoke(cli, ["discover", "--problem", str(problem), "--no-register"])
    assert result.exit_code == 2
    assert result.output.startswith("Error:") and "x" in result.output and "Traceback" not in result.output
