"""The zoo server: a FastAPI app over a :class:`~physkan.zoo.local.LocalZoo`.

Endpoints (OpenAPI docs at ``/docs``)::

    GET  /healthz
    GET  /api/models?search=&tag=&problem=&page=&per_page=
    GET  /api/models/{name}
    GET  /api/models/{name}/{version_or_alias}/file      ETag = payload sha256
    POST /api/models                    raw HDF5 body, Bearer token
    PUT  /api/models/{name}/aliases/{alias}   {"version": N}, Bearer token

Uploads are streamed to ``ROOT/.uploads/.tmp-<pid>-*.h5`` (size-limited; a
body that stalls for ``read_timeout`` seconds is answered 408 and dropped),
checked by :mod:`physkan.zoo.hdf5_guard` (hard links only, no external or
virtual data, declared data within the upload limit -- else 400/413, before
any data is read), fully verified, then re-stamped with a fresh version and
published with the crash-safe machinery of :mod:`physkan.zoo.local`. Errors
are JSON ``{"error": code, "detail": message}``; error messages never echo a
hash computed from rejected content.

(No ``from __future__ import annotations`` here: FastAPI must see the real
annotations of the endpoint functions defined inside :func:`create_app`.)
"""

import asyncio
import contextlib
import hmac
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from physkan import _fs
from physkan.errors import PhyskanError
from physkan.zoo.card import Spec, ZooError, physkan_version, validate_name
from physkan.zoo.hdf5_guard import DeclaredSizeError
from physkan.zoo.local import LocalZoo, summaries
from physkan.zoo.store import read_model_file

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "DEFAULT_MAX_UPLOAD_BYTES",
    "DEFAULT_READ_TIMEOUT_S",
    "ApiError",
    "ServerSettings",
    "create_app",
    "load_tokens",
    "run_server",
    "server_settings",
]

DEFAULT_MAX_UPLOAD_BYTES = 256 * 1024 * 1024
DEFAULT_READ_TIMEOUT_S = 30.0
# a version in a URL or a Content-Length: 1-18 ASCII digits (str.isdigit() also accepts
# "³", and int() reads "٣" as 3)
_ASCII_INT = re.compile(r"[0-9]{1,18}")
_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    411: "length_required",
    413: "payload_too_large",
    422: "invalid_request",
}


class ApiError(PhyskanError):
    """An error answered as ``{"error": code, "detail": detail}`` with ``status``."""

    def __init__(
        self, status: int, detail: str, error: str | None = None, headers: dict | None = None
    ) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail
        self.error = error or _CODES.get(status, "error")
        self.headers = headers


def _token_problem(value: object) -> str | None:
    """Why ``value`` cannot be an upload token, or None when it can."""
    if not isinstance(value, str):
        return f"must be a string, not {_kind(value)}"
    if not value:
        return "must not be empty"
    if value != value.strip():
        return "has surrounding whitespace (it would never match)"
    if not value.isascii() or not value.isprintable():
        return "must be printable ASCII (HTTP headers carry nothing else)"
    return None


def _kind(value: object) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", list: "a list"}
    return names.get(type(value), "a table" if isinstance(value, dict) else type(value).__name__)


def load_tokens(tokens_file: str | os.PathLike | None = None) -> list[str]:
    """Upload tokens from a TOML file and/or ``$PHYSKAN_ZOO_TOKENS`` (comma list).

    The file is ``tokens_file`` or ``$PHYSKAN_ZOO_TOKENS_FILE`` and holds either
    ``tokens = ["t1", "t2"]`` or a table ``[tokens]`` of ``user = "token"``.
    Every entry must be a non-empty printable ASCII string without surrounding
    whitespace; anything else raises :class:`ZooError` naming the file and the
    entry (never the token itself).
    """
    tokens: list[str] = []
    path = tokens_file or os.environ.get("PHYSKAN_ZOO_TOKENS_FILE")
    if path:
        try:
            data = tomllib.loads(Path(path).read_text())
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ZooError(f"cannot read tokens file {path}: {exc}") from None
        if "tokens" not in data:
            raise ZooError(f"tokens file {path}: no 'tokens' entry (a list or a table of strings)")
        raw = data["tokens"]
        if isinstance(raw, dict):
            entries = [(f"tokens.{key}", value) for key, value in raw.items()]
        elif isinstance(raw, list):
            entries = [(f"tokens[{i}]", value) for i, value in enumerate(raw)]
        else:
            raise ZooError(
                f"tokens file {path}: 'tokens' must be a list or a table of strings, "
                f"not {_kind(raw)}"
            )
        for entry, value in entries:
            problem = _token_problem(value)
            if problem:
                raise ZooError(f"tokens file {path}: {entry} {problem}")
            tokens.append(value)
    env = os.environ.get("PHYSKAN_ZOO_TOKENS", "")
    for i, token in enumerate(t.strip() for t in env.split(",") if t.strip()):
        problem = _token_problem(token)
        if problem:
            raise ZooError(f"$PHYSKAN_ZOO_TOKENS: token {i + 1} {problem}")
        tokens.append(token)
    return tokens


_OPTIONS = {
    "max_upload_bytes": "--max-upload-bytes",
    "read_timeout": "--read-timeout",
    "tokens": "token",
}


class ServerSettings(BaseModel):
    """Validated zoo server settings (build with :func:`server_settings`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_upload_bytes: int = Field(DEFAULT_MAX_UPLOAD_BYTES, gt=0, description="bytes")
    read_timeout: float = Field(
        DEFAULT_READ_TIMEOUT_S,
        gt=0,
        allow_inf_nan=False,
        description="seconds an upload body may stall before the server answers 408",
    )
    tokens: list[str] = Field(default_factory=list, description="upload (Bearer) tokens")

    @field_validator("tokens")
    @classmethod
    def _clean(cls, value: list[str]) -> list[str]:
        for token in value:
            problem = _token_problem(token)
            if problem:
                raise ValueError(f"an upload token {problem}")
        return value


def server_settings(
    *,
    max_upload_bytes: int | None = None,
    read_timeout: float | None = None,
    tokens: Iterable[str] = (),
) -> ServerSettings:
    """Validated server settings (None -> the default); :class:`ZooError` names the option."""
    values: dict[str, Any] = {"tokens": list(tokens)}
    if max_upload_bytes is not None:
        values["max_upload_bytes"] = max_upload_bytes
    if read_timeout is not None:
        values["read_timeout"] = read_timeout
    try:
        return ServerSettings.model_validate(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else "settings"
        option = _OPTIONS.get(field, field)
        got = "" if field == "tokens" else f" (got {err.get('input')!r})"
        where = f"{option} entry {err['loc'][1] + 1}" if len(err["loc"]) > 1 else option
        raise ZooError(f"invalid {where}: {err['msg']}{got}") from None


def _etag_matches(header: str | None, sha: str) -> bool:
    if not header:
        return False
    for part in header.split(","):
        tag = part.strip()
        if tag == "*" or tag.removeprefix("W/").strip('"') == sha:
            return True
    return False


def create_app(
    root: str | os.PathLike,
    tokens: Iterable[str] = (),
    max_upload_bytes: int | None = None,
    read_timeout: float | None = None,
) -> Any:
    """Build the FastAPI app serving the zoo at ``root``.

    ``max_upload_bytes`` (default 256 MiB) bounds an upload's body and the
    data its HDF5 file declares; an upload body that stalls for
    ``read_timeout`` seconds (default 30) is answered 408. Bad settings raise
    :class:`ZooError` naming the option. Creating the app removes stale temp
    files left by dead writers and rebuilds the index, so a server restarted
    after a crash starts clean.
    """
    settings = server_settings(
        max_upload_bytes=max_upload_bytes, read_timeout=read_timeout, tokens=tokens
    )
    max_upload_bytes = settings.max_upload_bytes
    from fastapi import FastAPI, Query, Request
    from fastapi.encoders import jsonable_encoder
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse, Response
    from pydantic import BaseModel
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException as StarletteHTTPException
    from starlette.requests import ClientDisconnect

    zoo = LocalZoo(root)
    zoo.root.mkdir(parents=True, exist_ok=True)
    zoo.uploads_dir.mkdir(exist_ok=True)
    zoo.cleanup()
    zoo.rebuild_index()
    token_list = settings.tokens

    app = FastAPI(title="physkan model zoo", version=physkan_version())
    app.state.zoo = zoo
    app.state.settings = settings

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        body = {"error": exc.error, "detail": exc.detail}
        return JSONResponse(body, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(ZooError)
    async def _zoo_error(_: Request, exc: ZooError) -> JSONResponse:
        return JSONResponse({"error": "bad_request", "detail": str(exc)}, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        body = {"error": _CODES.get(exc.status_code, "error"), "detail": exc.detail}
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        # loc/msg/type only: the echoed input may not even be JSON (inf, nan, bytes)
        errors = [{k: e.get(k) for k in ("loc", "msg", "type")} for e in exc.errors()]
        body = {"error": "invalid_request", "detail": jsonable_encoder(errors)}
        return JSONResponse(body, status_code=422)

    def check_token(request: Request) -> None:
        if not token_list:
            raise ApiError(403, "writes are disabled: the server has no tokens configured")
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(
                401, "missing bearer token", headers={"WWW-Authenticate": 'Bearer realm="zoo"'}
            )
        given = token.strip().encode()
        if not any(hmac.compare_digest(given, t.encode()) for t in token_list):
            raise ApiError(403, "invalid token")

    def checked_name(name: str) -> str:
        try:
            return validate_name(name)
        except ZooError as exc:
            raise ApiError(400, str(exc)) from None

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "version": physkan_version()}

    @app.get("/api/models")
    def list_models(
        search: str | None = None,
        tag: str | None = None,
        problem: str | None = None,
        page: int = Query(1, ge=1),
        per_page: int = Query(50, ge=1, le=500),
    ) -> dict[str, Any]:
        items = summaries(zoo.index(), search=search, tag=tag, problem=problem)
        start = (page - 1) * per_page
        return {
            "items": items[start : start + per_page],
            "total": len(items),
            "page": page,
            "per_page": per_page,
        }

    @app.get("/api/models/{name}")
    def get_model(name: str) -> dict[str, Any]:
        checked_name(name)
        entry = zoo.model_entry(name)  # derived in memory: a GET never writes
        if entry is None or not entry["versions"]:
            raise ApiError(404, f"no model named {name!r}")
        return {
            "name": name,
            "aliases": entry["aliases"],
            "versions": [{"version": int(v), **info} for v, info in entry["versions"].items()],
        }

    def checked_ref(name: str, ref: str) -> Spec:
        """A version (ASCII digits only) or an alias (a legal name, not all digits)."""
        if _ASCII_INT.fullmatch(ref):
            return Spec(name, version=int(ref))
        if ref.isascii() and ref.isdigit():  # more digits than any version
            raise ApiError(404, f"model {name!r} has no version {ref[:20]}…")
        try:
            validate_name(ref, "version or alias")
        except ZooError as exc:
            raise ApiError(400, str(exc)) from None
        return Spec(name, alias=ref)

    @app.get("/api/models/{name}/{ref}/file")
    def download(name: str, ref: str, request: Request) -> Response:
        checked_name(name)
        spec = checked_ref(name, ref)
        try:
            found = zoo.resolve(spec)
        except ZooError as exc:  # don't reveal the server's directory layout
            raise ApiError(404, str(exc).replace(f" in zoo {zoo.root}", "")) from None
        headers = {
            "ETag": f'"{found.sha256}"',
            "X-Zoo-Name": found.name,
            "X-Zoo-Version": str(found.version),
            "Cache-Control": "public, max-age=31536000, immutable"
            if spec.version is not None
            else "no-cache",
        }
        if _etag_matches(request.headers.get("if-none-match"), found.sha256):
            return Response(status_code=304, headers=headers)
        return FileResponse(
            found.path,
            media_type="application/x-hdf5",
            filename=f"{found.name}-{found.version}.h5",
            headers=headers,
        )

    def ingest(tmp: Path) -> dict[str, Any]:
        try:
            stored = read_model_file(tmp, verify=True, max_bytes=max_upload_bytes)
        except DeclaredSizeError as exc:
            detail = str(exc).replace(str(tmp), "upload")
            raise ApiError(413, detail, "payload_too_large") from None
        except ZooError as exc:
            raise ApiError(400, str(exc).replace(str(tmp), "upload"), "invalid_model") from None
        try:
            ref = zoo.add(stored.card, stored.config, stored.state)
        except ZooError as exc:
            raise ApiError(400, str(exc), "invalid_model") from None
        return {
            "name": ref.name,
            "version": ref.version,
            "sha256": ref.sha256,
            "source_sha256": stored.sha256,
            "size": ref.path.stat().st_size,
        }

    @app.post("/api/models", status_code=201)
    async def upload(request: Request) -> dict[str, Any]:
        check_token(request)
        length = request.headers.get("content-length", "")
        if _ASCII_INT.fullmatch(length) and int(length) > max_upload_bytes or len(length) > 18:
            raise ApiError(413, f"upload of {length} bytes exceeds the limit of {max_upload_bytes}")
        tmp = _fs.temp_path(zoo.uploads_dir)
        try:
            size = 0
            with open(tmp, "wb") as fh:
                async for chunk in _stream(request, settings.read_timeout):
                    size += len(chunk)
                    if size > max_upload_bytes:
                        raise ApiError(413, f"upload exceeds the limit of {max_upload_bytes} bytes")
                    fh.write(chunk)
            if size == 0:
                raise ApiError(400, "empty upload: send the HDF5 file as the request body")
            return await run_in_threadpool(ingest, tmp)
        except ClientDisconnect:
            raise ApiError(400, "client disconnected during upload") from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    class AliasBody(BaseModel):
        model_config = ConfigDict(strict=True)  # a JSON integer: not "3", true or 3.0

        version: int = Field(ge=1)

    @app.put("/api/models/{name}/aliases/{alias}")
    def put_alias(name: str, alias: str, body: AliasBody, request: Request) -> dict[str, Any]:
        check_token(request)
        checked_name(name)
        if body.version not in zoo.versions(name):
            raise ApiError(404, f"model {name!r} has no version {body.version}")
        try:
            zoo.set_alias(name, alias, body.version)
        except ZooError as exc:
            raise ApiError(400, str(exc)) from None
        return {"name": name, "alias": alias, "version": body.version}

    return app


async def _stream(request: Any, read_timeout: float) -> Any:
    """The request body in chunks; :class:`ApiError` 408 when it stalls ``read_timeout`` s."""
    chunks = request.stream().__aiter__()
    while True:
        try:
            chunk = await asyncio.wait_for(chunks.__anext__(), read_timeout)
        except StopAsyncIteration:
            return
        except asyncio.TimeoutError:
            raise ApiError(
                408,
                f"upload body stalled for more than {read_timeout:g} s",
                headers={"Connection": "close"},
            ) from None
        yield chunk


def run_server(
    root: str | os.PathLike,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    tokens: Iterable[str] = (),
    max_upload_bytes: int | None = None,
    read_timeout: float | None = None,
    log_level: str = "info",
) -> None:
    """Serve the zoo at ``root`` with uvicorn until interrupted (settings as in :func:`create_app`)."""
    import uvicorn

    app = create_app(root, tokens, max_upload_bytes, read_timeout)
    uvicorn.run(app, host=host, port=port, log_level=log_level)
