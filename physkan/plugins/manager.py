"""Find, load and combine physkan plugins; never let a broken plugin crash the host.

:func:`get_plugin_manager` returns a cached :class:`PhyskanPluginManager` that

* registers physkan's built-ins (:mod:`physkan.plugins.builtin`, plugin name ``physkan``)
  and every entry point of the group ``physkan`` (``importlib.metadata``);
* skips the plugins named in ``PHYSKAN_DISABLE_PLUGINS`` (comma list, or ``all``);
* records a plugin whose import, hook or registration fails (any exception, ``SystemExit``
  included; only ``KeyboardInterrupt`` propagates) as *failed* with its error;
* is transactional per plugin: a plugin's contributions are collected from all of its
  hooks first and registered all or none, so a failed plugin leaves nothing behind;
* resolves name clashes deterministically: built-ins win (commands included), then
  plugins in alphabetical order of their names; a contribution that loses a clash, or
  that physkan refuses, is listed in the plugin's ``refused`` with the reason;
* :meth:`PhyskanPluginManager.apply` registers the accepted contributions into physkan's
  registries through their public ``register_*`` functions (basis families, symbolic
  library, formula functions, problem types/data makers/objectives/strategies, problems),
  see :mod:`physkan.plugins.apply`.

:func:`load_plugins` is the registry loader that the composition root (``physkan/__init__``)
installs with :func:`physkan.registry.add_loader`: it runs once, at the first lookup in any
registry, so a fresh process sees plugin names everywhere without importing this package.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import pluggy

from physkan import registry

from . import builtin, hookspecs
from .hookspecs import PROJECT_NAME, ProblemRecord, ProblemTypeRecord, SymbolicLibraryRecord
from .listing import BUILTIN_NAME, DISABLE_ENV, PluginInfo, scan_entry_points
from .listing import describe_error as _describe

if TYPE_CHECKING:  # pragma: no cover
    import click

    from .apply import Transaction

__all__ = [
    "BUILTIN_NAME",
    "DISABLE_ENV",
    "PhyskanPluginManager",
    "PluginInfo",
    "get_plugin_manager",
    "load_plugins",
    "reset_plugin_manager",
]


class PhyskanPluginManager:
    """Loads plugins once and answers what they contribute (see module docstring)."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self._infos: dict[str, PluginInfo] = {}
        #: kind -> accepted name -> item, and kind -> name -> owning plugin.
        self._accepted: dict[str, dict[str, Any]] | None = None
        self._owners: dict[str, dict[str, str]] = {}
        #: plugin -> undo log of its registrations (see :mod:`physkan.plugins.apply`).
        self._undo: dict[str, Transaction] = {}
        self._commands: list[tuple[Any, str, str]] = []  # (click group, command, plugin)
        self._command_groups: list[Any] = []  # groups register_commands has filled
        self._applied = False
        self._load()

    # ------------------------------------------------------------------ loading

    def _load(self) -> None:
        infos, loadable = scan_entry_points()
        self._infos.update(infos)
        self.pm.register(builtin, name=BUILTIN_NAME)
        for name, ep in loadable.items():
            try:
                plugin = ep.load()
                self.pm.register(plugin, name=name)
            except BaseException as exc:  # noqa: BLE001 - includes SystemExit from bad code
                if isinstance(exc, KeyboardInterrupt):
                    raise
                self._infos[name].status = "failed"
                self._infos[name].error = f"cannot load {ep.value}: {_describe(exc)}"

    def _order(self) -> list[str]:
        """Loaded plugin names: built-ins first, then alphabetical."""
        names = [n for n, i in self._infos.items() if i.status == "loaded" and n != BUILTIN_NAME]
        return [BUILTIN_NAME, *sorted(names)]

    def _impl(self, hook: str, plugin: str) -> Callable[..., Any] | None:
        for impl in getattr(self.pm.hook, hook).get_hookimpls():
            if impl.plugin_name == plugin:
                return impl.function
        return None

    def _gather(self) -> dict[str, dict[str, Any]]:
        """Call every contribution hook of every plugin once; resolve clashes (cached).

        A plugin whose hook raises or returns bad data fails as a whole: none of its
        contributions is accepted.
        """
        if self._accepted is not None:
            return self._accepted
        accepted: dict[str, dict[str, Any]] = {kind: {} for _, kind, _ in _HOOKS}
        self._accepted = accepted
        for plugin in self._order():
            pending: list[tuple[str, str, Any]] = []
            step = "hooks"
            try:
                for hook, kind, flatten in _HOOKS:
                    fn = self._impl(hook, plugin)
                    if fn is None:
                        continue
                    step = f"hook {hook}"
                    result = fn()
                    step = f"hook {hook} returned bad data"
                    pending += [(kind, name, item) for name, item in flatten(result)]
            except BaseException as exc:  # noqa: BLE001 - a plugin bug is reported, not raised
                if isinstance(exc, KeyboardInterrupt):
                    raise
                self._fail_plugin(plugin, f"{step}: {_describe(exc)}")
                continue
            for kind, name, item in pending:
                owner = self._owners.setdefault(kind, {}).get(name)
                if owner is not None:
                    self.refuse(plugin, kind, name, _taken(owner))
                    continue
                accepted[kind][name] = item
                self._owners[kind][name] = plugin
                self._infos[plugin].contributions.setdefault(kind, []).append(name)
        return accepted

    def _fail_plugin(self, plugin: str, error: str) -> None:
        """Mark ``plugin`` failed and take back everything it contributed or registered."""
        info = self._infos[plugin]
        info.status, info.error = "failed", error
        info.contributions = {}
        txn = self._undo.pop(plugin, None)
        if txn is not None:
            txn.rollback()
        for kind, owners in self._owners.items():
            for name in [n for n, p in owners.items() if p == plugin]:
                del owners[name]
                if self._accepted is not None:
                    self._accepted.get(kind, {}).pop(name, None)
        for group, command, owner in list(self._commands):
            if owner == plugin:
                group.commands.pop(command, None)
                self._commands.remove((group, command, owner))

    def refuse(self, plugin: str, kind: str, name: str, reason: str) -> None:
        """Record that ``name`` of ``kind`` from ``plugin`` was not taken, and why."""
        info = self._infos.get(plugin)
        if info is not None:
            info.refused.append({"kind": kind, "name": name, "reason": reason})

    # ------------------------------------------------------------------ queries

    def plugins(self) -> list[PluginInfo]:
        """Every plugin seen (built-ins first), after registering all contributions."""
        self.apply()
        return [self._infos[BUILTIN_NAME]] + [
            i for n, i in sorted(self._infos.items()) if n != BUILTIN_NAME
        ]

    def _kind(self, kind: str) -> dict[str, Any]:
        self.apply()
        return dict(self._gather()[kind])

    def basis_families(self) -> list[Any]:
        """All accepted :class:`~physkan.kan.basis.BasisFamily` instances."""
        return list(self._kind("basis_families").values())

    def symbolic_records(self) -> dict[str, tuple[Any, SymbolicLibraryRecord | None]]:
        """``name -> (SymbolicFunction, the record it came in or None)``."""
        return self._kind("symbolic")

    def symbolic_functions(self) -> list[Any]:
        """All accepted :class:`~physkan.symbolic.library.SymbolicFunction` entries."""
        return [fn for fn, _ in self.symbolic_records().values()]

    def problem_types(self) -> dict[str, ProblemTypeRecord]:
        """``type name -> ProblemTypeRecord`` (built-in types included)."""
        return self._kind("problem_types")

    def problems(self) -> dict[str, ProblemRecord]:
        """``problem name -> ProblemRecord`` (built-in problems included)."""
        return self._kind("problems")

    def register_commands(self, cli: click.Group) -> None:
        """Add every plugin's commands to ``cli``; built-in commands always win.

        Each plugin's ``physkan_register_commands`` runs on a copy of ``cli``; the commands
        it added join ``cli`` only if the hook succeeded (else the plugin fails as a whole),
        and a command whose name ``cli`` already has is refused, never replaced. Once per
        group: a second call with the same ``cli`` does nothing.
        """
        import click

        if any(group is cli for group in self._command_groups):
            return
        self._command_groups.append(cli)
        builtins = set(cli.commands)
        for plugin in self._order():
            fn = self._impl("physkan_register_commands", plugin)
            if fn is None or self._infos[plugin].status != "loaded":
                continue
            staging = click.Group(name=cli.name, commands=dict(cli.commands))
            try:
                fn(cli=staging)
            except BaseException as exc:  # noqa: BLE001
                if isinstance(exc, KeyboardInterrupt):
                    raise
                self._fail_plugin(plugin, f"hook physkan_register_commands: {_describe(exc)}")
                continue
            info = self._infos[plugin]
            for name, command in staging.commands.items():
                if cli.commands.get(name) is command:
                    continue
                if name in cli.commands:
                    owner = BUILTIN_NAME if name in builtins else self._owners["commands"][name]
                    self.refuse(plugin, "commands", name, _taken(owner, "command"))
                    continue
                cli.add_command(command, name)
                self._commands.append((cli, name, plugin))
                self._owners.setdefault("commands", {})[name] = plugin
                info.contributions.setdefault("commands", []).append(name)

    def declared_problems(self) -> dict[str, tuple[str, ProblemRecord]]:
        """``name -> (plugin, ProblemRecord)`` of the problems the plugins declare.

        Light: only the ``physkan_problems`` hooks run (no other hook, nothing registered,
        so no torch), built-ins first, then the first plugin wins a name; a hook that
        raises contributes nothing. After :meth:`_gather` (``plugins()``, ``apply()``),
        the accepted problems, which also drop the problems of a plugin failed elsewhere.
        """
        if self._accepted is not None:
            owners = self._owners.get("problems", {})
            return {n: (owners[n], r) for n, r in self._accepted["problems"].items()}
        declared: dict[str, tuple[str, ProblemRecord]] = {}
        for plugin in self._order():
            fn = self._impl("physkan_problems", plugin)
            if fn is None:
                continue
            try:
                items = _problem_items(fn())
            except BaseException as exc:  # noqa: BLE001 - listed as failed by `plugins --load`
                if isinstance(exc, KeyboardInterrupt):
                    raise
                continue
            for name, record in items:
                declared.setdefault(name, (plugin, record))
        return declared

    def info(self, name: str) -> PluginInfo | None:
        """The :class:`PluginInfo` of plugin ``name``, if seen."""
        return self._infos.get(name)

    # ------------------------------------------------------------------ apply

    def apply(self) -> None:
        """Register all accepted contributions into physkan's registries (idempotent).

        Plugin by plugin, all or none: a registration that raises undoes that plugin's
        earlier registrations and marks it failed.
        """
        if self._applied:
            return
        self._applied = True
        from . import apply as _apply

        self._gather()
        for plugin in self._order():
            if plugin == BUILTIN_NAME or self._infos[plugin].status != "loaded":
                continue
            items = {kind: {n: self._accepted[kind][n] for n in names}  # type: ignore[index]
                     for kind, names in self._infos[plugin].contributions.items()
                     if kind in self._accepted}  # type: ignore[operator]  # fmt: skip
            txn = _apply.Transaction()
            try:
                _apply.apply_plugin(self, plugin, items, txn)
            except BaseException as exc:  # noqa: BLE001
                if isinstance(exc, KeyboardInterrupt):
                    txn.rollback()
                    raise
                self._undo[plugin] = txn
                self._fail_plugin(plugin, f"registration failed: {_describe(exc)}")
            else:
                self._undo[plugin] = txn

    def unregister(self, *, commands: bool = True) -> None:
        """Undo every registration (and, with ``commands``, every CLI command) this manager
        made (tests, reloading)."""
        for txn in self._undo.values():
            txn.rollback()
        self._undo.clear()
        if not commands:
            return
        for group, command, _ in self._commands:
            group.commands.pop(command, None)
        self._commands.clear()

    def owner(self, kind: str, name: str) -> str | None:
        """Which plugin contributed ``name`` of ``kind`` (after collection)."""
        self._gather()
        return self._owners.get(kind, {}).get(name)


def _taken(owner: str, what: str = "name") -> str:
    if owner == BUILTIN_NAME:
        return f"{what} taken by a physkan built-in, which wins"
    return f"{what} taken by plugin {owner!r}, which wins"


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


#: ``(hook, kind, flatten)`` of every contribution hook except commands, in apply order.
_HOOKS: tuple[tuple[str, str, Callable[[Any], list[tuple[str, Any]]]], ...] = (
    ("physkan_basis_families", "basis_families", _named),
    ("physkan_symbolic_libraries", "symbolic", _symbolic_items),
    ("physkan_problem_types", "problem_types", _named),
    ("physkan_problems", "problems", _problem_items),
)


_MANAGER: PhyskanPluginManager | None = None
#: True while the manager is being created (plugin modules are imported then).
_CREATING = False
#: a registry lookup made while creating asked for the plugins: the loader runs again later.
_DEFERRED = False


def get_plugin_manager() -> PhyskanPluginManager:
    """The process-wide plugin manager (created, and plugins loaded, on first use)."""
    global _MANAGER, _CREATING, _DEFERRED
    if _MANAGER is None:
        _CREATING, _DEFERRED = True, False
        try:
            manager = PhyskanPluginManager()
        finally:
            _CREATING = False
        _MANAGER = manager
        if _DEFERRED:  # the loader was asked for too early: let the next lookup run it
            registry.reset_loaded()
    return _MANAGER


def load_plugins() -> None:
    """Register every plugin's contributions into physkan's registries (the registry loader).

    Installed by ``physkan/__init__.py`` with :func:`physkan.registry.add_loader`, so it runs
    once, at the first lookup in any registry. Never raises (a broken plugin system leaves
    physkan's built-ins working), except ``KeyboardInterrupt``.
    """
    global _DEFERRED
    if _CREATING:  # a plugin module looked something up while it was being imported
        _DEFERRED = True
        return
    try:
        get_plugin_manager().apply()
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - the host must keep working
        warnings.warn(f"plugins not loaded: {_describe(exc)}", RuntimeWarning, stacklevel=2)


def reset_plugin_manager(*, unregister: bool = False) -> None:
    """Forget the cached manager (tests; after changing ``PHYSKAN_DISABLE_PLUGINS``).

    Every plugin contribution is taken back out of physkan's registries and the registry
    loader is re-armed, so the next lookup loads the plugins afresh. ``unregister=True``
    also takes plugin commands out of the CLI.
    """
    global _MANAGER
    if _MANAGER is not None:
        _MANAGER.unregister(commands=unregister)
    _MANAGER = None
    registry.reset_loaded()
