"""Crash-safe file system primitives for the zoo.

* :func:`temp_path` names a temp file in the target directory; the name embeds
  the writer's pid so that :func:`remove_stale` can tell an abandoned temp
  file (its process is gone) from one that another live process is writing.
* :func:`publish` moves a finished, fsynced temp file into place, either
  replacing (``os.replace``) or refusing to overwrite (``os.link``), then
  fsyncs the directory so the rename itself is durable.
* :func:`file_lock` is an exclusive ``fcntl`` lock, safe across processes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "TEMP_PREFIX",
    "atomic_write_bytes",
    "file_lock",
    "fsync_dir",
    "publish",
    "remove_stale",
    "temp_path",
]

TEMP_PREFIX = ".tmp-"
_GRACE_S = 60.0


def temp_path(directory: Path, suffix: str = ".h5") -> Path:
    """A fresh temp-file path in ``directory``: ``.tmp-<pid>-<random><suffix>``."""
    return directory / f"{TEMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex}{suffix}"


def fsync_dir(directory: Path) -> None:
    """fsync a directory so that renames/links inside it survive a power cut."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    """fsync the data of a file already written and closed."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(tmp: Path, final: Path, *, overwrite: bool) -> None:
    """Atomically move the fsynced file ``tmp`` to ``final`` and fsync the directory.

    With ``overwrite=False`` an existing ``final`` is never touched: the call
    raises :class:`FileExistsError` and ``tmp`` stays for the caller to remove.
    """
    if overwrite:
        os.replace(tmp, final)
    else:
        os.link(tmp, final)  # fails with FileExistsError instead of clobbering
        os.unlink(tmp)
    fsync_dir(final.parent)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: temp file, fsync, replace, fsync dir."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path.parent, suffix=path.suffix or ".tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        publish(tmp, path, overwrite=True)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``fcntl.flock`` on ``path`` (created if missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _owner_pid(name: str) -> int | None:
    """The pid embedded in a ``.tmp-<pid>-...`` name, else None."""
    if name.startswith(TEMP_PREFIX):
        head = name[len(TEMP_PREFIX) :].split("-", 1)[0]
        return int(head) if head.isdigit() else None
    return None


def remove_stale(directory: Path) -> list[Path]:
    """Delete temp files and version reservations whose writer process is gone.

    Returns the removed paths. Files of live processes (e.g. another server
    sharing the zoo) are left alone.
    """
    removed: list[Path] = []
    if not directory.is_dir():
        return removed
    for entry in directory.iterdir():
        pid: int | None = None
        if entry.name.startswith(TEMP_PREFIX):
            pid = _owner_pid(entry.name)
        elif entry.name.endswith(".reserved"):
            with contextlib.suppress(OSError, ValueError):
                pid = int(entry.read_text().strip())
        else:
            continue
        if pid is None:  # unreadable owner: only remove once clearly abandoned
            with contextlib.suppress(OSError):
                if time.time() - entry.stat().st_mtime < _GRACE_S:
                    continue
        elif _pid_alive(pid):
            continue
        with contextlib.suppress(FileNotFoundError):
            entry.unlink()
            removed.append(entry)
    return removed
