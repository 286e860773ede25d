"""``[model] kind = "s2kan"`` in problem files: the discovery pipeline trains S2KANs with the
problem's own loss (regression, Euler–Lagrange, conservation) and reports the description
length; the result round-trips through the model file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from physkan.cli import cli
from physkan.discover import discover
from physkan.io import load_model
from physkan.problems import load_problem
from physkan.s2kan import S2KAN
from physkan.symbolic import equivalent

DATA = Path(__file__).parent / "data"
MDL_KEYS = {"mdl_data_bits", "mdl_model_bits", "mdl_total_bits"}


@pytest.mark.recovery
def test_lagrangian_s2kan_recovers_pendulum() -> None:
    spec = load_problem("pendulum").updated({"model.kind": "s2kan"})
    res = discover(spec)
    assert isinstance(res.model, S2KAN)
    assert res.recovered is True, res.recovery
    assert str(res.formulas[0]) == "q_dot**2/2 + cos(q)"
    assert res.numeric_edges == []
    assert res.metrics.keys() >= MDL_KEYS
    assert res.metrics["mdl_total_bits"] == res.metrics["mdl_data_bits"] + res.metrics["mdl_model_bits"]
    assert res.metrics["rollout_traj_rmse"] < 1e-6


@pytest.mark.recovery
def test_regression_s2kan_recovers_tutorial() -> None:
    spec = load_problem("tutorial").updated({"model.kind": "s2kan"})
    res = discover(spec)
    assert res.recovered is True, res.recovery
    assert equivalent(res.formulas[0], "exp(sin(pi*x) + y**2)", ["x", "y"], {"x": (-1, 1), "y": (-1, 1)})
    assert res.metrics.keys() >= MDL_KEYS
    assert "S2KAN gate open" in res.symbolic_report


@pytest.mark.recovery
def test_conservation_s2kan_problem_file_cli(tmp_path: Path) -> None:
    """A user's TOML with ``kind = "s2kan"`` runs unchanged through ``physkan discover --json``."""
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["discover", "--problem", str(DATA / "oscillator_1d_s2kan.toml"), "--json",
                                      "--no-register", "--out", str(out)], catch_exceptions=False)  # fmt: skip
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["recovered"] is True, payload["recovery"]
    assert equivalent(payload["formula"], "x**2 + p**2", ["x", "p"], {"x": (-1, 1), "p": (-1, 1)})
    assert payload["metrics"].keys() >= MDL_KEYS
    model = load_model(out / "model.h5")
    assert isinstance(model, S2KAN)
    z = torch.tensor([[0.3, -0.4], [0.1, 0.9]], dtype=torch.float64)
    h = model.eval()(z.to(next(model.parameters()).dtype))[:, 0].double()
    # the stored network is the conserved quantity up to scale and offset
    ratio = (h[0] - h[1]) / ((z[0] ** 2).sum() - (z[1] ** 2).sum())
    assert torch.allclose(h - ratio * (z**2).sum(1), (h - ratio * (z**2).sum(1))[0].expand(2), atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("blas_env", [{"MKL_ENABLE_INSTRUCTIONS": "AVX2"}, {"MKL_CBWR": "COMPATIBLE"}])
def test_conservation_s2kan_recovers_on_other_blas_paths(blas_env: dict[str, str]) -> None:
    """The same problem file where MKL takes another code path (an AVX2-only CPU, say): the
    training may land on ``cos(0.026·x)`` for ``x²``; the answer must still be the energy."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", **blas_env}
    run = subprocess.run([sys.executable, "-m", "physkan", "discover", "--problem", str(DATA / "oscillator_1d_s2kan.toml"),
                          "--json", "--no-register"], capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr
    payload = json.loads(run.stdout)
    assert payload["recovered"] is True, payload["recovery"]
    assert equivalent(payload["formula"], "x**2 + p**2", ["x", "p"], {"x": (-1, 1), "p": (-1, 1)})


def test_train_command_runs_the_s2kan_schedule(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["train", "--problem", str(DATA / "oscillator_1d_s2kan.toml"), "--max-steps",
                                      "30", "--out", str(tmp_path)], catch_exceptions=False)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "description length" in result.output and "edge (0," in result.output
    assert isinstance(load_model(tmp_path / "model.h5"), S2KAN)


def test_metric_problem_refuses_s2kan_with_one_line_error(tmp_path: Path) -> None:
    builtin = Path(__file__).resolve().parents[1] / "physkan" / "problems" / "builtin" / "schwarzschild.toml"
    path = tmp_path / "bh.toml"
    path.write_text(builtin.read_text().replace("[model]", '[model]\nkind = "s2kan"', 1))
    result = CliRunner().invoke(cli, ["discover", "--problem", str(path), "--no-register"])
    assert result.exit_code == 2
    assert "model.kind" in result.output and "Traceback" not in result.output
