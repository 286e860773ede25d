"""A zoo on disk: versioned model files, aliases and a rebuildable index.

Layout::

    ROOT/index.json              cache of everything below (see below; rebuild_index())
    ROOT/<name>/<version>.h5     one immutable file per version (1, 2, 3 ...)
    ROOT/<name>/aliases.json     user-set aliases {"prod": 2}; "latest" is implicit
    ROOT/<name>/.lock            fcntl lock for version allocation and aliases
    ROOT/<name>/.<v>.reserved    a version being written (O_EXCL, holds the pid)
    ROOT/.uploads/               server upload staging (temp files only)
    ROOT/.index.lock             fcntl lock for index.json updates

The files are the truth; ``index.json`` is derived from them and rewritten
atomically, so a crash can at worst leave it stale, never corrupt. Each model
entry records the ``[inode, size, mtime_ns]`` of the files it was derived from
(``stamp``), so readers notice changed, added or removed files and re-derive
those entries *in memory*: reads never write. A version file that does not
read, or whose card names another model or version than its path, is listed
under ``damaged`` and skipped (``latest`` is the newest healthy version).
Writers first remove the temp files and ``.N.reserved`` markers of killed
writers (:func:`physkan._fs.remove_stale`), so their versions are reused.
Version allocation is safe across threads and processes: the next number is
chosen under the per-name ``fcntl`` lock and reserved with ``O_EXCL``, and the
final file is published with ``os.link`` so it can never overwrite another.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from physkan import _fs
from physkan.zoo.card import ModelCard, Spec, ZooError, parse_spec, validate_alias, validate_name
from physkan.zoo.index_entries import (
    read_aliases_file,
    reason_without_path,
    stat_stamp,
    summaries,
    valid_entry,
    verify_one,
)
from physkan.zoo.store import read_header, write_model_file

__all__ = ["LocalZoo", "ModelRef", "default_cache_dir", "default_zoo_dir", "summaries"]

INDEX_FORMAT = 1
#: how often :meth:`LocalZoo.add` takes a fresh version number after a publish collision.
_PUBLISH_ATTEMPTS = 8
_VERSION_FILE = re.compile(r"^([1-9][0-9]*)\.h5$")
_RESERVED = re.compile(r"^\.([1-9][0-9]*)\.reserved$")
_RESERVED_NAMES = frozenset({"index.json"})
_log = logging.getLogger("physkan.zoo")


def default_zoo_dir() -> Path:
    """``$PHYSKAN_ZOO`` or the platform user-data dir ``physkan/zoo``."""
    env = os.environ.get("PHYSKAN_ZOO")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("physkan")) / "zoo"


def default_cache_dir() -> Path:
    """``$PHYSKAN_ZOO_CACHE`` or the platform user-cache dir ``physkan/zoo``."""
    env = os.environ.get("PHYSKAN_ZOO_CACHE")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("physkan")) / "zoo"


@dataclass(frozen=True)
class ModelRef:
    """Where one registered model version lives."""

    name: str
    version: int
    path: Path
    sha256: str


class LocalZoo:
    """A zoo directory. Cheap to construct; every method re-reads the disk.

    Reading methods (:meth:`index`, :meth:`resolve`, :meth:`aliases`, ...)
    never write: a missing, stale or wrong-shaped ``index.json`` is re-derived
    in memory. Writing methods (:meth:`add`, :meth:`set_alias`,
    :meth:`refresh_index`, :meth:`rebuild_index`) persist it.

    A version file that cannot be read, or whose card names another model or
    version than its path, is *damaged*: it is left out of listings, aliases
    and ``latest`` (which is the newest healthy version), reported once per
    process with a ``logging`` warning and listed by :meth:`damaged` and
    :meth:`verify`.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root).expanduser()
        self._index_cache: tuple[tuple[int, int, int], dict[str, Any]] | None = None
        self._warned: set[tuple[str, tuple[int, ...]]] = set()

    def __repr__(self) -> str:
        return f"LocalZoo({str(self.root)!r})"

    # -- paths ---------------------------------------------------------------
    def model_dir(self, name: str) -> Path:
        """The directory of model ``name`` (validated: one safe path component)."""
        validate_name(name)
        if name in _RESERVED_NAMES:
            raise ZooError(f"invalid model name {name!r}: reserved")
        return self.root / name

    def version_path(self, name: str, version: int) -> Path:
        """``ROOT/<name>/<version>.h5``."""
        return self.model_dir(name) / f"{int(version)}.h5"

    @property
    def uploads_dir(self) -> Path:
        """Staging directory for server uploads."""
        return self.root / ".uploads"

    # -- reading (never writes) ----------------------------------------------
    def _model_dirs(self) -> list[str]:
        """Names of the model directories under the root (any content), sorted."""
        try:
            entries = list(os.scandir(self.root))
        except OSError:
            return []
        out = []
        for entry in entries:
            with contextlib.suppress(OSError):
                if not entry.name.startswith(".") and self._safe(entry.name) and entry.is_dir():
                    out.append(entry.name)
        return sorted(out)

    def names(self) -> list[str]:
        """Names of all models with at least one version file (healthy or not), sorted."""
        return [n for n in self._model_dirs() if self.versions(n)]

    @staticmethod
    def _safe(name: str) -> bool:
        try:
            validate_name(name)
        except ZooError:
            return False
        return name not in _RESERVED_NAMES

    def versions(self, name: str) -> list[int]:
        """Version numbers of ``name`` present on disk, ascending, damaged ones included.

        See :meth:`healthy_versions` for the ones that can be served.
        """
        self.model_dir(name)  # validate
        return sorted(int(v) for v in self._stamp(name)["files"])

    def healthy_versions(self, name: str) -> list[int]:
        """Versions of ``name`` whose file reads and whose card matches its path."""
        entry = self.model_entry(name)
        return [int(v) for v in entry["versions"]] if entry else []

    def aliases(self, name: str) -> dict[str, int]:
        """Aliases of ``name`` to healthy versions, plus ``latest`` (the newest healthy one)."""
        entry = self.model_entry(name)
        return dict(entry["aliases"]) if entry else {}

    def model_entry(self, name: str) -> dict[str, Any] | None:
        """The index entry of ``name`` (current, derived in memory), or None if it has no files.

        ``{"versions": {"<v>": {"sha256", "size", "card"}}, "aliases": {...},
        "damaged": {"<v>": reason}, "stamp": {...}}``; only healthy versions
        are in ``versions``.
        """
        self.model_dir(name)  # validate
        stored = self._read_index_file()
        old = stored["models"].get(name) if stored else None
        return self._derive_entry(name, old)

    def damaged(self) -> list[tuple[Path, str]]:
        """``[(path, reason)]`` for every damaged version file (cheap: header checks only)."""
        out: list[tuple[Path, str]] = []
        for name, entry in self.index()["models"].items():
            for v, reason in entry["damaged"].items():
                out.append((self.version_path(name, int(v)), reason))
        return out

    def resolve(self, spec: str | Spec) -> ModelRef:
        """Find the file for ``"name"``, ``"name:3"`` or ``"name@alias"``.

        Only healthy versions resolve; ``latest`` is the newest healthy one.
        """
        spec = parse_spec(spec) if isinstance(spec, str) else spec
        return self.resolve_in(spec, self.model_entry(spec.name))

    def resolve_in(self, spec: Spec, entry: dict[str, Any] | None) -> ModelRef:
        """:meth:`resolve` against a given (e.g. cached) index ``entry`` of ``spec.name``."""
        if entry is None:
            raise ZooError(f"no model named {spec.name!r} in zoo {self.root}")
        healthy = [int(v) for v in entry["versions"]]
        if spec.version is not None:
            version = spec.version
            reason = entry["damaged"].get(str(version))
            if reason is not None:
                raise ZooError(
                    f"version {version} of model {spec.name!r} is damaged in zoo {self.root} "
                    f"({reason}); run 'physkan zoo verify'"
                )
            if version not in healthy:
                listed = ", ".join(map(str, healthy)) or "none readable"
                raise ZooError(
                    f"model {spec.name!r} has no version {version} in zoo {self.root} "
                    f"(versions: {listed})"
                )
        else:
            alias = spec.alias or "latest"
            if not healthy:
                raise ZooError(
                    f"model {spec.name!r} has no readable version in zoo {self.root} "
                    "(all its files are damaged); run 'physkan zoo verify'"
                )
            if alias not in entry["aliases"]:
                target = read_aliases_file(self.model_dir(spec.name) / "aliases.json").get(alias)
                reason = entry["damaged"].get(str(target))
                if reason is not None:
                    raise ZooError(
                        f"alias {alias!r} of model {spec.name!r} points to version {target}, "
                        f"which is damaged in zoo {self.root} ({reason}); run 'physkan zoo verify'"
                    )
                raise ZooError(f"model {spec.name!r} has no alias {alias!r} in zoo {self.root}")
            version = entry["aliases"][alias]
        info = entry["versions"][str(version)]
        return ModelRef(spec.name, version, self.version_path(spec.name, version), info["sha256"])

    # -- writing -------------------------------------------------------------
    def _reserve(self, name: str) -> tuple[int, Path]:
        d = self.model_dir(name)
        d.mkdir(parents=True, exist_ok=True)
        with _fs.file_lock(d / ".lock"):
            # a killed writer's temp file and reservation go, so its version is reused
            for path in _fs.remove_stale(d):
                _log.info("zoo: removed stale %s", path)
            taken = set(self.versions(name))
            for entry in os.listdir(d):
                m = _RESERVED.match(entry)
                if m:
                    taken.add(int(m.group(1)))
            version = max(taken, default=0) + 1
            while True:
                marker = d / f".{version}.reserved"
                if os.path.lexists(d / f"{version}.h5"):  # a direct look, not the listing
                    version += 1
                    continue
                try:
                    fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                except FileExistsError:
                    version += 1
                    continue
                with os.fdopen(fd, "w") as fh:
                    fh.write(str(os.getpid()))
                return version, marker

    def add(self, card: ModelCard, config: dict[str, Any], state: dict[str, Any]) -> ModelRef:
        """Store a new version of ``card.name``; the zoo assigns the version number.

        Stale temp files and reservations left in the model directory by
        killed writers are removed first.
        """
        for attempt in range(_PUBLISH_ATTEMPTS):
            version, marker = self._reserve(card.name)
            path = self.version_path(card.name, version)
            try:
                stamped = card.model_copy(update={"version": version})
                sha = write_model_file(path, stamped, config, state, overwrite=False)
                break
            except ZooError:
                # publishing never clobbers (a hard link): if another writer got this
                # number first after all, take the next one
                if not path.exists() or attempt == _PUBLISH_ATTEMPTS - 1:
                    raise
            finally:
                with contextlib.suppress(FileNotFoundError):
                    marker.unlink()
        self.refresh_index(card.name)
        return ModelRef(card.name, version, path, sha)

    def set_alias(self, name: str, alias: str, version: int) -> None:
        """Point ``alias`` at an existing, healthy ``version`` of ``name``."""
        validate_alias(alias)
        d = self.model_dir(name)
        entry = self.model_entry(name)
        if entry is None or str(int(version)) not in entry["versions"]:
            reason = (entry or {}).get("damaged", {}).get(str(int(version)))
            why = f" (version {version} is damaged: {reason})" if reason else ""
            raise ZooError(f"model {name!r} has no version {version} in zoo {self.root}{why}")
        with _fs.file_lock(d / ".lock"):
            _fs.remove_stale(d)
            path = d / "aliases.json"
            current = read_aliases_file(path)
            current[alias] = int(version)
            _fs.atomic_write_bytes(path, json.dumps(current, sort_keys=True).encode())
        self.refresh_index(name)

    # -- index ---------------------------------------------------------------
    def _stamp(self, name: str) -> dict[str, Any]:
        """What the entry of ``name`` depends on: ``[inode, size, mtime_ns]`` of each file.

        ``name`` must already be validated (hot path: one call per model per listing).
        """
        d = os.path.join(self.root, name)
        files: dict[str, list[int]] = {}
        try:
            entries = list(os.scandir(d))
        except OSError:
            entries = []
        for entry in entries:
            m = _VERSION_FILE.match(entry.name)
            if m:
                with contextlib.suppress(OSError):
                    try:
                        st = entry.stat()
                    except OSError:  # a dangling symlink still takes the version number
                        st = entry.stat(follow_symlinks=False)
                    files[m.group(1)] = stat_stamp(st)
        if len(files) > 1:
            files = {k: files[k] for k in sorted(files, key=int)}
        aliases: list[int] | None = None
        with contextlib.suppress(OSError):
            aliases = stat_stamp(os.stat(os.path.join(d, "aliases.json")))
        return {"files": files, "aliases": aliases}

    def _inspect(self, name: str, version: int, size: int) -> tuple[dict[str, Any] | None, str]:
        """``(index info, "")`` for a healthy version file, else ``(None, reason)``."""
        path = self.version_path(name, version)
        try:
            card, sha = read_header(path)
        except ZooError as exc:
            return None, reason_without_path(path, str(exc))
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            return None, f"unreadable ({type(exc).__name__}: {exc})"
        if (card.name, card.version) != (name, version):
            return None, (
                f"its card says {card.name}:{card.version}, not {name}:{version} "
                "(a file of another model or version copied here?)"
            )
        return {"sha256": sha, "size": size, "card": card.model_dump(mode="json")}, ""

    def _derive_entry(self, name: str, old: dict[str, Any] | None) -> dict[str, Any] | None:
        """The current entry of ``name``, reusing what ``old`` knows about unchanged files.

        ``old`` comes from :meth:`_read_index_file` (shape-checked) or is None.
        """
        stamp = self._stamp(name)
        if not stamp["files"]:
            return None
        if old is not None and old["stamp"] == stamp:
            entry = old
        else:
            old_files = old["stamp"]["files"] if old else {}
            versions: dict[str, Any] = {}
            damaged: dict[str, str] = {}
            for key, file_stamp in stamp["files"].items():
                if old is not None and old_files.get(key) == file_stamp:
                    if key in old["versions"]:
                        versions[key] = old["versions"][key]
                        continue
                    if key in old["damaged"]:
                        damaged[key] = old["damaged"][key]
                        continue
                info, reason = self._inspect(name, int(key), file_stamp[1])
                if info is None:
                    damaged[key] = reason
                else:
                    versions[key] = info
            healthy = [int(v) for v in versions]
            raw = read_aliases_file(self.model_dir(name) / "aliases.json")
            aliases = {k: v for k, v in raw.items() if v in healthy}
            if healthy:
                aliases["latest"] = healthy[-1]
            entry = {"versions": versions, "aliases": aliases, "damaged": damaged, "stamp": stamp}
        for key, reason in entry["damaged"].items():
            self._warn(name, key, tuple(stamp["files"][key]), reason)
        return entry

    def _warn(self, name: str, key: str, file_stamp: tuple[int, ...], reason: str) -> None:
        path = self.version_path(name, int(key))
        token = (str(path), file_stamp)
        if token not in self._warned:
            self._warned.add(token)
            _log.warning("zoo: skipping damaged model file %s: %s", path, reason)

    def _derive(self, stored: dict[str, Any] | None) -> dict[str, Any]:
        old_models = stored["models"] if stored else {}
        models: dict[str, Any] = {}
        for name in self._model_dirs():
            entry = self._derive_entry(name, old_models.get(name))
            if entry is not None:
                models[name] = entry
        return {"format": INDEX_FORMAT, "models": models}

    def _write_index(self, index: dict[str, Any]) -> None:
        _fs.atomic_write_bytes(self.root / "index.json", json.dumps(index, indent=1).encode())

    def _read_index_file(self) -> dict[str, Any] | None:
        """The parsed ``index.json`` if it has the right top-level shape, else None.

        Model entries of the wrong shape are dropped (and so re-derived from
        the files); the result is cached until the file changes.
        """
        path = self.root / "index.json"
        try:
            st = path.stat()
            key = (st.st_ino, st.st_mtime_ns, st.st_size)
            cached = self._index_cache
            if cached and cached[0] == key:
                return cached[1]
            data = json.loads(path.read_bytes())
        except (OSError, ValueError, RecursionError):
            return None
        if (
            not isinstance(data, dict)
            or data.get("format") != INDEX_FORMAT
            or not isinstance(data.get("models"), dict)
        ):
            return None
        models = {n: e for n, e in data["models"].items() if self._safe(n) and valid_entry(e)}
        data = {"format": INDEX_FORMAT, "models": models}
        self._index_cache = (key, data)
        return data

    def _persist(self, *, full: bool = False) -> dict[str, Any]:
        """Derive the index (from scratch with ``full``) and write it if it changed."""
        self.root.mkdir(parents=True, exist_ok=True)
        with _fs.file_lock(self.root / ".index.lock"):
            _fs.clean_stale_temps(self.root)
            stored = self._read_index_file()
            index = self._derive(None if full else stored)
            if full or stored != index:
                self._write_index(index)
            return index

    def refresh_index(self, name: str | None = None) -> None:
        """Bring ``index.json`` up to date with the files (under the index lock).

        ``name`` is accepted for compatibility; every model is checked, but
        only changed files are re-read.
        """
        if name is not None:
            self.model_dir(name)  # validate
        self._persist()

    def rebuild_index(self) -> dict[str, Any]:
        """Re-derive ``index.json`` from the model files and aliases, re-reading all; return it."""
        return self._persist(full=True)

    def index(self) -> dict[str, Any]:
        """The current index: ``index.json`` where it matches the files, else re-derived.

        Never writes; models whose versions are all damaged are listed with
        empty ``versions`` (:func:`summaries` leaves them out).
        """
        return self._derive(self._read_index_file())

    # -- maintenance ---------------------------------------------------------
    def _maintained_dirs(self) -> list[Path]:
        return [self.root, self.uploads_dir] + [self.root / n for n in self._model_dirs()]

    def stale_files(self) -> list[Path]:
        """Temp files and reservations left by dead writers (what :meth:`cleanup` removes)."""
        out: list[Path] = []
        for d in self._maintained_dirs():
            out += _fs.find_stale(d, reservations=True)
        return out

    def cleanup(self) -> list[Path]:
        """Remove temp files and reservations left by dead processes; return them."""
        removed: list[Path] = []
        for d in self._maintained_dirs():
            removed += _fs.remove_stale(d)
        return removed

    def verify(self) -> list[tuple[Path, str | None]]:
        """Fully read and hash-check every version file: ``[(path, None or error message)]``."""
        results: list[tuple[Path, str | None]] = []
        for name in self.names():
            for v in self.versions(name):
                path = self.version_path(name, v)
                results.append((path, verify_one(path, name, v)))
        return results
