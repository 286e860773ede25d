"""The core registries (issue 14): clash policy, "did you mean", and plugins filling them at
the first lookup in a fresh process, without core code importing the plugin system."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
import types
from collections.abc import Iterator
from typing import Any

import pytest

from physkan.kan.basis import (
    BASIS_FAMILIES,
    GaussianRBFBasis,
    UnknownBasisError,
    get_basis_family,
    register_basis_family,
)
from physkan.plugins import hookimpl
from physkan.plugins.apply import PluginWarning
from physkan.plugins.manager import get_plugin_manager, reset_plugin_manager
from physkan.registry import BUILTIN, NameClash, Registry, UnknownNameError
from physkan.strategies import BUILTIN_STRATEGIES, STRATEGIES, register_strategy

REAL_ENTRY_POINTS = importlib.metadata.entry_points


# --------------------------------------------------------------------- the Registry itself


def test_builtins_win_then_the_first_plugin() -> None:
    reg: Registry[int] = Registry("thing")
    reg.register("a", 1)
    with pytest.raises(NameClash, match="'a' from plug refused: already registered by builtin"):
        reg.register("a", 2, source="plug", replace=True)  # a plugin never replaces a built-in
    reg.register("b", 3, source="first", aliases=("bee",))
    with pytest.raises(NameClash, match="already registered by first"):
        reg.register("b", 4, source="second")
    with pytest.raises(NameClash, match="'bee'"):
        reg.register("c", 5, source="second", aliases=("bee",))
    assert reg.get("a") == 1 and reg.get("bee") == 3 and reg.source("b") == "first"
    assert reg.names() == ["a", "b"]
    reg.register("a", 6, replace=True)  # physkan itself (or a user's own code) may replace
    assert reg.get("a") == 6
    assert reg.unregister("b") == 3 and "bee" not in reg and reg.find("b") is None


def test_did_you_mean() -> None:
    reg: Registry[int] = Registry("thing")
    reg.register("bspline", 1)
    with pytest.raises(UnknownNameError, match=r"unknown thing 'bsplin'. Did you mean 'bspline'\?"):
        reg.get("bsplin")
    with pytest.raises(UnknownBasisError, match="Did you mean bspline"):
        get_basis_family("bsplin")


# --------------------------------------------------------------------- the plugin host


class _Fam(GaussianRBFBasis):
    name = "test-reg-family"


class ClashingPlugin:
    @hookimpl
    def physkan_basis_families(self) -> list[Any]:
        return [_Fam()]


@pytest.fixture()
def clashing_plugin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    fake = types.SimpleNamespace(name="clasher", value="fake:plugin", load=ClashingPlugin,
                                 dist=types.SimpleNamespace(version="0.0.1"))  # fmt: skip

    def entry_points(**kwargs: Any) -> Any:
        if kwargs.get("group") != "physkan":
            return REAL_ENTRY_POINTS(**kwargs)
        return [*REAL_ENTRY_POINTS(**kwargs), fake]

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    reset_plugin_manager(unregister=True)
    yield
    reset_plugin_manager(unregister=True)
    BASIS_FAMILIES.unregister("test-reg-family")


def test_a_clash_is_refused_recorded_and_warned(clashing_plugin: None) -> None:
    mine = _Fam()
    register_basis_family(mine, source="my-code")  # taken before the plugins load
    with pytest.warns(PluginWarning, match="test-reg-family"):
        get_plugin_manager().apply()
    info = get_plugin_manager().info("clasher")
    assert info is not None and info.status == "loaded"
    assert [r["name"] for r in info.refused] == ["test-reg-family"]
    assert "already registered by my-code" in info.refused[0]["reason"]
    assert get_basis_family("test-reg-family") is mine


def test_reset_takes_plugin_entries_out_and_rearms_the_loader() -> None:
    pytest.importorskip("physkan_fourier")
    reset_plugin_manager(unregister=True)
    assert BASIS_FAMILIES.source("fourier") is None  # nothing loaded yet
    assert get_basis_family("fourier").name == "fourier"  # the first lookup loads plugins
    assert BASIS_FAMILIES.source("fourier") == "fourier"
    reset_plugin_manager(unregister=True)
    assert BASIS_FAMILIES.source("fourier") is None
    assert "fourier" in BASIS_FAMILIES  # and the next lookup loads them again


# --------------------------------------------------------------------- strategies


def test_strategy_registry_lists_each_builtin_type_once() -> None:
    names = STRATEGIES.names()
    assert names[: len(BUILTIN_STRATEGIES)] == list(BUILTIN_STRATEGIES)
    assert len(names) == len(set(names))
    assert list(BUILTIN_STRATEGIES) == ["regression", "lagrangian", "conservation", "metric", "hamiltonian"]
    assert all(STRATEGIES.source(n) == BUILTIN for n in BUILTIN_STRATEGIES)
    with pytest.raises(NameClash):
        register_strategy("regression", lambda spec, data, report: None, source="plug")  # type: ignore[arg-type,return-value]


def test_discover_reexports_the_strategy_registry() -> None:
    from physkan.discover import STRATEGIES as PIPELINE_STRATEGIES
    from physkan.discover import Discovery as PipelineDiscovery
    from physkan.strategies.base import Discovery

    assert PIPELINE_STRATEGIES is STRATEGIES and PipelineDiscovery is Discovery


# --------------------------------------------------------------------- fresh processes

_FRESH = """
import json, sys
{imports}
before = "physkan.plugins" in sys.modules
found = {lookup}
print(json.dumps({{"plugins_before": before, "found": found,
                   "plugins_after": "physkan.plugins.manager" in sys.modules}}))
"""


def _fresh(imports: str, lookup: str) -> dict[str, Any]:
    code = _FRESH.format(imports=imports, lookup=lookup)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, check=False)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("plugin", "imports", "lookup", "expected"),
    [
        ("physkan_fourier", "from physkan.kan.basis import get_basis_family",
         'get_basis_family("fourier").name', "fourier"),
        ("physkan_special", "from physkan.symbolic.library import get_symbolic",
         'get_symbolic("sinc").name', "sinc"),
        ("physkan_kepler", "from physkan.problems.loader import load_problem",
         'load_problem("kepler-orbit").type', "kepler"),
        ("physkan_kepler", "from physkan.problems.types import PROBLEM_TYPES",
         '"kepler" in PROBLEM_TYPES', True),
        ("physkan_kepler", "from physkan.strategies.base import STRATEGIES",
         'STRATEGIES.find("kepler") is not None', True),
    ],
)  # fmt: skip
def test_a_fresh_process_sees_plugins_at_the_first_lookup(
    plugin: str, imports: str, lookup: str, expected: Any
) -> None:
    pytest.importorskip(plugin)
    row = _fresh(imports, lookup)
    assert row["plugins_before"] is False  # importing core never imports the plugin system
    assert row["found"] == expected
    assert row["plugins_after"] is True  # the loader installed by physkan/__init__ ran
