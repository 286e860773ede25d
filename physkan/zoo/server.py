"""The zoo server: a FastAPI app over a :class:`~physkan.zoo.local.LocalZoo`.

Endpoints (OpenAPI docs at ``/docs``)::

    GET  /healthz
    GET  /api/models?search=&tag=&problem=&page=&per_page=
    GET  /api/models/{name}
    GET  /api/models/{name}/{version_or_alias}/file      ETag = payload sha256
    POST /api/models                    raw HDF5 body, Bearer token
    PUT  /api/models/{name}/aliases/{alias}   {"version": N}, Bearer token
    GET  /  and  /models/{name}         HTML pages (physkan.zoo.web; JSON if Accept prefers it)

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

import contextlib
import gzip
import hmac
import json
import os
import re
import sys
from collections.abc import Iterable
from email.utils import formatdate
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, Field

from physkan import _fs
from physkan.zoo.card import Spec, ZooError, physkan_version, validate_name
from physkan.zoo.draw_queue import DrawQueue
from physkan.zoo.hdf5_guard import DeclaredSizeError
from physkan.zoo.index_entries import matches
from physkan.zoo.live_index import LiveIndex
from physkan.zoo.local import LocalZoo, ModelRef
from physkan.zoo.responses import _CODES, ApiError, SmallFileCache, etag_matches, stream_body
from physkan.zoo.settings import (
    DEFAULT_MAX_UPLOAD_BYTES,
    DEFAULT_READ_TIMEOUT_S,
    ServerSettings,
    load_tokens,
    server_settings,
)
from physkan.zoo.store import read_model_file
from physkan.zoo.web import add_web_routes

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

#: JSON bodies at least this long are gzipped for clients that accept it
GZIP_MIN_BYTES = 500
#: encoded list/detail responses kept per worker (dropped whenever the index changes)
_RESPONSE_CACHE_SIZE = 1024
# a version in a URL or a Content-Length: 1-18 ASCII digits (str.isdigit() also accepts
# "³", and int() reads "٣" as 3)
_ASCII_INT = re.compile(r"[0-9]{1,18}")


def create_app(
    root: str | os.PathLike,
    tokens: Iterable[str] = (),
    max_upload_bytes: int | None = None,
    read_timeout: float | None = None,
    *,
    prepare: bool = True,
    draw_uploads: bool = False,
) -> Any:
    """Build the FastAPI app serving the zoo at ``root``.

    List and detail answers come from a :class:`~physkan.zoo.live_index.LiveIndex`
    (no disk read per request) and are encoded once per index change (gzip for clients
    that accept it); downloads are file responses with ``ETag`` (the payload sha256),
    ``Last-Modified``, ``HEAD`` and ``Range``.

    ``max_upload_bytes`` (default 256 MiB) bounds an upload's body and the
    data its HDF5 file declares; an upload body that stalls for
    ``read_timeout`` seconds (default 30) is answered 408. Bad settings raise
    :class:`ZooError` naming the option. Creating the app removes stale temp
    files left by dead writers and rebuilds the index, so a server restarted
    after a crash starts clean (``prepare=False`` skips that: the worker processes of
    :func:`run_server` leave it to their parent). With ``draw_uploads`` each accepted
    upload is drawn for its web page in a child process (:mod:`physkan.zoo.draw_queue`).
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
    if prepare:
        zoo.cleanup()
        zoo.rebuild_index()
    live = LiveIndex(zoo)
    live.models()  # derive now, not on the first request
    token_list = settings.tokens
    cache: dict[tuple, tuple[int, bytes, bytes | None]] = {}
    files = SmallFileCache()

    app = FastAPI(title="physkan model zoo", version=physkan_version())
    app.state.zoo = zoo
    app.state.live_index = live
    app.state.settings = settings
    drawer = app.state.draw_queue = DrawQueue(zoo.root) if draw_uploads else None

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

    def json_response(request: Request, key: tuple, build: Any) -> Response:
        """``build()`` as JSON, encoded (and gzipped) once per index generation."""
        generation = live.generation
        hit = cache.get(key)
        if hit is None or hit[0] != generation:
            body = json.dumps(build(), separators=(",", ":")).encode()
            packed = gzip.compress(body, 6) if len(body) >= GZIP_MIN_BYTES else None
            if len(cache) >= _RESPONSE_CACHE_SIZE:
                cache.clear()
            hit = cache[key] = (generation, body, packed)
        headers = {"Vary": "Accept-Encoding"}
        if hit[2] is not None and "gzip" in request.headers.get("accept-encoding", ""):
            headers["Content-Encoding"] = "gzip"
            return Response(hit[2], media_type="application/json", headers=headers)
        return Response(hit[1], media_type="application/json", headers=headers)

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {
            "status": "ok",
            "version": physkan_version(),
            "pid": os.getpid(),
            "torch_loaded": "torch" in sys.modules,
        }

    @app.get("/api/models")
    async def list_models(
        request: Request,
        search: str | None = None,
        tag: str | None = None,
        problem: str | None = None,
        page: int = Query(1, ge=1),
        per_page: int = Query(50, ge=1, le=500),
    ) -> Response:
        def build() -> dict[str, Any]:
            items = [s for s in live.summaries() if matches(s, search, tag, problem)]
            start = (page - 1) * per_page
            return {
                "items": items[start : start + per_page],
                "total": len(items),
                "page": page,
                "per_page": per_page,
            }

        live.models()  # refresh first: the cache key's generation must be current
        return json_response(request, ("list", search, tag, problem, page, per_page), build)

    @app.get("/api/models/{name}")
    async def get_model(name: str, request: Request) -> Response:
        checked_name(name)
        entry = live.entry(name)  # derived in memory: a GET never writes
        if entry is None or not entry["versions"]:
            raise ApiError(404, f"no model named {name!r}")

        def build() -> dict[str, Any]:
            return {
                "name": name,
                "aliases": entry["aliases"],
                "versions": [{"version": int(v), **i} for v, i in entry["versions"].items()],
            }

        return json_response(request, ("model", name), build)

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

    def locate(spec: Spec) -> tuple[ModelRef, os.stat_result]:
        """The file of ``spec`` and its stat, checked against the index stamp."""
        for _attempt in range(2):
            entry = live.entry(spec.name)
            try:
                found = zoo.resolve_in(spec, entry)
            except ZooError as exc:  # don't reveal the server's directory layout
                raise ApiError(404, str(exc).replace(f" in zoo {zoo.root}", "")) from None
            stamp = entry["stamp"]["files"][str(found.version)] if entry else None
            try:
                st = os.stat(found.path)
            except OSError:
                st = None
            if st is not None and [st.st_ino, st.st_size, st.st_mtime_ns] == stamp:
                return found, st
            live.invalidate(spec.name)  # changed in place since it was indexed: re-check
        raise ApiError(404, f"model {spec.name!r} changed while it was being served; retry")

    @app.api_route("/api/models/{name}/{ref}/file", methods=["GET", "HEAD"])
    async def download(name: str, ref: str, request: Request) -> Response:
        checked_name(name)
        spec = checked_ref(name, ref)
        found, st = locate(spec)
        headers = {
            "ETag": f'"{found.sha256}"',
            "X-Zoo-Name": found.name,
            "X-Zoo-Version": str(found.version),
            "Cache-Control": "public, max-age=31536000, immutable"
            if spec.version is not None
            else "no-cache",
        }
        if etag_matches(request.headers.get("if-none-match"), found.sha256):
            return Response(status_code=304, headers=headers)
        body = None if "range" in request.headers else files.get(found.path, st)
        if body is not None:  # small file, unchanged since read: no file I/O at all
            headers["Last-Modified"] = formatdate(st.st_mtime, usegmt=True)
            headers["Accept-Ranges"] = "bytes"
            headers["Content-Disposition"] = (
                f'attachment; filename="{found.name}-{found.version}.h5"'
            )
            if request.method == "HEAD":
                headers["Content-Length"] = str(len(body))
                return Response(None, media_type="application/x-hdf5", headers=headers)
            return Response(body, media_type="application/x-hdf5", headers=headers)
        return FileResponse(
            found.path,
            media_type="application/x-hdf5",
            filename=f"{found.name}-{found.version}.h5",
            headers=headers,
            stat_result=st,  # no second stat in a worker thread
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
        if drawer is not None:
            drawer.submit(ref.name, ref.version)
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
                async for chunk in stream_body(request, settings.read_timeout):
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

    add_web_routes(app, zoo, live, api_list=list_models, api_model=get_model)
    return app


def run_server(root: str | os.PathLike, **options: Any) -> None:
    """Serve the zoo at ``root``: :func:`physkan.zoo.runner.run_server` (kept here for callers)."""
    from physkan.zoo.runner import run_server as run

    run(root, **options)
