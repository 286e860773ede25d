"""The local download cache of zoo files, and fetching a model into it.

The cache keeps downloaded files as ``CACHE/<name>/<version>.h5`` and, per model,
``CACHE/<name>/refs.json`` mapping the ref that was asked for (``"latest"``, ``"prod"``,
``"3"``) to ``{"version", "sha256"}``. A cached ref is revalidated with
``If-None-Match: "<sha256>"``; ``304`` means it is still current, so nothing is downloaded.
Pinned versions are immutable and are served from the cache without asking the server.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

from physkan import _fs
from physkan.zoo.card import Spec, ZooError, parse_spec
from physkan.zoo.client import ZooClient, ZooConnectionError
from physkan.zoo.local import ModelRef
from physkan.zoo.store import read_header

__all__ = ["ZooCache", "fetch_to_cache"]


class ZooCache:
    """Downloaded zoo files plus which ref resolved to which version."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root).expanduser()

    def _refs_path(self, name: str) -> Path:
        return self.root / name / "refs.json"

    def _refs(self, name: str) -> dict[str, Any]:
        with contextlib.suppress(OSError, ValueError, TypeError):
            return dict(json.loads(self._refs_path(name).read_text()))
        return {}

    def lookup(self, spec: Spec) -> ModelRef | None:
        """The cached file for ``spec`` if present, intact in its header and as recorded."""
        rec = self._refs(spec.name).get(spec.ref)
        if not isinstance(rec, dict):
            return None
        version, sha = rec.get("version"), rec.get("sha256")
        if type(version) is not int or version < 1 or not isinstance(sha, str):
            return None
        path = self.root / spec.name / f"{version}.h5"
        try:
            card, recorded = read_header(path)
        except ZooError:
            return None
        if recorded != sha or card.name != spec.name or card.version != version:
            return None
        return ModelRef(spec.name, version, path, sha)

    def record(self, spec: Spec, version: int, sha: str) -> None:
        """Remember that ``spec`` resolved to ``version`` with hash ``sha``."""
        d = self.root / spec.name
        with _fs.file_lock(d / ".lock"):
            refs = self._refs(spec.name)
            refs[spec.ref] = {"version": int(version), "sha256": sha}
            refs[str(version)] = {"version": int(version), "sha256": sha}
            _fs.atomic_write_bytes(self._refs_path(spec.name), json.dumps(refs).encode())

    def forget(self, spec: Spec) -> None:
        """Drop the record for ``spec`` (e.g. after a failed verification)."""
        d = self.root / spec.name
        with _fs.file_lock(d / ".lock"):
            refs = self._refs(spec.name)
            if refs.pop(spec.ref, None) is not None:
                _fs.atomic_write_bytes(self._refs_path(spec.name), json.dumps(refs).encode())


def fetch_to_cache(
    spec: str | Spec,
    url: str | None,
    cache_dir: str | os.PathLike,
    *,
    revalidate: bool = True,
    max_download_bytes: int | None = None,
) -> ModelRef:
    """Return a cached, current copy of ``spec``, downloading it if needed.

    Pinned versions in the cache are used as they are. Other refs are
    revalidated by ETag; if the server cannot be reached, a cached copy is
    used with a warning. ``max_download_bytes`` defaults to
    ``$PHYSKAN_ZOO_MAX_DOWNLOAD_BYTES`` or 512 MiB. Temp files that killed
    downloads left anywhere in the cache are removed first.
    """
    spec = parse_spec(spec) if isinstance(spec, str) else spec
    cache = ZooCache(cache_dir)
    cached = cache.lookup(spec)
    if cached and (spec.version is not None or not revalidate):
        return cached
    _fs.clean_stale_temps(cache.root, recursive=True)  # left by killed pulls of any model
    try:
        with ZooClient(url, max_download_bytes=max_download_bytes) as client:
            res = client.download(
                spec, cache.root / spec.name, etag=cached.sha256 if cached else None
            )
    except ZooConnectionError as exc:
        if cached:
            warnings.warn(f"{exc}; using cached {spec} (version {cached.version})", stacklevel=2)
            return cached
        raise
    if res.status == 304:
        if cached is None or res.version not in (None, cached.version):
            raise ZooError(
                f"zoo server {url} answered 304 Not Modified for {spec}, but the cached copy "
                f"is version {cached.version if cached else 'none'}"
            )
        return cached
    if res.version is None or res.sha256 is None or res.path is None:  # pragma: no cover
        raise ZooError(f"download of {spec} returned no file")
    cache.record(spec, res.version, res.sha256)
    return ModelRef(spec.name, res.version, res.path, res.sha256)
