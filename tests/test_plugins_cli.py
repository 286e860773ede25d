"""Acceptance: the example plugins are listed and their demo problems run end to end."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from physkan.plugins.manager import reset_plugin_manager

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = {
    "fourier": ROOT / "plugins" / "physkan-fourier" / "examples" / "fourier-tutorial.toml",
    "special": ROOT / "plugins" / "physkan-special" / "examples" / "erf.toml",
}


@pytest.fixture(autouse=True)
def _fresh_manager() -> Iterator[None]:
    reset_plugin_manager()
    yield
    reset_plugin_manager()


def _run(args: list[str]) -> dict:
    from physkan.cli import cli

    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output.strip().splitlines()[-1])


def test_plugins_lists_examples() -> None:
    for module in ("physkan_fourier", "physkan_special", "physkan_kepler"):
        pytest.importorskip(module)
    rows = {r["name"]: r for r in _run_list()}
    assert rows["fourier"]["contributions"]["basis_families"] == ["fourier"]
    assert set(rows["special"]["contributions"]["symbolic"]) == {"J0", "erf", "sinc", "softplus"}
    assert rows["kepler"]["contributions"] == {"problem_types": ["kepler"], "problems": ["kepler-orbit"]}
    assert all(rows[n]["status"] == "loaded" and rows[n]["version"] == "0.1.0"
               for n in ("fourier", "special", "kepler"))  # fmt: skip


def _run_list() -> list[dict]:
    from physkan.cli import cli

    result = CliRunner().invoke(cli, ["plugins", "--load", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_discover_fourier_example() -> None:
    pytest.importorskip("physkan_fourier")
    out = _run(["discover", "--no-register", "--json", "--steps", "8", "--problem", str(EXAMPLES["fourier"])])
    assert out["problem"] == "fourier-tutorial" and out["metrics"]["model_test_rmse"] < 0.5


def test_discover_erf_example() -> None:
    pytest.importorskip("physkan_special")
    out = _run(["discover", "--no-register", "--json", "--steps", "8", "--problem", str(EXAMPLES["special"])])
    assert out["problem"] == "erf-demo"
    assert out["metrics"]["test_rmse"] < 0.1


@pytest.mark.recovery
def test_discover_kepler_orbit() -> None:
    pytest.importorskip("physkan_kepler")
    out = _run(["discover", "--no-register", "--json", "--steps", "1", "--problem", "kepler-orbit"])
    assert out["type"] == "kepler" and out["recovered"] is True
    assert len(out["formulas"]) == 4
