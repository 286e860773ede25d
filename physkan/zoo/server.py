"""The zoo server: a FastAPI app over a :class:`~physkan.zoo.local.LocalZoo`.

Endpoints (OpenAPI docs at ``/docs``)::

    GET  /healthz
    GET  /api/models?search=&tag=&problem=&page=&per_page=
    GET  /api/models/{name}
    GET  /api/models/{name}/{version_or_alias}/file      ETag = payload sha256
    POST /api/models                    raw HDF5 body, Bearer token
    PUT  /api/models/{name}/aliases/{alias}   {"version": N}, Bearer token

Uploads are streamed to ``ROOT/.uploads/.tmp-<pid>-*.h5`` (size-limited),
fully verified, then re-stamped with a fresh version and published with the
crash-safe machinery of :mod:`physkan.zoo.local`. Errors are JSON
``{"error": code, "detail": message}``.

(No ``from __future__ import annotations`` here: FastAPI must see the real
annotations of the endpoint functions defined inside :func:`create_app`.)
"""

import contextlib
import hmac
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from physkan.zoo import _fs
from physkan.zoo.card import Spec, ZooError, physkan_version, validate_name
from physkan.zoo.local import LocalZoo, summaries
from physkan.zoo.store import read_model_file

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["DEFAULT_MAX_UPLOAD_BYTES", "ApiError", "create_app", "load_tokens", "run_server"]

DEFAULT_MAX_UPLOAD_BYTES = 256 * 1024 * 1024
_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    411: "length_required",
    413: "payload_too_large",
    422: "invalid_request",
}


class ApiError(Exception):
    """An error answered as ``{"error": code, "detail": detail}`` with ``status``."""

    def __init__(
        self, status: int, detail: str, error: str | None = None, headers: dict | None = None
    ) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail
        self.error = error or _CODES.get(status, "error")
        self.headers = headers


def load_tokens(tokens_file: str | os.PathLike | None = None) -> list[str]:
    """Upload tokens from a TOML file and/or ``$PHYSKAN_ZOO_TOKENS`` (comma list).

    The file is ``tokens_file`` or ``$PHYSKAN_ZOO_TOKENS_FILE`` and holds either
    ``tokens = ["t1", "t2"]`` or a table ``[tokens]`` of ``user = "token"``.
    """
    tokens: list[str] = []
    path = tokens_file or os.environ.get("PHYSKAN_ZOO_TOKENS_FILE")
    if path:
        try:
            data = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ZooError(f"cannot read tokens file {path}: {exc}") from None
        raw = data.get("tokens", [])
        values = raw.values() if isinstance(raw, dict) else raw
        if not isinstance(values, Iterable) or isinstance(values, str):
            raise ZooError(f"{path}: 'tokens' must be a list or a table of strings")
        tokens += [str(t) for t in values]
    env = os.environ.get("PHYSKAN_ZOO_TOKENS", "")
    tokens += [t.strip() for t in env.split(",") if t.strip()]
    return tokens


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
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
) -> Any:
    """Build the FastAPI app serving the zoo at ``root``.

    Creating the app removes stale temp files left by dead writers and
    rebuilds the index, so a server restarted after a crash starts clean.
    """
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
    token_list = [t for t in tokens if t]

    app = FastAPI(title="physkan model zoo", version=physkan_version())
    app.state.zoo = zoo

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
        body = {"error": "invalid_request", "detail": jsonable_encoder(exc.errors())}
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
        versions = zoo.versions(name)
        if not versions:
            raise ApiError(404, f"no model named {name!r}")
        entry = zoo.index()["models"].get(name)
        if entry is None or len(entry["versions"]) != len(versions):
            zoo.refresh_index(name)
            entry = zoo.index()["models"].get(name, {"versions": {}})
        return {
            "name": name,
            "aliases": zoo.aliases(name),
            "versions": [{"version": int(v), **info} for v, info in entry["versions"].items()],
        }

    @app.get("/api/models/{name}/{ref}/file")
    def download(name: str, ref: str, request: Request) -> Response:
        checked_name(name)
        try:
            spec = Spec(name, version=int(ref)) if ref.isdigit() else Spec(name, alias=ref)
            if spec.alias:
                validate_name(spec.alias, "alias")
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
            stored = read_model_file(tmp, verify=True)
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
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > max_upload_bytes:
            raise ApiError(413, f"upload of {length} bytes exceeds the limit of {max_upload_bytes}")
        tmp = _fs.temp_path(zoo.uploads_dir)
        try:
            size = 0
            with open(tmp, "wb") as fh:
                async for chunk in request.stream():
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
        version: int

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


def run_server(
    root: str | os.PathLike,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    tokens: Iterable[str] = (),
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    log_level: str = "info",
) -> None:
    """Serve the zoo at ``root`` with uvicorn until interrupted."""
    import uvicorn

    app = create_app(root, tokens, max_upload_bytes)
    uvicorn.run(app, host=host, port=port, log_level=log_level)
