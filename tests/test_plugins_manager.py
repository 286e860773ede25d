"""Plugin manager: loading, failure isolation, clashes, disabling, apply()."""

from __future__ import annotations

import importlib.metadata
import json
import types
from collections.abc import Iterator
from typing import Any

import click
import pytest
from click.testing import CliRunner

from physkan.kan.basis import BasisFamily, GaussianRBFBasis
from physkan.plugins import hookimpl
from physkan.plugins.cli import attach_plugin_commands
from physkan.plugins.manager import get_plugin_manager, reset_plugin_manager

REAL_ENTRY_POINTS = importlib.metadata.entry_points


class FakeEntryPoint:
    """Duck-typed entry point whose ``load()`` returns ``target`` or raises it."""

    def __init__(self, name: str, target: Any) -> None:
        self.name, self.value, self._target = name, f"fake_{name}:plugin", target
        self.dist = types.SimpleNamespace(version="9.9")

    def load(self) -> Any:
        if isinstance(self._target, BaseException):
            raise self._target
        return self._target


class _Clashing(GaussianRBFBasis):
    name = "fourier"


class ClashPlugin:
    """Contributes names that built-ins and earlier plugins already own."""

    @hookimpl
    def physkan_basis_families(self) -> list[BasisFamily]:
        return [_Clashing()]

    @hookimpl
    def physkan_problems(self) -> dict[str, str]:
        return {"tutorial": "/nonexistent.toml"}


class HookRaises:
    @hookimpl
    def physkan_basis_families(self) -> list[BasisFamily]:
        raise RuntimeError("boom in hook")


class CommandPlugin:
    @hookimpl
    def physkan_register_commands(self, cli: click.Group) -> None:
        @cli.command("hello-plugin")
        def hello() -> None:
            click.echo("hello from a plugin")


class CommandRaises:
    @hookimpl
    def physkan_register_commands(self, cli: click.Group) -> None:
        raise ValueError("cannot add commands")


def _install_fakes(monkeypatch: pytest.MonkeyPatch, fakes: list[FakeEntryPoint]) -> None:
    def entry_points(**kwargs: Any) -> list[Any]:
        return [*REAL_ENTRY_POINTS(**kwargs), *fakes] if kwargs.get("group") == "physkan" else []

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    reset_plugin_manager()


@pytest.fixture(autouse=True)
def _fresh_manager() -> Iterator[None]:
    reset_plugin_manager()
    yield
    reset_plugin_manager()


def test_builtins_are_a_plugin() -> None:
    manager = get_plugin_manager()
    infos = {i.name: i for i in manager.plugins()}
    assert infos["physkan"].status == "loaded"
    assert {"bspline", "rbf"} <= set(infos["physkan"].contributions["basis_families"])
    assert "regression" in manager.problem_types()
    assert "tutorial" in manager.problems()


def test_broken_plugins_are_reported_and_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    _install_fakes(monkeypatch, [
        FakeEntryPoint("broken-import", ImportError("no module named nowhere")),
        FakeEntryPoint("broken-hook", HookRaises()),
    ])  # fmt: skip
    infos = {i.name: i for i in get_plugin_manager().plugins()}
    assert infos["broken-import"].status == "failed"
    assert "no module named nowhere" in infos["broken-import"].error
    assert infos["broken-hook"].status == "failed"
    assert "boom in hook" in infos["broken-hook"].error
    assert infos["physkan"].status == "loaded"
    runner = CliRunner()
    from physkan.cli import cli

    out = runner.invoke(cli, ["plugins", "--load", "--json"])
    assert out.exit_code == 0, out.output
    rows = {r["name"]: r for r in json.loads(out.output)}
    assert rows["broken-hook"]["status"] == "failed" and rows["broken-hook"]["error"]
    assert runner.invoke(cli, ["plugins", "--load"]).exit_code == 0
    problems = runner.invoke(cli, ["problems", "--json"])
    assert problems.exit_code == 0 and "tutorial" in problems.output


def test_clashes_builtins_win_then_alphabetical(monkeypatch: pytest.MonkeyPatch) -> None:
    _install_fakes(monkeypatch, [FakeEntryPoint("zzz-clash", ClashPlugin())])
    manager = get_plugin_manager()
    manager.plugins()
    clash = manager.info("zzz-clash")
    assert clash is not None and clash.status == "loaded"
    refused = {(r["kind"], r["name"]): r["reason"] for r in clash.refused}
    assert "built-in" in refused[("problems", "tutorial")]
    assert "problems" not in clash.contributions
    if manager.info("fourier") is not None:  # the example plugin is installed: it wins
        assert manager.owner("basis_families", "fourier") == "fourier"
        assert "'fourier'" in refused[("basis_families", "fourier")]


def test_disable_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    _install_fakes(monkeypatch, [FakeEntryPoint("broken-import", ImportError("x"))])
    monkeypatch.setenv("PHYSKAN_DISABLE_PLUGINS", "broken-import")
    info = get_plugin_manager().info("broken-import")
    assert info is not None and info.status == "disabled" and info.error is None
    reset_plugin_manager()
    monkeypatch.setenv("PHYSKAN_DISABLE_PLUGINS", "all")
    statuses = {i.name: i.status for i in get_plugin_manager().plugins()}
    assert statuses.pop("physkan") == "loaded"
    assert set(statuses.values()) <= {"disabled"}


def test_plugin_commands_and_failing_command_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    _install_fakes(monkeypatch, [
        FakeEntryPoint("cmd", CommandPlugin()),
        FakeEntryPoint("cmd-broken", CommandRaises()),
    ])  # fmt: skip

    @click.group()
    def host() -> None:
        """A stand-in for the physkan CLI."""

    attach_plugin_commands(host)
    runner = CliRunner()
    assert "hello from a plugin" in runner.invoke(host, ["hello-plugin"]).output
    out = runner.invoke(host, ["plugins", "--load", "--json"])
    assert out.exit_code == 0
    rows = {r["name"]: r for r in json.loads(out.output)}
    assert rows["cmd"]["status"] == "loaded"
    assert rows["cmd-broken"]["status"] == "failed"
    assert "cannot add commands" in rows["cmd-broken"]["error"]


def test_apply_is_idempotent() -> None:
    manager = get_plugin_manager()
    manager.apply()
    manager.apply()
    from physkan.symbolic.library import available_symbolic

    assert "sin" in available_symbolic()
