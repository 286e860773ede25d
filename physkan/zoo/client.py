"""HTTP client for a zoo server (httpx); the download cache is :mod:`physkan.zoo.cache`.

The server is not trusted. Every answer is checked before it is used: the
status code, the JSON shape (pydantic, strict), the ``ETag`` (a quoted
sha256) and ``X-Zoo-Version`` (an ASCII integer >= 1) headers. A download is
streamed into a temp file under a byte cap and a deadline, then fully
verified (payload sha256 = ETag, card name = the name asked for, card version
= ``X-Zoo-Version`` = the version asked for) before it is moved into place.
File names are built from the (locally validated) spec and the checked
version only. Anything wrong raises :class:`~physkan.zoo.card.ZooError`. The JSON shapes
and text checks are in :mod:`physkan.zoo.answers`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from physkan import _fs
from physkan.zoo.answers import (
    DIGITS_RE,
    AliasSetAnswer,
    AnswerT,
    HealthAnswer,
    ModelInfoAnswer,
    ModelListAnswer,
    UploadedAnswer,
    positive_int,
    printable,
    reasons,
)
from physkan.zoo.card import ModelCard, Spec, ZooError, parse_spec, validate_name
from physkan.zoo.store import StoredModel, read_model_file

__all__ = [
    "DEFAULT_DOWNLOAD_TIMEOUT_S",
    "DEFAULT_MAX_DOWNLOAD_BYTES",
    "MAX_DOWNLOAD_ENV",
    "Download",
    "ZooClient",
    "ZooConnectionError",
    "remove_stale_temps",
]

DEFAULT_MAX_DOWNLOAD_BYTES = 512 * 1024 * 1024
"""Largest model file a client downloads unless told otherwise (the server's
default upload limit is 256 MiB)."""
MAX_DOWNLOAD_ENV = "PHYSKAN_ZOO_MAX_DOWNLOAD_BYTES"
DEFAULT_DOWNLOAD_TIMEOUT_S = 900.0
"""Wall-clock deadline of one whole download (the per-read timeout is separate)."""
MAX_JSON_BYTES = 32 * 1024 * 1024
_MAX_ERROR_BYTES = 64 * 1024
_STALE_TEMP_S = 3600.0
_SHA_RE = re.compile(r"[0-9a-f]{64}")
_ETAG_RE = re.compile(r'(?:W/)?"([0-9a-f]{64})"')


class ZooConnectionError(ZooError):
    """The server could not be reached (as opposed to answering with an error)."""


def _etag(sha: str) -> str:
    return f'"{sha}"'


def max_download_bytes_from_env() -> int:
    """``$PHYSKAN_ZOO_MAX_DOWNLOAD_BYTES`` if set (checked), else the default cap."""
    raw = os.environ.get(MAX_DOWNLOAD_ENV)
    if raw is None or not raw.strip():
        return DEFAULT_MAX_DOWNLOAD_BYTES
    try:
        return positive_int(raw, MAX_DOWNLOAD_ENV)
    except ValueError as exc:
        raise ZooError(f"{exc} (give a number of bytes, e.g. 536870912)") from None


def check_zoo_file(path: Path, source: str, max_bytes: int | None = None) -> StoredModel:
    """Fully read and hash-check an untrusted zoo file; any failure is a :class:`ZooError`.

    :func:`~physkan.zoo.store.read_model_file` first runs the HDF5 safety
    check (:mod:`physkan.zoo.hdf5_guard`: no links out of the file, declared
    data at most ``max_bytes`` and the file's size). A hostile file that trips
    the reader in an unexpected way is refused like a corrupt one.
    """
    try:
        return read_model_file(path, verify=True, max_bytes=max_bytes)
    except ZooError as exc:
        raise ZooError(str(exc).replace(str(path), source)) from None
    except Exception as exc:  # untrusted bytes: whatever the reader trips on, refuse the file
        raise ZooError(f"{source}: not a valid zoo file ({type(exc).__name__}: {exc})") from None


def remove_stale_temps(directory: Path, max_age_s: float = _STALE_TEMP_S) -> list[Path]:
    """Delete abandoned ``.tmp-*`` files in ``directory``; return what was removed.

    A temp file is abandoned when its writer process is gone (its pid is in
    the name, see :func:`physkan._fs.clean_stale_temps`) or when it is
    older than ``max_age_s``: longer than a download may take, so this also
    covers a pid that was reused by an unrelated process.
    """
    removed = _fs.clean_stale_temps(directory)
    if not directory.is_dir():
        return removed
    now = time.time()
    for entry in directory.iterdir():
        if not entry.name.startswith(_fs.TEMP_PREFIX):
            continue
        with contextlib.suppress(FileNotFoundError):
            if entry.is_file() and now - entry.stat().st_mtime > max_age_s:
                entry.unlink()
                removed.append(entry)
    return removed


@dataclass(frozen=True)
class Download:
    """Result of :meth:`ZooClient.download`: ``status`` 200 (``path`` set) or 304."""

    status: int
    name: str
    version: int | None
    sha256: str | None
    path: Path | None


class ZooClient:
    """A typed client for the zoo server's REST API that checks every answer.

    ``timeout`` bounds connecting and each read; ``download_timeout`` bounds a
    whole download; ``max_download_bytes`` caps a model file (default
    ``$PHYSKAN_ZOO_MAX_DOWNLOAD_BYTES`` or 512 MiB).
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 60.0,
        max_download_bytes: int | None = None,
        download_timeout: float = DEFAULT_DOWNLOAD_TIMEOUT_S,
    ) -> None:
        import httpx

        url = url or os.environ.get("PHYSKAN_ZOO_URL")
        if not url:
            raise ZooError("no zoo server URL: pass --url/url= or set PHYSKAN_ZOO_URL")
        if not url.startswith(("http://", "https://")):
            raise ZooError(
                f"invalid zoo server URL {url!r}: it must start with http:// or https://"
            )
        if max_download_bytes is None:
            max_download_bytes = max_download_bytes_from_env()
        if type(max_download_bytes) is not int or max_download_bytes < 1:
            raise ZooError(
                f"max_download_bytes must be a positive integer, not {max_download_bytes!r}"
            )
        if not timeout > 0 or not download_timeout > 0:
            raise ZooError("timeout and download_timeout must be positive numbers of seconds")
        self.url = url.rstrip("/")
        self.max_download_bytes = int(max_download_bytes)
        self.download_timeout = float(download_timeout)
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

    # -- plumbing --------------------------------------------------------------
    def _bad(self, what: str, why: str) -> ZooError:
        return ZooError(f"zoo server {self.url} sent an invalid answer to {what}: {why}")

    @staticmethod
    def _read_capped(resp: Any, cap: int) -> tuple[bytes, bool]:
        """At most ``cap`` bytes of the body, and whether there was more."""
        buf = bytearray()
        for chunk in resp.iter_bytes():
            buf += chunk
            if len(buf) > cap:
                return bytes(buf[:cap]), True
        return bytes(buf), False

    @staticmethod
    def _status_error(status: int, body: bytes) -> ZooError:
        """The error for a 4xx/5xx answer, with the server's reason if it gave one."""
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if isinstance(data, dict) and ("error" in data or "detail" in data):
            msg = f"{data.get('error', 'error')}: {data.get('detail', '')}"
        else:
            msg = body.decode("utf-8", "replace")
        return ZooError(f"zoo server answered {status} ({printable(msg)})")

    def _call(
        self, method: str, path: str, what: str, expect: tuple[int, ...] = (200,), **kwargs: Any
    ) -> Any:
        """One JSON request: checked status, capped body, parsed JSON (shape unchecked)."""
        import httpx

        try:
            with self._http.stream(method, path, **kwargs) as resp:
                status = resp.status_code
                cap = MAX_JSON_BYTES if status in expect else _MAX_ERROR_BYTES
                body, more = self._read_capped(resp, cap)
        except httpx.HTTPError as exc:
            raise ZooConnectionError(f"cannot reach zoo server {self.url}: {exc}") from None
        if status >= 400:
            raise self._status_error(status, body)
        if status not in expect:
            raise self._bad(what, f"unexpected HTTP status {status}")
        if more:
            raise self._bad(what, f"the answer is larger than {MAX_JSON_BYTES} bytes")
        try:
            return json.loads(body)
        except ValueError:
            raise self._bad(what, "the answer is not JSON") from None

    def _shaped(self, model: type[AnswerT], data: Any, what: str) -> AnswerT:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise self._bad(what, reasons(exc)) from None

    # -- endpoints -------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """``GET /healthz``."""
        data = self._call("GET", "/healthz", "GET /healthz")
        self._shaped(HealthAnswer, data, "GET /healthz")
        return data

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
        what = "the model list"
        data = self._call("GET", "/api/models", what, params=params)
        self._shaped(ModelListAnswer, data, what)
        return data

    def get_model(self, name: str) -> dict[str, Any]:
        """``GET /api/models/{name}``: versions, aliases and cards (each card checked)."""
        validate_name(name)
        what = f"the versions of {name!r}"
        data = self._call("GET", f"/api/models/{name}", what)
        info = self._shaped(ModelInfoAnswer, data, what)
        if info.name != name:
            raise self._bad(what, f"it describes model {info.name!r}")
        for i, entry in enumerate(info.versions):
            try:
                card = ModelCard.model_validate(entry.card)
            except ValidationError as exc:
                raise self._bad(what, f"versions.{i}.card: {reasons(exc)}") from None
            same = type(entry.card.get("version")) is int and card.version == entry.version
            if card.name != name or not same:
                raise self._bad(
                    what,
                    f"version {entry.version} has the card of {card.name}:{card.version}",
                )
        return data

    def _version_header(self, headers: Any, what: str) -> int:
        try:
            return positive_int(headers.get("X-Zoo-Version"), "X-Zoo-Version header")
        except ValueError as exc:
            raise self._bad(what, str(exc)) from None

    def _etag_header(self, headers: Any, what: str) -> str:
        raw = headers.get("ETag")
        if raw is None:
            raise self._bad(what, "missing ETag header")
        match = _ETAG_RE.fullmatch(raw.strip())
        if not match:
            raise self._bad(what, f"ETag {printable(raw, 80)!r} is not a quoted sha256")
        return match.group(1)

    def download(
        self,
        spec: str | Spec,
        directory: Path,
        *,
        etag: str | None = None,
        filename: str = "{version}.h5",
    ) -> Download:
        """Stream a model file into ``directory`` (capped, verified, atomic).

        With ``etag`` (a sha256) the server may answer ``304``; then nothing
        is written. ``filename`` is formatted with ``name`` and ``version``
        (the spec's name and the checked version). Stale temp files of earlier,
        killed downloads in ``directory`` are removed first.
        """
        import httpx

        spec = parse_spec(spec) if isinstance(spec, str) else spec
        if etag is not None and not _SHA_RE.fullmatch(etag):
            raise ZooError(f"invalid cached sha256 {etag!r}")
        what = f"the download of {spec}"
        headers = {"If-None-Match": _etag(etag)} if etag else {}
        directory.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(directory, max(_STALE_TEMP_S, 2 * self.download_timeout))
        tmp = _fs.temp_path(directory)
        url = f"/api/models/{spec.name}/{spec.ref}/file"
        try:
            with self._http.stream("GET", url, headers=headers) as resp:
                if resp.status_code == 304:
                    return self._not_modified(resp, spec, etag, what)
                if resp.status_code >= 400:
                    raise self._status_error(
                        resp.status_code, self._read_capped(resp, _MAX_ERROR_BYTES)[0]
                    )
                if resp.status_code != 200:
                    raise self._bad(what, f"unexpected HTTP status {resp.status_code}")
                version, sha = self._check_file_headers(resp.headers, spec, what)
                self._stream_to(resp, tmp, what)
            self._check_file(tmp, spec, version, sha, what)
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

    def _not_modified(self, resp: Any, spec: Spec, etag: str | None, what: str) -> Download:
        if not etag:
            raise self._bad(what, "304 Not Modified, but no cached copy was offered")
        if resp.headers.get("ETag") is not None and self._etag_header(resp.headers, what) != etag:
            raise self._bad(what, "304 Not Modified with an ETag other than the cached one")
        version = None
        if resp.headers.get("X-Zoo-Version") is not None:
            version = self._version_header(resp.headers, what)
            if spec.version is not None and version != spec.version:
                raise self._bad(what, f"asked for version {spec.version}, got {version}")
        return Download(304, spec.name, version, etag, None)

    def _check_file_headers(self, headers: Any, spec: Spec, what: str) -> tuple[int, str]:
        """``(version, sha256)`` from a 200 answer's headers, checked against ``spec``."""
        version = self._version_header(headers, what)
        sha = self._etag_header(headers, what)
        if spec.version is not None and version != spec.version:
            raise self._bad(what, f"asked for version {spec.version}, got version {version}")
        name = headers.get("X-Zoo-Name")
        if name is not None and name != spec.name:
            raise self._bad(what, f"asked for model {spec.name!r}, got {printable(name, 80)!r}")
        length = headers.get("Content-Length")
        if length is not None:
            if not DIGITS_RE.fullmatch(length.strip()):
                raise self._bad(what, f"Content-Length {printable(length, 40)!r} is not a number")
            if int(length) > self.max_download_bytes:
                raise ZooError(self._too_big(what, f"{int(length)} bytes"))
        return version, sha

    def _too_big(self, what: str, size: str) -> str:
        return (
            f"{what} from {self.url} is {size}, more than the limit of "
            f"{self.max_download_bytes} bytes (raise it with {MAX_DOWNLOAD_ENV} "
            "or max_download_bytes=)"
        )

    def _stream_to(self, resp: Any, tmp: Path, what: str) -> None:
        """Write the body to ``tmp`` (fsynced), aborting past the byte cap or the deadline."""
        deadline = time.monotonic() + self.download_timeout
        size = 0
        with open(tmp, "wb") as fh:
            for chunk in resp.iter_bytes():
                size += len(chunk)
                if size > self.max_download_bytes:
                    raise ZooError(self._too_big(what, "larger than that"))
                if time.monotonic() > deadline:
                    raise ZooError(
                        f"{what} from {self.url} took longer than {self.download_timeout:g} s"
                    )
                fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())

    def _check_file(self, tmp: Path, spec: Spec, version: int, sha: str, what: str) -> None:
        """The downloaded file must be a valid zoo file with exactly the promised identity."""
        stored = check_zoo_file(tmp, f"{what} from {self.url}", self.max_download_bytes)
        if stored.sha256 != sha:
            raise self._bad(what, "the file's sha256 does not match the ETag")
        card = stored.card
        if card.name != spec.name:
            raise self._bad(what, f"asked for model {spec.name!r}, the file holds {card.name!r}")
        if card.version != version:
            raise self._bad(
                what, f"X-Zoo-Version says {version}, the file holds version {card.version}"
            )

    def upload(self, path: str | os.PathLike) -> dict[str, Any]:
        """``POST /api/models`` a zoo file; the server assigns the version."""
        path = Path(path)
        stored = check_zoo_file(path, str(path))  # fail early, locally, with a clear message
        what = f"the upload of {path.name}"
        with open(path, "rb") as fh:
            data = self._call(
                "POST",
                "/api/models",
                what,
                expect=(200, 201),
                content=fh,
                headers={"Content-Type": "application/x-hdf5"},
            )
        res = self._shaped(UploadedAnswer, data, what)
        if res.name != stored.card.name:
            raise self._bad(what, f"stored it as {res.name!r}, not {stored.card.name!r}")
        return data

    def set_alias(self, name: str, alias: str, version: int) -> dict[str, Any]:
        """``PUT /api/models/{name}/aliases/{alias}`` with ``{"version": version}``."""
        validate_name(name)
        validate_name(alias, "alias")
        what = f"setting {name}@{alias}"
        data = self._call(
            "PUT", f"/api/models/{name}/aliases/{alias}", what, json={"version": int(version)}
        )
        res = self._shaped(AliasSetAnswer, data, what)
        if (res.name, res.alias, res.version) != (name, alias, int(version)):
            raise self._bad(what, f"it set {res.name}@{res.alias} -> {res.version}")
        return data
