"""An in-memory zoo index for the server: no directory scan and no file read per request.

:class:`LiveIndex` keeps one entry per model, derived with
:meth:`physkan.zoo.local.LocalZoo._derive_entry` (so damaged files are skipped and logged
exactly as in :class:`~physkan.zoo.local.LocalZoo`), and keys it on the model directory's
``(inode, mtime_ns)``. A directory's mtime changes whenever a file in it is created,
renamed or removed -- which is how every zoo write publishes (``os.link``/``os.replace``)
and how a file added or deleted by hand shows up -- and the root's mtime changes when a
model directory appears. So a request costs one ``stat`` of the root and one per model
directory; only what changed is re-derived (and, there, only the changed files are read).
A directory changed in the last 100 ms is re-checked on every request until it is older
(file times come from a coarse clock, so two changes in one tick share an mtime).
An in-place edit of a file keeps its directory's mtime: every entry is therefore
re-checked file by file at least every ``ttl`` seconds, and a download whose file no
longer matches its index stamp forces that re-check (:meth:`LiveIndex.invalidate`).

Reads never write: nothing here touches the disk but ``stat``, ``scandir`` and reads of
changed model files. Every worker process holds its own index. Each change bumps
:attr:`LiveIndex.generation`, which the server uses to key its cache of encoded
responses.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from physkan.zoo.local import LocalZoo, summaries

__all__ = ["DEFAULT_TTL_S", "LiveIndex"]

#: seconds after which an entry is re-checked file by file even if its directory did not change
DEFAULT_TTL_S = 2.0
#: a directory changed less than this long ago (ns) may change again within the same mtime
#: tick (file times come from a coarse clock): its key is not trusted until it is older
_RACY_NS = 100_000_000


def _dir_key(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns)


class LiveIndex:
    """The current index of ``zoo``, cached in memory and refreshed when the disk changes.

    ``ttl`` (seconds, > 0) bounds how long an in-place edit of a model file can go
    unnoticed. Thread-safe: refreshes are serialised by a lock.
    """

    def __init__(self, zoo: LocalZoo, ttl: float = DEFAULT_TTL_S) -> None:
        if not ttl > 0:
            raise ValueError(f"ttl must be > 0 seconds, got {ttl!r}")
        self.zoo = zoo
        self.ttl = float(ttl)
        self.generation = 0
        self._root = str(zoo.root)
        self._root_key: tuple[int, int] | None = None
        self._root_racy = True
        self._names: list[str] = []
        # name -> (directory key, monotonic time of the last file-by-file check, entry or None)
        self._entries: dict[str, tuple[tuple[int, int] | None, float, dict[str, Any] | None]] = {}
        self._models: dict[str, dict[str, Any]] = {}
        self._summaries: list[dict[str, Any]] | None = None
        self._lock = threading.Lock()

    def models(self) -> dict[str, dict[str, Any]]:
        """``{name: entry}`` for every model with at least one version file (current)."""
        with self._lock:
            self._refresh()
            return self._models

    def entry(self, name: str) -> dict[str, Any] | None:
        """The current entry of ``name`` (a validated name), or None when it has no files."""
        return self.models().get(name)

    def summaries(self) -> list[dict[str, Any]]:
        """:func:`physkan.zoo.local.summaries` of the current index (unfiltered, cached)."""
        with self._lock:
            self._refresh()
            if self._summaries is None:
                self._summaries = summaries({"models": self._models})
            return self._summaries

    def invalidate(self, name: str) -> None:
        """Re-check ``name`` file by file at the next request (e.g. its file changed in place)."""
        with self._lock:
            cached = self._entries.get(name)
            if cached is not None:
                self._entries[name] = (cached[0], float("-inf"), cached[2])

    def _refresh(self) -> None:
        now = time.monotonic()
        racy_before = time.time_ns() - _RACY_NS
        root_key = _dir_key(self._root)
        if root_key != self._root_key or self._root_racy:
            self._root_key = root_key
            self._root_racy = root_key is None or root_key[1] > racy_before
            self._names = self.zoo._model_dirs()
        changed = set(self._entries) - set(self._names)
        stored: dict[str, Any] | None = None
        for name in self._names:
            key = _dir_key(os.path.join(self._root, name))
            cached = self._entries.get(name)
            if cached is not None and cached[0] == key and now - cached[1] < self.ttl:
                continue
            old = cached[2] if cached is not None else None
            if cached is None:  # first sight: start from index.json, like LocalZoo does
                if stored is None:
                    stored = self.zoo._read_index_file() or {"models": {}}
                old = stored["models"].get(name)
            entry = self.zoo._derive_entry(name, old)
            racy = key is None or key[1] > racy_before
            self._entries[name] = (key, float("-inf") if racy else now, entry)
            if cached is None or entry != cached[2]:
                changed.add(name)
        for name in set(self._entries) - set(self._names):
            del self._entries[name]
        if changed:
            self._models = {n: e for n in self._names if (e := self._entries[n][2]) is not None}
            self._summaries = None
            self.generation += 1
