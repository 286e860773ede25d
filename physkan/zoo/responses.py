"""Response helpers of the zoo server: API errors, entity tags, upload streaming, file cache."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from physkan.errors import PhyskanError

__all__ = ["ApiError", "SmallFileCache", "etag_matches", "stream_body"]

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


def etag_matches(header: str | None, sha: str) -> bool:
    """Whether an ``If-None-Match`` header matches the entity tag ``sha``."""
    if not header:
        return False
    for part in header.split(","):
        tag = part.strip()
        if tag == "*" or tag.removeprefix("W/").strip('"') == sha:
            return True
    return False


async def stream_body(request: Any, read_timeout: float) -> Any:
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


class SmallFileCache:
    """Bytes of small model files, valid while their ``(inode, size, mtime_ns)`` is unchanged.

    The server checks a file's stat on every download anyway; with this cache a small
    file is then answered from memory instead of through a worker thread's ``open`` and
    ``read`` calls. Files over ``max_file_bytes`` are not kept; past ``max_total_bytes``
    the oldest entries go first. Per worker process.
    """

    def __init__(self, max_file_bytes: int = 1 << 20, max_total_bytes: int = 16 << 20) -> None:
        self.max_file_bytes = max_file_bytes
        self.max_total_bytes = max_total_bytes
        self._data: dict[Path, tuple[tuple[int, int, int], bytes]] = {}
        self._total = 0

    def get(self, path: Path, st: os.stat_result) -> bytes | None:
        """The bytes of ``path`` if it is small and ``st`` still describes them, else None."""
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
        hit = self._data.get(path)
        if hit is not None and hit[0] == key:
            return hit[1]
        if st.st_size > self.max_file_bytes:
            return None
        try:
            with open(path, "rb") as fh:
                if os.fstat(fh.fileno()).st_ino != st.st_ino:
                    return None
                body = fh.read(self.max_file_bytes + 1)
        except OSError:
            return None
        if len(body) != st.st_size:  # changed while reading: let the file response handle it
            return None
        if hit is not None:
            self._total -= len(hit[1])
            del self._data[path]
        while self._data and self._total + len(body) > self.max_total_bytes:
            old = next(iter(self._data))
            self._total -= len(self._data.pop(old)[1])
        self._data[path] = (key, body)
        self._total += len(body)
        return body
