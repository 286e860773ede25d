"""HTTP client for a zoo server (httpx) and the local download cache.

The cache keeps downloaded files as ``CACHE/<name>/<version>.h5`` and, per
model, ``CACHE/<name>/refs.json`` mapping the ref that was asked for
(``"latest"``, ``"prod"``, ``"3"``) to ``{"version", "sha256"}``. A cached ref
is revalidated with ``If-None-Match: "<sha256>"``; ``304`` means it is still
current, so nothing is downloaded. Pinned versions are immutable and are
served from the cache without asking the server.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from physkan.zoo import _fs
from physkan.zoo.card import Spec, ZooError, parse_spec
from physkan.zoo.local import ModelRef
from physkan.zoo.store import read_header, verify_file

__all__ = ["Download", "ZooCache", "ZooClient", "ZooConnectionError", "fetch_to_cache"]


class ZooConnectionError(ZooError):
    """The server could not be reached (as opposed to answering with an error)."""


def _etag(sha: str) -> str:
    return f'"{sha}"'


@dataclass(frozen=True)
class Download:
    """Result of :meth:`ZooClient.download`: ``status`` 200 (``path`` set) or 304."""

    status: int
    name: str
    version: int | None
    sha256: str | None
    path: Path | None


class ZooClient:
    """A thin, typed client for the zoo server's REST API."""

    def __init__(
        self, url: str | None = None, token: str | None = None, *, timeout: float = 60.0
    ) -> None:
        import httpx

        url = url or os.environ.get("PHYSKAN_ZOO_URL")
        if not url:
            raise ZooError("no zoo server URL: pass --url/url= or set PHYSKAN_ZOO_URL")
        self.url = url.rstrip("/")
        token = token or os.environ.get("PHYSKAN_ZOO_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.url, timeout=timeout, headers=headers)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> ZooClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            return self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ZooConnectionError(f"cannot reach zoo server {self.url}: {exc}") from None

    @staticmethod
    def _check(resp: Any) -> Any:
        if resp.status_code < 400:
            return resp
        try:
            body = resp.json()
            msg = f"{body.get('error', 'error')}: {body.get('detail', '')}"
        except ValueError:
            msg = resp.text[:200]
        raise ZooError(f"zoo server answered {resp.status_code} ({msg})")

    def health(self) -> dict[str, Any]:
        """``GET /healthz``."""
        return self._check(self._request("GET", "/healthz")).json()

    def list_models(
        self,
        search: str | None = None,
        tag: str | None = None,
        problem: str | None = None,
        page: int = 1,
        per_page: int = 50,
    ) -> dict[str, Any]:
        """``GET /api/models``: ``{"items": [...], "total", "page", "per_page"}``."""
        params = {"search": search, "tag": tag, "problem": problem, "page": page}
        params = {k: v for k, v in params.items() if v is not None}
        params["per_page"] = per_page
        return self._check(self._request("GET", "/api/models", params=params)).json()

    def get_model(self, name: str) -> dict[str, Any]:
        """``GET /api/models/{name}``: versions, aliases and cards."""
        return self._check(self._request("GET", f"/api/models/{name}")).json()

    def download(
        self,
        spec: str | Spec,
        directory: Path,
        *,
        etag: str | None = None,
        filename: str = "{version}.h5",
    ) -> Download:
        """Stream a model file into ``directory`` (atomically, hash-verified).

        With ``etag`` (a sha256) the server may answer ``304``; then nothing
        is written. ``filename`` is formatted with ``name`` and ``version``.
        """
        import httpx

        spec = parse_spec(spec) if isinstance(spec, str) else spec
        headers = {"If-None-Match": _etag(etag)} if etag else {}
        directory.mkdir(parents=True, exist_ok=True)
        tmp = _fs.temp_path(directory)
        url = f"/api/models/{spec.name}/{spec.ref}/file"
        try:
            with self._http.stream("GET", url, headers=headers) as resp:
                if resp.status_code == 304:
                    return Download(304, spec.name, None, etag, None)
                if resp.status_code >= 400:
                    resp.read()
                    self._check(resp)
                version = int(resp.headers["X-Zoo-Version"])
                sha = resp.headers["ETag"].strip('W/"')
                with open(tmp, "wb") as fh:
                    for chunk in resp.iter_bytes(1 << 16):
                        fh.write(chunk)
                    fh.flush()
                    os.fsync(fh.fileno())
            if verify_file(tmp) != sha:
                raise ZooError(f"download of {spec} does not match the server's sha256")
            final = directory / filename.format(name=spec.name, version=version)
            _fs.publish(tmp, final, overwrite=True)
            return Download(200, spec.name, version, sha, final)
        except httpx.HTTPError as exc:
            raise ZooConnectionError(
                f"cannot reach zoo server {self.url} to download {spec}: {exc}"
            ) from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def upload(self, path: str | os.PathLike) -> dict[str, Any]:
        """``POST /api/models`` a zoo file; the server assigns the version."""
        path = Path(path)
        verify_file(path)  # fail early, locally, with a clear message
        with open(path, "rb") as fh:
            resp = self._request(
                "POST", "/api/models", content=fh, headers={"Content-Type": "application/x-hdf5"}
            )
        return self._check(resp).json()

    def set_alias(self, name: str, alias: str, version: int) -> dict[str, Any]:
        """``PUT /api/models/{name}/aliases/{alias}`` with ``{"version": version}``."""
        resp = self._request(
            "PUT", f"/api/models/{name}/aliases/{alias}", json={"version": int(version)}
        )
        return self._check(resp).json()


class ZooCache:
    """Downloaded zoo files plus which ref resolved to which version."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root).expanduser()

    def _refs_path(self, name: str) -> Path:
        return self.root / name / "refs.json"

    def _refs(self, name: str) -> dict[str, Any]:
        with contextlib.suppress(OSError, ValueError):
            return dict(json.loads(self._refs_path(name).read_text()))
        return {}

    def lookup(self, spec: Spec) -> ModelRef | None:
        """The cached file for ``spec`` if present and its header hash is as recorded."""
        rec = self._refs(spec.name).get(spec.ref)
        if not rec:
            return None
        path = self.root / spec.name / f"{int(rec['version'])}.h5"
        try:
            if read_header(path)[1] != rec["sha256"]:
                return None
        except ZooError:
            return None
        return ModelRef(spec.name, int(rec["version"]), path, rec["sha256"])

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
    spec: str | Spec, url: str | None, cache_dir: str | os.PathLike, *, revalidate: bool = True
) -> ModelRef:
    """Return a cached, current copy of ``spec``, downloading it if needed.

    Pinned versions in the cache are used as they are. Other refs are
    revalidated by ETag; if the server cannot be reached, a cached copy is
    used with a warning.
    """
    spec = parse_spec(spec) if isinstance(spec, str) else spec
    cache = ZooCache(cache_dir)
    cached = cache.lookup(spec)
    if cached and (spec.version is not None or not revalidate):
        return cached
    try:
        with ZooClient(url) as client:
            res = client.download(
                spec, cache.root / spec.name, etag=cached.sha256 if cached else None
            )
    except ZooConnectionError as exc:
        if cached:
            warnings.warn(f"{exc}; using cached {spec} (version {cached.version})", stacklevel=2)
            return cached
        raise
    if res.status == 304 and cached:
        return cached
    assert res.version is not None and res.sha256 is not None and res.path is not None
    cache.record(spec, res.version, res.sha256)
    return ModelRef(spec.name, res.version, res.path, res.sha256)
