"""Named registries that core packages own and plugins fill.

Every extensible table of physkan (basis families, symbolic functions, formula functions,
problems, problem types, model kinds) is one :class:`Registry`, owned by the core module
that uses it. That module registers its built-ins when it is imported; plugins add theirs
through the module's public ``register_*`` function. Core code never imports the plugin
system: instead, this module keeps a list of *loaders* (callables installed by the
composition root, ``physkan/__init__.py``) that run **once**, at the first lookup in *any*
registry, so a fresh process sees plugin names everywhere.

Clash policy (the same for every registry): built-ins win, then the first plugin wins.
A refused registration raises :class:`NameClash`; the plugin host turns it into a warning
and a "refused" entry in ``physkan plugins``.

This module imports nothing from physkan but :mod:`physkan.errors` (both sit at the bottom
of the layers, see ``docs/architecture.md``).
"""

from __future__ import annotations

import difflib
import threading
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from physkan.errors import PhyskanError, UserError

__all__ = [
    "BUILTIN",
    "NameClash",
    "Registry",
    "UnknownNameError",
    "add_loader",
    "ensure_loaded",
    "loaders_ran",
    "reset_loaded",
]

T = TypeVar("T")

#: the ``source`` of entries that physkan itself registers.
BUILTIN = "builtin"

_loaders: list[Callable[[], None]] = []
_loaded = False
_loader_thread: int | None = None
_lock = threading.RLock()


class UnknownNameError(UserError, LookupError):
    """A name that no entry of a registry has (the default error of :meth:`Registry.get`)."""


class NameClash(PhyskanError, ValueError):
    """A registration refused by the clash policy (the name is taken)."""

    def __init__(self, kind: str, name: str, taken_by: str, source: str) -> None:
        self.kind, self.name, self.taken_by, self.source = kind, name, taken_by, source
        super().__init__(
            f"{kind} {name!r} from {source} refused: already registered by {taken_by}"
        )


def add_loader(loader: Callable[[], None]) -> None:
    """Install ``loader`` to run once before the first lookup in any registry.

    The composition root installs the plugin loader here; tests may install others.
    A loader that is added after the loaders already ran is run at once.
    """
    with _lock:
        if loader in _loaders:
            return
        _loaders.append(loader)
        run_now = _loaded
    if run_now:
        loader()


def ensure_loaded() -> None:
    """Run the installed loaders once.

    Re-entrant: lookups made *by* a loader (same thread) see the registries as they are;
    other threads wait until the loaders are done.
    """
    global _loaded, _loader_thread
    if _loaded or _loader_thread == threading.get_ident():
        return
    with _lock:
        if _loaded:
            return
        _loader_thread = threading.get_ident()
        try:
            for loader in list(_loaders):
                loader()
        finally:
            _loader_thread = None
            _loaded = True


def loaders_ran() -> bool:
    """Whether :func:`ensure_loaded` has run the loaders in this process."""
    return _loaded


def reset_loaded() -> None:
    """Let the loaders run again at the next lookup (tests and ``reset_plugin_manager``)."""
    global _loaded
    with _lock:
        _loaded = False


class Registry(Generic[T]):
    """A name → item table with sources, aliases and a "did you mean" error.

    Args:
        kind: what the items are, for messages (``"basis family"``).
        error: exception class raised by :meth:`get` for an unknown name; it is called
            with one message string.
        normalise: maps a looked-up name to its canonical spelling before the lookup
            (e.g. ``str.lower``); registered names are stored as given.
    """

    def __init__(
        self,
        kind: str,
        *,
        error: type[Exception] = UnknownNameError,
        normalise: Callable[[str], str] | None = None,
    ) -> None:
        self.kind = kind
        self._error = error
        self._normalise = normalise
        self._items: dict[str, T] = {}
        self._sources: dict[str, str] = {}
        self._aliases: dict[str, str] = {}

    # -- registration -----------------------------------------------------------------
    def register(
        self,
        name: str,
        item: T,
        *,
        source: str = BUILTIN,
        aliases: tuple[str, ...] = (),
        replace: bool = False,
    ) -> None:
        """Add ``item`` under ``name`` (and ``aliases``).

        A taken name (or alias) raises :class:`NameClash`, unless ``replace`` is true and
        neither the old nor the new entry comes from a plugin losing to a built-in: an
        explicit ``replace`` by physkan or a user's own code may override anything, a
        plugin (``source`` other than :data:`BUILTIN`) may never replace a built-in.
        """
        with _lock:
            for key in (name, *aliases):
                owner = self._owner(key)
                if owner is None:
                    continue
                taken_by = self._sources[owner]
                if not replace or (taken_by == BUILTIN and source != BUILTIN):
                    raise NameClash(self.kind, key, taken_by, source)
            self._items[name] = item
            self._sources[name] = source
            for alias in aliases:
                self._aliases[alias] = name

    def unregister(self, name: str) -> T | None:
        """Remove ``name`` and its aliases; returns the item (``None`` if absent)."""
        with _lock:
            item = self._items.pop(name, None)
            self._sources.pop(name, None)
            for alias in [a for a, target in self._aliases.items() if target == name]:
                del self._aliases[alias]
            return item

    def pop(self, name: str, default: T | None = None) -> T | None:
        """Dict-style :meth:`unregister` (the tables that became registries were dicts)."""
        item = self.unregister(name)
        return default if item is None else item

    # -- lookup -----------------------------------------------------------------------
    def _owner(self, key: str) -> str | None:
        if key in self._items:
            return key
        return self._aliases.get(key)

    def find(self, name: str) -> T | None:
        """The item for ``name`` (or an alias, or its normalised spelling), else ``None``."""
        ensure_loaded()
        for key in self._candidates(name):
            owner = self._owner(key)
            if owner is not None:
                return self._items[owner]
        return None

    def get(self, name: str) -> T:
        """The item for ``name``; an unknown name raises the registry's error with the
        closest names ("did you mean …?") and the list of known ones."""
        item = self.find(name)
        if item is not None:
            return item
        raise self._error(self.unknown_message(name))

    def unknown_message(self, name: str) -> str:
        """The message :meth:`get` raises for an unknown ``name``."""
        pool = list(self._items) + list(self._aliases)
        close = difflib.get_close_matches(str(name), pool, n=3)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        return f"unknown {self.kind} {name!r}.{hint} Available: {', '.join(sorted(self._items))}"

    def canonical(self, name: str) -> str | None:
        """The registered name that ``name`` resolves to, else ``None``."""
        ensure_loaded()
        for key in self._candidates(name):
            owner = self._owner(key)
            if owner is not None:
                return owner
        return None

    def _candidates(self, name: str) -> list[str]:
        keys = [name]
        if self._normalise is not None:
            normal = self._normalise(name)
            if normal != name:
                keys.append(normal)
        return keys

    def source(self, name: str) -> str | None:
        """Who registered ``name`` (:data:`BUILTIN` or a plugin's name)."""
        owner = self._owner(name)
        return None if owner is None else self._sources[owner]

    def names(self) -> list[str]:
        """Registered names in registration order (built-ins first), plugins included."""
        ensure_loaded()
        return list(self._items)

    def aliases(self) -> dict[str, str]:
        """Alias → registered name."""
        ensure_loaded()
        return dict(self._aliases)

    def items(self) -> list[tuple[str, T]]:
        ensure_loaded()
        return list(self._items.items())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.canonical(name) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        ensure_loaded()
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._items)} entries)"
