"""Run the zoo server with uvicorn: one process, or a supervisor and N worker processes.

``physkan zoo serve --workers N`` ends here. Workers are fresh interpreters (uvicorn's
multiprocess mode, ``spawn``) that build their app with :func:`app_from_env`; they import
neither torch nor physkan's heavy layers (``import physkan`` is lazy), so each stays at a
few tens of MB. uvicorn uses uvloop and httptools when installed (``physkan[server]``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any

from physkan.zoo.card import ZooError
from physkan.zoo.local import LocalZoo
from physkan.zoo.server import create_app
from physkan.zoo.settings import server_settings

__all__ = ["app_from_env", "default_workers", "run_server"]


def default_workers() -> int:
    """The number of CPU cores this process may use (at least 1)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


_ENV_CONFIG = "PHYSKAN_ZOO_SERVE_CONFIG"


def app_from_env() -> Any:
    """The app of one worker of :func:`run_server` (an app factory for ``uvicorn --factory``).

    Reads root and settings from ``$PHYSKAN_ZOO_SERVE_CONFIG`` (JSON, set by the parent).
    """
    try:
        config = json.loads(os.environ[_ENV_CONFIG])
    except (KeyError, ValueError):
        raise ZooError(f"${_ENV_CONFIG} is missing or not JSON: start with run_server") from None
    return create_app(
        config["root"],
        config["tokens"],
        config["max_upload_bytes"],
        config["read_timeout"],
        prepare=False,
        draw_uploads=config.get("draw_uploads", False),
    )


def run_server(
    root: str | os.PathLike,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    tokens: Iterable[str] = (),
    max_upload_bytes: int | None = None,
    read_timeout: float | None = None,
    log_level: str = "info",
    workers: int = 1,
    draw_uploads: bool = False,
) -> None:
    """Serve the zoo at ``root`` with uvicorn until interrupted (settings as in :func:`create_app`).

    ``workers`` > 1 runs that many worker processes (uvicorn's multiprocess supervisor,
    spawned fresh: they import neither torch nor ``physkan``'s heavy layers); each holds
    its own in-memory index, and uploads stay safe across them through the zoo's file
    locks and ``O_EXCL`` reservations. Stale temp files are removed and the index is
    rebuilt once, here, before the workers start.
    """
    import uvicorn

    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ZooError(f"invalid --workers: must be a whole number >= 1 (got {workers!r})")
    settings = server_settings(
        max_upload_bytes=max_upload_bytes, read_timeout=read_timeout, tokens=tokens
    )
    if workers == 1:
        app = create_app(
            root, settings.tokens, max_upload_bytes, read_timeout, draw_uploads=draw_uploads
        )
        uvicorn.run(app, host=host, port=port, log_level=log_level)
        return
    zoo = LocalZoo(root)
    zoo.root.mkdir(parents=True, exist_ok=True)
    zoo.uploads_dir.mkdir(exist_ok=True)
    zoo.cleanup()
    zoo.rebuild_index()
    os.environ[_ENV_CONFIG] = json.dumps(
        {
            "root": str(zoo.root),
            "tokens": settings.tokens,
            "max_upload_bytes": settings.max_upload_bytes,
            "read_timeout": settings.read_timeout,
            "draw_uploads": bool(draw_uploads),
        }
    )
    uvicorn.run(
        "physkan.zoo.runner:app_from_env",
        factory=True,
        host=host,
        port=port,
        log_level=log_level,
        workers=workers,
    )
