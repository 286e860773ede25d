"""Find, load and combine physkan plugins; never let a broken plugin crash the host.

:func:`get_plugin_manager` returns a cached :class:`PhyskanPluginManager` that

* registers physkan's built-ins (:mod:`physkan.plugins.builtin`, plugin name ``physkan``)
  and every entry point of the group ``physkan`` (``importlib.metadata``);
* skips the plugins named in ``PHYSKAN_DISABLE_PLUGINS`` (comma list, or ``all``);
* records a plugin whose import, registration or hook fails as *failed* with its error;
* resolves name clashes deterministically: built-ins win, then plugins in alphabetical
  order of their names; every clash is reported on the losing plugin's ``warnings``;
* :meth:`PhyskanPluginManager.apply` registers the contributions into physkan's registries
  (basis families, symbolic library, problem types/data makers/objectives, problems).
"""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pluggy

from . import builtin, hookspecs
from .hookspecs import PROJECT_NAME, ProblemRecord, ProblemTypeRecord, SymbolicLibraryRecord

__all__ = [
    "BUILTIN_NAME",
    "DISABLE_ENV",
    "PhyskanPluginManager",
    "PluginInfo",
    "get_plugin_manager",
    "reset_plugin_manager",
]

#: plugin name of physkan's own contributions.
BUILTIN_NAME = "physkan"
#: environment variable listing plugins to skip (comma separated, or ``all``).
DISABLE_ENV = "PHYSKAN_DISABLE_PLUGINS"


@dataclass
class PluginInfo:
    """One plugin as ``physkan plugins`` shows it.

    Attributes:
        name: entry-point name (``physkan`` for the built-ins).
        version: version of the distribution that provides it (``"unknown"`` if none).
        contributions: hook kind -> names contributed (``basis_families``, ``symbolic``,
            ``problem_types``, ``problems``, ``commands``).
        error: why the plugin failed (import, registration or a hook), else ``None``.
        status: ``"loaded"``, ``"failed"`` or ``"disabled"``.
        warnings: clashes lost to another plugin and other non-fatal problems.
    """

    name: str
    version: str
    contributions: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None
    status: str = "loaded"
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of all fields."""
        return {
            "name": self.name,
            "version": self.version,
            "status": self.status,
            "contributions": self.contributions,
            "error": self.error,
            "warnings": self.warnings,
        }


def _disabled() -> set[str]:
    raw = os.environ.get(DISABLE_ENV, "")
    return {part.strip() for part in raw.split(",") if part.strip()}


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:300]


class PhyskanPluginManager:
    """Loads plugins once and answers what they contribute (see module docstring)."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self._infos: dict[str, PluginInfo] = {}
        self._cache: dict[str, Any] = {}
        self._applied = False
        self._load()

    # ------------------------------------------------------------------ loading

    def _load(self) -> None:
        disabled = _disabled()
        self._infos[BUILTIN_NAME] = PluginInfo(BUILTIN_NAME, _dist_version("physkan"))
        self.pm.register(builtin, name=BUILTIN_NAME)
        try:
            eps = list(importlib.metadata.entry_points(group=PROJECT_NAME))
        except Exception as exc:  # noqa: BLE001 - broken metadata must not crash the host
            self._infos[BUILTIN_NAME].warnings.append(f"cannot list entry points: {_describe(exc)}")
            eps = []
        for ep in sorted(eps, key=lambda e: str(e.name)):
            name = str(ep.name)
            dist = getattr(ep, "dist", None)
            version = str(getattr(dist, "version", None) or "unknown")
            info = PluginInfo(name, version)
            if name in self._infos:
                info.status, info.error = "failed", f"duplicate plugin name {name!r}"
                self._infos[f"{name} ({ep.value})"] = info
                continue
            self._infos[name] = info
            if "all" in disabled or name in disabled:
                info.status = "disabled"
                continue
            try:
                plugin = ep.load()
                self.pm.register(plugin, name=name)
            except BaseException as exc:  # noqa: BLE001 - includes SystemExit from bad code
                if isinstance(exc, KeyboardInterrupt):
                    raise
                info.status, info.error = "failed", f"cannot load {ep.value}: {_describe(exc)}"

    def _order(self) -> list[str]:
        """Loaded plugin names: built-ins first, then alphabetical."""
        names = [n for n, i in self._infos.items() if i.status == "loaded" and n != BUILTIN_NAME]
        return [BUILTIN_NAME, *sorted(names)]

    def _call(self, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """``(plugin name, result)`` of ``hook`` per loaded plugin; failures mark the plugin."""
        impls = {impl.plugin_name: impl for impl in getattr(self.pm.hook, hook).get_hookimpls()}
        results = []
        for name in self._order():
            info = self._infos[name]
            if name not in impls or info.status != "loaded":
                continue
            try:
                results.append((name, impls[name].function(**kwargs)))
            except Exception as exc:  # noqa: BLE001 - a plugin bug is reported, not raised
                info.status, info.error = "failed", f"hook {hook} raised {_describe(exc)}"
        return results

    def _collect(
        self, hook: str, kind: str, flatten: Callable[[Any], list[tuple[str, Any]]]
    ) -> dict[str, Any]:
        """Merged ``name -> item`` of ``hook``: first (built-in, then alphabetical) wins."""
        if kind in self._cache:
            return self._cache[kind]
        merged: dict[str, Any] = {}
        owner: dict[str, str] = {}
        for plugin, result in self._call(hook):
            info = self._infos[plugin]
            try:
                items = flatten(result)
            except Exception as exc:  # noqa: BLE001
                info.status, info.error = "failed", f"hook {hook} returned bad data: {_describe(exc)}"
                continue
            for name, item in items:
                if name in merged:
                    info.warnings.append(
                        f"{kind} {name!r} clashes with plugin {owner[name]!r}, which wins"
                    )
                    continue
                merged[name], owner[name] = item, plugin
                info.contributions.setdefault(kind, []).append(name)
        self._cache[kind] = merged
        return merged

    # ------------------------------------------------------------------ queries

    def plugins(self) -> list[PluginInfo]:
        """Every plugin seen (built-ins first), after collecting all contributions."""
        self.basis_families()
        self.symbolic_functions()
        self.problem_types()
        self.problems()
        return [self._infos[BUILTIN_NAME]] + [
            i for n, i in sorted(self._infos.items()) if n != BUILTIN_NAME
        ]

    def basis_families(self) -> list[Any]:
        """All contributed :class:`~physkan.kan.basis.BasisFamily` instances."""
        return list(self._collect("physkan_basis_families", "basis_families", _named).values())

    def symbolic_records(self) -> dict[str, tuple[Any, SymbolicLibraryRecord | None]]:
        """``name -> (SymbolicFunction, the record it came in or None)``."""
        return self._collect("physkan_symbolic_libraries", "symbolic", _symbolic_items)

    def symbolic_functions(self) -> list[Any]:
        """All contributed :class:`~physkan.symbolic.library.SymbolicFunction` entries."""
        return [fn for fn, _ in self.symbolic_records().values()]

    def problem_types(self) -> dict[str, ProblemTypeRecord]:
        """``type name -> ProblemTypeRecord`` (built-in types included)."""
        return self._collect("physkan_problem_types", "problem_types", _named)

    def problems(self) -> dict[str, ProblemRecord]:
        """``problem name -> ProblemRecord`` (built-in problems included)."""
        return self._collect("physkan_problems", "problems", _problem_items)

    def register_commands(self, cli: Any) -> None:
        """Call every plugin's ``physkan_register_commands(cli)``; failures are recorded."""
        for plugin, _ in self._call("physkan_register_commands", cli=cli):
            info = self._infos[plugin]
            info.contributions.setdefault("commands", [])

    def info(self, name: str) -> PluginInfo | None:
        """The :class:`PluginInfo` of plugin ``name``, if seen."""
        return self._infos.get(name)

    # ------------------------------------------------------------------ apply

    def apply(self) -> None:
        """Register all plugin contributions into physkan's registries (idempotent)."""
        if self._applied:
            return
        self._applied = True
        from . import apply as _apply

        _apply.apply_all(self)

    def _fail(self, plugin: str, message: str) -> None:
        info = self._infos.get(plugin)
        if info is not None:
            info.warnings.append(message)

    def owner(self, kind: str, name: str) -> str | None:
        """Which plugin contributed ``name`` of ``kind`` (after collection)."""
        for plugin, info in self._infos.items():
            if name in info.contributions.get(kind, []):
                return plugin
        return None


def _named(result: Any) -> list[tuple[str, Any]]:
    return [(str(item.name), item) for item in (result or [])]


def _symbolic_items(result: Any) -> list[tuple[str, Any]]:
    items = []
    for entry in result or []:
        if isinstance(entry, SymbolicLibraryRecord):
            items += [(fn.name, (fn, entry)) for fn in entry.functions]
        else:
            items.append((entry.name, (entry, None)))
    return items


def _problem_items(result: Any) -> list[tuple[str, ProblemRecord]]:
    if isinstance(result, Mapping):
        return [(str(k), ProblemRecord(str(k), v)) for k, v in result.items()]
    out = []
    for entry in result or []:
        if not isinstance(entry, ProblemRecord):
            raise TypeError(f"expected ProblemRecord, got {type(entry).__name__}")
        out.append((entry.name, entry))
    return out


def _dist_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


_MANAGER: PhyskanPluginManager | None = None


def get_plugin_manager() -> PhyskanPluginManager:
    """The process-wide plugin manager (created, and plugins loaded, on first use)."""
    global _MANAGER
    if _MANAGER is None:
        _MANAGER = PhyskanPluginManager()
    return _MANAGER


def reset_plugin_manager() -> None:
    """Forget the cached manager (tests; after changing ``PHYSKAN_DISABLE_PLUGINS``)."""
    global _MANAGER
    _MANAGER = None
