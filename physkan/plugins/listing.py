"""Light listings for the command line: installed plugins and every known problem.

``physkan plugins`` (without ``--load``) and ``physkan problems`` (without ``--check``)
answer from here in well under a second: plugins come from the entry-point *metadata*
(nothing is imported), problems from the built-in TOML files plus what each plugin's
``physkan_problems`` hook declares (the plugin's entry-point module is imported, which a
well-behaved plugin keeps light; nothing is registered). Neither path imports torch, sympy
or pydantic. The full picture (contributions, refusals, failures; validated problems) is
the plugin manager's (:meth:`~physkan.plugins.manager.PhyskanPluginManager.plugins`,
:func:`physkan.problems.loader.list_problems`).

:func:`scan_entry_points` is also the manager's first step, so both agree on names,
versions, duplicates and ``PHYSKAN_DISABLE_PLUGINS``.
"""

from __future__ import annotations

import importlib.metadata
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from physkan.problems.catalog import (
    ProblemSummary,
    builtin_summaries,
    summarize_file,
    summarize_mapping,
)

from .hookspecs import PROJECT_NAME

__all__ = [
    "BUILTIN_NAME",
    "DISABLE_ENV",
    "PluginInfo",
    "describe_error",
    "disabled_plugins",
    "dist_version",
    "installed_plugins",
    "problem_summaries",
    "scan_entry_points",
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
        contributions: kind -> names accepted (``basis_families``, ``symbolic``,
            ``problem_types``, ``problems``, ``commands``); empty once the plugin failed.
        error: why the plugin failed (import, registration or a hook), else ``None``.
        status: ``"loaded"``, ``"failed"`` or ``"disabled"`` (``"installed"`` in the light
            listing, which imports nothing).
        refused: contributions physkan did not take, each ``{"kind", "name", "reason"}``
            (a name clash, a ``numpy_functions`` key shadowing numpy's own name ...).
        warnings: other non-fatal problems.
    """

    name: str
    version: str
    contributions: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None
    status: str = "loaded"
    refused: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of all fields."""
        return {
            "name": self.name,
            "version": self.version,
            "status": self.status,
            "contributions": self.contributions,
            "refused": self.refused,
            "error": self.error,
            "warnings": self.warnings,
        }


def describe_error(exc: BaseException) -> str:
    """``Type: message``, first line, at most 300 characters."""
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:300]


def disabled_plugins() -> set[str]:
    """Names in ``PHYSKAN_DISABLE_PLUGINS`` (``all`` disables every plugin)."""
    raw = os.environ.get(DISABLE_ENV, "")
    return {part.strip() for part in raw.split(",") if part.strip()}


def dist_version(name: str) -> str:
    """Installed version of distribution ``name`` (``"unknown"`` when not installed)."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def scan_entry_points() -> tuple[dict[str, PluginInfo], dict[str, Any]]:
    """Every plugin from the entry-point metadata of group ``physkan``; imports nothing.

    Returns:
        ``(infos, loadable)``: key -> :class:`PluginInfo` (the built-ins first, then by
        name; a duplicate name is a *failed* row keyed ``"name (module)"``, a disabled
        plugin has status ``"disabled"``), and name -> entry point of every plugin that
        should be imported (status ``"loaded"`` so far).
    """
    disabled = disabled_plugins()
    infos = {BUILTIN_NAME: PluginInfo(BUILTIN_NAME, dist_version("physkan"))}
    loadable: dict[str, Any] = {}
    try:
        eps = list(importlib.metadata.entry_points(group=PROJECT_NAME))
    except Exception as exc:  # noqa: BLE001 - broken metadata must not crash the host
        infos[BUILTIN_NAME].warnings.append(f"cannot list entry points: {describe_error(exc)}")
        eps = []
    for ep in sorted(eps, key=lambda e: str(e.name)):
        name = str(ep.name)
        dist = getattr(ep, "dist", None)
        info = PluginInfo(name, str(getattr(dist, "version", None) or "unknown"))
        if name in infos:
            info.status, info.error = "failed", f"duplicate plugin name {name!r}"
            infos[f"{name} ({ep.value})"] = info
            continue
        infos[name] = info
        if "all" in disabled or name in disabled:
            info.status = "disabled"
        else:
            loadable[name] = ep
    return infos, loadable


def installed_plugins() -> list[dict[str, Any]]:
    """Rows of the light ``physkan plugins``: :meth:`PluginInfo.to_json` plus
    ``entry_point`` (``module`` or ``module:attr``; ``None`` for the built-ins); a plugin
    to be imported has status ``"installed"``. Nothing is imported."""
    infos, loadable = scan_entry_points()
    rows = []
    for key, info in infos.items():
        ep = loadable.get(key)
        if ep is not None or key == BUILTIN_NAME:
            info.status = "installed"
        value = getattr(ep, "value", None) if key != BUILTIN_NAME else None
        rows.append({**info.to_json(), "entry_point": value})
    return rows


def _summary(name: str, source: Any) -> ProblemSummary:
    """The listing row of a plugin's problem ``source`` (a path, a dict or a spec)."""
    if isinstance(source, (str, Path)):
        return summarize_file(name, Path(source), str(source))
    if isinstance(source, Mapping):
        return summarize_mapping(name, source, "plugin")
    kind, description = getattr(source, "type", None), getattr(source, "description", "")
    if isinstance(kind, str):
        return ProblemSummary(name, kind, str(description or ""), "plugin")
    return ProblemSummary(name, "error", f"unusable problem source {type(source).__name__}", "plugin")


def problem_summaries() -> list[ProblemSummary]:
    """Rows of the light ``physkan problems``: built-ins (sorted), then plugin problems.

    Never raises: with a broken plugin system only the built-ins are listed (and a
    warning is issued).
    """
    from .manager import get_plugin_manager

    try:
        declared = get_plugin_manager().declared_problems()
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - the host must keep working
        warnings.warn(f"plugin problems not listed: {describe_error(exc)}", RuntimeWarning, stacklevel=2)
        return builtin_summaries()
    rows = builtin_summaries()
    rows += [_summary(name, record.source) for name, (owner, record) in declared.items()
             if owner != BUILTIN_NAME]  # fmt: skip
    return rows
