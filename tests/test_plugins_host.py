"""The plugin host under hostile or broken plugins (issue 13, part E).

Plugins are registered as fake entry points; every test leaves physkan's registries and
the CLI as it found them (``reset_plugin_manager(unregister=True)``).
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import numpy as np
import pytest
import sympy
import torch
from click.testing import CliRunner

from physkan.kan.basis import GaussianRBFBasis, UnknownBasisError, get_basis_family
from physkan.plugins import ProblemRecord, ProblemTypeRecord, SymbolicLibraryRecord, hookimpl
from physkan.plugins.manager import get_plugin_manager, reset_plugin_manager
from physkan.problems import Dataset, SystemBase
from physkan.symbolic.library import SymbolicFunction, UnknownSymbolicError, get_symbolic

REAL_ENTRY_POINTS = importlib.metadata.entry_points


class FakeEntryPoint:
    """Duck-typed entry point whose ``load()`` returns ``target``."""

    def __init__(self, name: str, target: Any) -> None:
        self.name, self.value, self._target = name, f"fake_{name}:plugin", target
        self.dist = types.SimpleNamespace(version="1.2.3")

    def load(self) -> Any:
        return self._target


def _install(monkeypatch: pytest.MonkeyPatch, **plugins: Any) -> None:
    fakes = [FakeEntryPoint(name.replace("_", "-"), plugin) for name, plugin in plugins.items()]

    def entry_points(**kwargs: Any) -> Any:
        if kwargs.get("group") != "physkan":  # other libraries (fsspec ...) see the real ones
            return REAL_ENTRY_POINTS(**kwargs)
        return [*REAL_ENTRY_POINTS(**kwargs), *fakes]

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    reset_plugin_manager(unregister=True)


@pytest.fixture(autouse=True)
def _clean_registries() -> Iterator[None]:
    reset_plugin_manager(unregister=True)
    yield
    reset_plugin_manager(unregister=True)


def _cli() -> click.Group:
    from physkan.cli import cli

    return cli


def _plugins_json() -> dict[str, dict]:
    result = CliRunner().invoke(_cli(), ["plugins", "--load", "--json"])
    assert result.exit_code == 0, result.output
    return {row["name"]: row for row in json.loads(result.output)}


# --------------------------------------------------------------------- plugin torch functions


def _sinc_torch(x: torch.Tensor) -> torch.Tensor:
    safe = torch.where(x == 0, torch.ones_like(x), x)
    return torch.where(x == 0, torch.ones_like(x), torch.sin(safe) / safe)


class SincPlugin:
    """``sinc`` with a torch implementation (sympy prints it as a Python if/else)."""

    @hookimpl
    def physkan_symbolic_libraries(self) -> list[SymbolicLibraryRecord]:
        fn = SymbolicFunction("host-sinc", _sinc_torch, sympy.sinc, 3, symmetry="even")
        return [SymbolicLibraryRecord(functions=[fn], torch_functions={"sinc": _sinc_torch})]


def test_torch_evaluator_uses_plugin_torch_functions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHYSKAN_DISABLE_PLUGINS", "special")  # our own sinc, not the example's
    _install(monkeypatch, host_sinc=SincPlugin())
    from physkan.symbolic.simplify import lambdify_torch

    get_plugin_manager().apply()
    x = sympy.Symbol("x")
    X = torch.tensor([[0.0], [0.5], [2.0]], dtype=torch.float64)
    out = lambdify_torch(3 * sympy.sinc(2 * x) + x, ["x"])(X)
    expected = [3.0, 3 * math.sin(1.0) + 0.5, 3 * math.sin(4.0) / 4 + 2.0]
    assert out.tolist() == pytest.approx(expected)


def test_discovery_with_plugin_sinc_recovers_it() -> None:
    pytest.importorskip("physkan_special")
    import physkan
    from physkan.problems.loader import problem_from_dict

    spec = problem_from_dict({
        "name": "sinc-demo", "type": "regression",
        "system": {"variables": ["x", "y"], "target": "sinc(2*x) + y"},
        "data": {"n_train": 200, "n_test": 100, "ranges": {"x": [-3, 3], "y": [-1, 1]}},
        "model": {"width": [2, 1]}, "train": {"steps": 20},
        "discover": {"library": ["x", "x^2", "sinc"]},
    }, source="test")  # fmt: skip
    result = physkan.discover(spec)
    assert result.recovered is True, result.formula_text
    assert "sinc" in result.formula_text[0]
    assert result.metrics["test_rmse"] < 1e-6


# --------------------------------------------------------------------- numpy name shadowing


def _np_sinc_unnormalised(x: np.ndarray) -> np.ndarray:
    return np.sinc(np.asarray(x) / np.pi)


class ShadowingPlugin:
    @hookimpl
    def physkan_symbolic_libraries(self) -> list[SymbolicLibraryRecord]:
        fn = SymbolicFunction("shadow-fn", torch.sin, sympy.sin, 2)
        return [SymbolicLibraryRecord(functions=[fn], numpy_functions={"sinc": _np_sinc_unnormalised,
                                                                       "sin": np.cos})]  # fmt: skip


def test_numpy_functions_shadowing_numpy_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    _install(monkeypatch, shadow=ShadowingPlugin())
    from physkan.symbolic.parse import FORMULA_FUNCTIONS
    from physkan.symbolic.simplify import lambdify_numpy

    rows = _plugins_json()
    refused = {(r["kind"], r["name"]): r["reason"] for r in rows["shadow"]["refused"]}
    assert "shadows numpy.sinc" in refused[("numpy_functions", "sinc")]
    assert ("numpy_functions", "sin") in refused
    assert rows["shadow"]["contributions"] == {"symbolic": ["shadow-fn"]}
    for key in ("sinc", "sin"):  # the formula table kept no numpy entry of the plugin
        entry = FORMULA_FUNCTIONS.find(key)
        assert entry is None or entry.numpy not in (_np_sinc_unnormalised, np.cos)
    x = sympy.Symbol("x")
    values = lambdify_numpy(sympy.sinc(2 * x) + sympy.sin(x), ["x"])(np.array([[0.5], [1.0]]))
    assert values.tolist() == pytest.approx([math.sin(1.0) / 1.0 + math.sin(0.5),
                                             math.sin(2.0) / 2.0 + math.sin(1.0)])  # fmt: skip
    assert "refused numpy_functions 'sinc'" in CliRunner().invoke(_cli(), ["plugins", "--load"]).output


# --------------------------------------------------------------------- BaseException in hooks


class ExitingPlugin:
    @hookimpl
    def physkan_problems(self) -> dict[str, str]:
        raise SystemExit(3)


class ExitingCommands:
    @hookimpl
    def physkan_register_commands(self, cli: click.Group) -> None:
        raise SystemExit(3)


def test_systemexit_in_a_hook_fails_only_that_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    _install(monkeypatch, exits=ExitingPlugin(), exits_cmd=ExitingCommands())
    manager = get_plugin_manager()
    host = click.Group("host")
    manager.register_commands(host)
    result = CliRunner().invoke(_cli(), ["problems", "--json"])
    assert result.exit_code == 0, result.output
    assert "tutorial" in {p["name"] for p in json.loads(result.output)}
    rows = _plugins_json()
    assert rows["exits"]["status"] == "failed" and "SystemExit" in rows["exits"]["error"]
    assert rows["exits-cmd"]["status"] == "failed" and "SystemExit" in rows["exits-cmd"]["error"]


class InterruptedPlugin:
    @hookimpl
    def physkan_basis_families(self) -> list[Any]:
        raise KeyboardInterrupt


def test_keyboard_interrupt_in_a_hook_is_not_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    _install(monkeypatch, interrupted=InterruptedPlugin())
    with pytest.raises(KeyboardInterrupt):
        get_plugin_manager().plugins()


# --------------------------------------------------------------------- commands


class CommandsPlugin:
    @hookimpl
    def physkan_register_commands(self, cli: click.Group) -> None:
        @cli.command("problems")
        def hijack() -> None:
            click.echo("hijacked")

        @cli.command("host-hello")
        def hello() -> None:
            click.echo("hello from a plugin")


def test_builtin_commands_win_and_commands_are_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    _install(monkeypatch, commands=CommandsPlugin())
    cli = _cli()
    get_plugin_manager().register_commands(cli)
    runner = CliRunner()
    problems = runner.invoke(cli, ["problems", "--json"])
    assert problems.exit_code == 0 and "hijacked" not in problems.output
    assert "tutorial" in problems.output
    assert runner.invoke(cli, ["host-hello"]).output.strip() == "hello from a plugin"
    row = _plugins_json()["commands"]
    assert row["contributions"] == {"commands": ["host-hello"]}
    assert row["refused"] == [{"kind": "commands", "name": "problems",
                               "reason": "command taken by a physkan built-in, which wins"}]  # fmt: skip
    text = runner.invoke(cli, ["plugins", "--load"]).output
    assert "commands: host-hello" in text and "refused commands 'problems'" in text


# --------------------------------------------------------------------- transactional plugins


class _HalfwayBasis(GaussianRBFBasis):
    name = "halfway-basis"


class HalfwayPlugin:
    """Registers a basis family and a function, then fails on its problem file."""

    @hookimpl
    def physkan_basis_families(self) -> list[Any]:
        return [_HalfwayBasis()]

    @hookimpl
    def physkan_symbolic_libraries(self) -> list[SymbolicFunction]:
        return [SymbolicFunction("halfway-fn", torch.sin, sympy.sin, 2)]

    @hookimpl
    def physkan_problems(self) -> list[ProblemRecord]:
        return [ProblemRecord("halfway-problem", "/nonexistent/halfway.toml")]


class HookFailsLater:
    """Its basis hook succeeds; its problems hook raises."""

    @hookimpl
    def physkan_basis_families(self) -> list[Any]:
        return [type("LaterBasis", (GaussianRBFBasis,), {"name": "later-basis"})()]

    @hookimpl
    def physkan_problems(self) -> list[ProblemRecord]:
        raise RuntimeError("problems hook broke")


def test_failed_plugin_keeps_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    _install(monkeypatch, halfway=HalfwayPlugin(), later=HookFailsLater())
    rows = _plugins_json()
    for name, why in (("halfway", "no problem file"), ("later", "problems hook broke")):
        assert rows[name]["status"] == "failed" and why in rows[name]["error"]
        assert rows[name]["contributions"] == {}
    for basis in ("halfway-basis", "later-basis"):
        with pytest.raises(UnknownBasisError):
            get_basis_family(basis)
    with pytest.raises(UnknownSymbolicError):
        get_symbolic("halfway-fn")
    manager = get_plugin_manager()
    assert "halfway-basis" not in [f.name for f in manager.basis_families()]
    assert "halfway-problem" not in manager.problems()


# --------------------------------------------------------------------- physkan train


class PairSystem(SystemBase):
    """``type = "host-pair"``: learn ``v = 2 u`` from pairs (no ground-truth field)."""

    variables: list[str] = ["u"]

    def input_names(self) -> list[str]:
        return list(self.variables)

    def required_ranges(self) -> list[str]:
        return []

    def network_shape(self) -> tuple[int | None, int | None]:
        return (1, 1)


def _pair_data(spec: Any) -> Dataset:
    x = torch.linspace(-1, 1, 64, dtype=torch.float64)[:, None]
    return Dataset(["u"], ["v"], x[::2], 2 * x[::2], x[1::2], 2 * x[1::2], meta={"type": spec.type})


class PairObjective:
    """Reads the batch keys ``u``/``v`` that the type's ``dataset_keys`` name."""

    def loss(self, model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.mean((model(batch["u"]) - batch["v"]) ** 2)

    def grid_samples(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return batch["u"]


class PairTypePlugin:
    @hookimpl
    def physkan_problem_types(self) -> list[ProblemTypeRecord]:
        return [ProblemTypeRecord("host-pair", PairSystem, data_maker=_pair_data,
                                  objective=PairObjective, dataset_keys=("u", "v"))]  # fmt: skip


def test_train_plugin_type_uses_dataset_keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _install(monkeypatch, pair=PairTypePlugin())
    problem = tmp_path / "pair.toml"
    problem.write_text('name = "pair"\ntype = "host-pair"\n[system]\nvariables = ["u"]\n'
                       '[data]\nn_train = 32\nn_test = 32\n[model]\nwidth = [1, 1]\n')  # fmt: skip
    result = CliRunner().invoke(_cli(), ["train", "-p", str(problem), "--max-steps", "3",
                                         "--out", str(tmp_path / "out")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "final loss" in result.output and (tmp_path / "out" / "model.h5").is_file()


def test_train_kepler_orbit() -> None:
    pytest.importorskip("physkan_kepler")
    result = CliRunner().invoke(_cli(), ["train", "-p", "kepler-orbit", "--max-steps", "2"])
    assert result.exit_code == 0, result.output
    loss = float(result.output.split("final loss ")[1].split()[0])
    assert math.isfinite(loss)


class NoObjectivePlugin:
    @hookimpl
    def physkan_problem_types(self) -> list[ProblemTypeRecord]:
        return [ProblemTypeRecord("host-untrainable", PairSystem, data_maker=_pair_data)]


def test_train_type_without_objective_is_a_user_error(monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:  # fmt: skip
    _install(monkeypatch, untrainable=NoObjectivePlugin())
    problem = tmp_path / "u.toml"
    problem.write_text('name = "u"\ntype = "host-untrainable"\n[system]\nvariables = ["u"]\n')
    result = CliRunner().invoke(_cli(), ["train", "-p", str(problem)])
    assert result.exit_code == 2
    assert result.output.startswith("Error: type: problem type 'host-untrainable' has no training")
