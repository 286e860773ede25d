"""A zoo on disk: versioned model files, aliases and a rebuildable index.

Layout::

    ROOT/index.json              cache of everything below (rebuild_index())
    ROOT/<name>/<version>.h5     one immutable file per version (1, 2, 3 ...)
    ROOT/<name>/aliases.json     user-set aliases {"prod": 2}; "latest" is implicit
    ROOT/<name>/.lock            fcntl lock for version allocation and aliases
    ROOT/<name>/.<v>.reserved    a version being written (O_EXCL, holds the pid)
    ROOT/.uploads/               server upload staging (temp files only)
    ROOT/.index.lock             fcntl lock for index.json updates

The files are the truth; ``index.json`` is derived from them and rewritten
atomically, so a crash can at worst leave it stale, never corrupt.
Version allocation is safe across threads and processes: the next number is
chosen under the per-name ``fcntl`` lock and reserved with ``O_EXCL``, and the
final file is published with ``os.link`` so it can never overwrite another.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from physkan.zoo import _fs
from physkan.zoo.card import ModelCard, Spec, ZooError, parse_spec, validate_alias, validate_name
from physkan.zoo.store import read_header, verify_file, write_model_file

__all__ = ["LocalZoo", "ModelRef", "default_cache_dir", "default_zoo_dir", "summaries"]

INDEX_FORMAT = 1
_VERSION_FILE = re.compile(r"^([1-9][0-9]*)\.h5$")
_RESERVED = re.compile(r"^\.([1-9][0-9]*)\.reserved$")
_RESERVED_NAMES = frozenset({"index.json"})


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


def _summary(name: str, entry: dict[str, Any]) -> dict[str, Any] | None:
    latest = entry.get("aliases", {}).get("latest")
    info = entry.get("versions", {}).get(str(latest))
    if info is None:
        return None
    card = info["card"]
    return {
        "name": name,
        "latest_version": latest,
        "versions": len(entry["versions"]),
        "aliases": entry.get("aliases", {}),
        "problem": card.get("problem", ""),
        "formula": card.get("formula", ""),
        "tags": card.get("tags", []),
        "metrics": card.get("metrics", {}),
        "created": card.get("created"),
        "sha256": info["sha256"],
    }


def _matches(
    item: dict[str, Any], search: str | None, tag: str | None, problem: str | None
) -> bool:
    if tag is not None and tag not in item["tags"]:
        return False
    if problem is not None and item["problem"] != problem:
        return False
    if search:
        needle = search.lower()
        hay = [item["name"], item["problem"], item["formula"], *item["tags"]]
        return any(needle in h.lower() for h in hay)
    return True


def summaries(
    index: dict[str, Any],
    *,
    search: str | None = None,
    tag: str | None = None,
    problem: str | None = None,
) -> list[dict[str, Any]]:
    """One summary per model of ``index`` (from its latest card), filtered, sorted by name.

    ``search`` is a case-insensitive substring of name, problem, formula or a
    tag; ``tag`` and ``problem`` must match exactly.
    """
    models = index["models"]
    items = [s for n in sorted(models) if (s := _summary(n, models[n]))]
    return [s for s in items if _matches(s, search, tag, problem)]


class LocalZoo:
    """A zoo directory. Cheap to construct; every method re-reads the disk."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root).expanduser()
        self._index_cache: tuple[tuple[int, int, int], dict[str, Any]] | None = None

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

    # -- reading -------------------------------------------------------------
    def names(self) -> list[str]:
        """Names of all models with at least one version, sorted."""
        if not self.root.is_dir():
            return []
        out = []
        for entry in self.root.iterdir():
            if (
                entry.is_dir()
                and not entry.name.startswith(".")
                and self._safe(entry.name)
                and self.versions(entry.name)
            ):
                out.append(entry.name)
        return sorted(out)

    @staticmethod
    def _safe(name: str) -> bool:
        try:
            validate_name(name)
        except ZooError:
            return False
        return name not in _RESERVED_NAMES

    def versions(self, name: str) -> list[int]:
        """Published versions of ``name`` (from the directory listing), ascending."""
        d = self.model_dir(name)
        if not d.is_dir():
            return []
        found = (_VERSION_FILE.match(e) for e in os.listdir(d))
        return sorted(int(m.group(1)) for m in found if m)

    def aliases(self, name: str) -> dict[str, int]:
        """Aliases of ``name``, including the automatic ``latest``."""
        versions = self.versions(name)
        out: dict[str, int] = {}
        path = self.model_dir(name) / "aliases.json"
        if path.is_file():
            with contextlib.suppress(OSError, ValueError):
                raw = json.loads(path.read_text())
                out = {str(k): int(v) for k, v in raw.items() if int(v) in versions}
        if versions:
            out["latest"] = versions[-1]
        return out

    def resolve(self, spec: str | Spec) -> ModelRef:
        """Find the file for ``"name"``, ``"name:3"`` or ``"name@alias"``."""
        spec = parse_spec(spec) if isinstance(spec, str) else spec
        versions = self.versions(spec.name)
        if not versions:
            raise ZooError(f"no model named {spec.name!r} in zoo {self.root}")
        if spec.version is not None:
            version = spec.version
            if version not in versions:
                raise ZooError(
                    f"model {spec.name!r} has no version {version} in zoo {self.root} "
                    f"(versions: {', '.join(map(str, versions))})"
                )
        else:
            aliases = self.aliases(spec.name)
            alias = spec.alias or "latest"
            if alias not in aliases:
                raise ZooError(f"model {spec.name!r} has no alias {alias!r} in zoo {self.root}")
            version = aliases[alias]
        path = self.version_path(spec.name, version)
        entry = self.index()["models"].get(spec.name, {}).get("versions", {}).get(str(version))
        sha = entry["sha256"] if entry else read_header(path)[1]
        return ModelRef(spec.name, version, path, sha)

    # -- writing -------------------------------------------------------------
    def _reserve(self, name: str) -> tuple[int, Path]:
        d = self.model_dir(name)
        d.mkdir(parents=True, exist_ok=True)
        with _fs.file_lock(d / ".lock"):
            taken = set(self.versions(name))
            for entry in os.listdir(d):
                m = _RESERVED.match(entry)
                if m:
                    taken.add(int(m.group(1)))
            version = max(taken, default=0) + 1
            while True:
                marker = d / f".{version}.reserved"
                try:
                    fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                except FileExistsError:
                    version += 1
                    continue
                with os.fdopen(fd, "w") as fh:
                    fh.write(str(os.getpid()))
                return version, marker

    def add(self, card: ModelCard, config: dict[str, Any], state: dict[str, Any]) -> ModelRef:
        """Store a new version of ``card.name``; the zoo assigns the version number."""
        version, marker = self._reserve(card.name)
        try:
            path = self.version_path(card.name, version)
            stamped = card.model_copy(update={"version": version})
            sha = write_model_file(path, stamped, config, state, overwrite=False)
        finally:
            with contextlib.suppress(FileNotFoundError):
                marker.unlink()
        self.refresh_index(card.name)
        return ModelRef(card.name, version, path, sha)

    def set_alias(self, name: str, alias: str, version: int) -> None:
        """Point ``alias`` at an existing ``version`` of ``name``."""
        validate_alias(alias)
        d = self.model_dir(name)
        if int(version) not in self.versions(name):
            raise ZooError(f"model {name!r} has no version {version} in zoo {self.root}")
        with _fs.file_lock(d / ".lock"):
            path = d / "aliases.json"
            current: dict[str, int] = {}
            if path.is_file():
                with contextlib.suppress(OSError, ValueError):
                    current = {str(k): int(v) for k, v in json.loads(path.read_text()).items()}
            current[alias] = int(version)
            _fs.atomic_write_bytes(path, json.dumps(current, sort_keys=True).encode())
        self.refresh_index(name)

    # -- index ---------------------------------------------------------------
    def _entry(self, name: str, old: dict[str, Any] | None) -> dict[str, Any]:
        old_versions = (old or {}).get("versions", {})
        versions: dict[str, Any] = {}
        for v in self.versions(name):
            key = str(v)
            if key in old_versions:
                versions[key] = old_versions[key]
                continue
            path = self.version_path(name, v)
            with contextlib.suppress(ZooError, OSError):
                card, sha = read_header(path)
                if card.name == name and card.version == v:
                    versions[key] = {
                        "sha256": sha,
                        "size": path.stat().st_size,
                        "card": card.model_dump(mode="json"),
                    }
        return {"versions": versions, "aliases": self.aliases(name)}

    def _write_index(self, index: dict[str, Any]) -> None:
        _fs.atomic_write_bytes(self.root / "index.json", json.dumps(index, indent=1).encode())

    def _read_index_file(self) -> dict[str, Any] | None:
        path = self.root / "index.json"
        try:
            st = path.stat()
            key = (st.st_ino, st.st_mtime_ns, st.st_size)
            if self._index_cache and self._index_cache[0] == key:
                return self._index_cache[1]
            data = json.loads(path.read_bytes())
            if data.get("format") != INDEX_FORMAT or not isinstance(data.get("models"), dict):
                return None
        except (OSError, ValueError, AttributeError):
            return None
        self._index_cache = (key, data)
        return data

    def refresh_index(self, name: str) -> None:
        """Re-derive the index entry of ``name`` from its files (under the index lock)."""
        with _fs.file_lock(self.root / ".index.lock"):
            index = self._read_index_file()
            if index is None:
                self._rebuild_locked()
                return
            models = dict(index["models"])
            entry = self._entry(name, models.get(name))
            if entry["versions"]:
                models[name] = entry
            else:
                models.pop(name, None)
            self._write_index({"format": INDEX_FORMAT, "models": models})

    def _rebuild_locked(self) -> dict[str, Any]:
        index = {
            "format": INDEX_FORMAT,
            "models": {n: self._entry(n, None) for n in self.names()},
        }
        self._write_index(index)
        return index

    def rebuild_index(self) -> dict[str, Any]:
        """Re-derive ``index.json`` from the model files and aliases; return it."""
        self.root.mkdir(parents=True, exist_ok=True)
        with _fs.file_lock(self.root / ".index.lock"):
            return self._rebuild_locked()

    def index(self) -> dict[str, Any]:
        """The index (rebuilt first when missing or unreadable)."""
        data = self._read_index_file()
        if data is None:
            if not self.root.is_dir():
                return {"format": INDEX_FORMAT, "models": {}}
            return self.rebuild_index()
        return data

    # -- maintenance ---------------------------------------------------------
    def cleanup(self) -> list[Path]:
        """Remove temp files and reservations left by dead processes."""
        removed = _fs.remove_stale(self.root) + _fs.remove_stale(self.uploads_dir)
        if self.root.is_dir():
            for entry in self.root.iterdir():
                if entry.is_dir() and not entry.name.startswith("."):
                    removed += _fs.remove_stale(entry)
        return removed

    def verify(self) -> list[tuple[Path, str | None]]:
        """Hash-check every version file: ``[(path, None or error message)]``."""
        results: list[tuple[Path, str | None]] = []
        for name in self.names():
            for v in self.versions(name):
                path = self.version_path(name, v)
                try:
                    verify_file(path)
                    card, _ = read_header(path)
                    if (card.name, card.version) != (name, v):
                        raise ZooError(f"{path}: card says {card.name}:{card.version}")
                    results.append((path, None))
                except ZooError as exc:
                    results.append((path, str(exc)))
        return results
