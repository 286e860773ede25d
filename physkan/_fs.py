"""Crash-safe file system primitives (atomic publish, temp files, locks).

The bottom of physkan's layers (``docs/architecture.md``): it imports nothing from physkan,
so every layer — :mod:`physkan.io`'s model files, the zoo's store, index and cache — writes
files the same way.

* :func:`atomic_file` is the one way to write a file atomically: a context manager that
  yields a temp path in the target directory and, when the block succeeds, fsyncs it and
  publishes it (below); on any error the temp file is removed and nothing appears.

* :func:`temp_path` names a temp file in the target directory; the name embeds
  the writer's pid so that :func:`clean_stale_temps` can tell an abandoned
  temp file (its process is gone) from one that another live process is
  writing; :func:`remove_stale` also removes abandoned ``.N.reserved`` markers.
* :func:`publish` moves a finished, fsynced temp file into place, either
  replacing (``os.replace``) or refusing to overwrite (``os.link``), then
  fsyncs the directory so the rename itself is durable.
* :func:`file_lock` is an exclusive ``fcntl`` lock, safe across processes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "TEMP_PREFIX",
    "atomic_file",
    "atomic_write_bytes",
    "clean_stale_temps",
    "file_lock",
    "find_stale",
    "fsync_dir",
    "fsync_file",
    "is_stale",
    "publish",
    "remove_stale",
    "temp_path",
]

TEMP_PREFIX = ".tmp-"
RESERVED_SUFFIX = ".reserved"
#: An unreadable owner (empty reservation marker) is given this long to appear.
GRACE_S = 60.0
#: No writer (zoo or model file) runs this long: older temp files are abandoned whatever their pid says.
MAX_WRITER_AGE_S = 24 * 3600.0
_MAX_PID = 1 << 22


def temp_path(directory: Path, suffix: str = ".h5") -> Path:
    """A fresh temp-file path in ``directory``: ``.tmp-<pid>-<random><suffix>``."""
    return directory / f"{TEMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex}{suffix}"


def fsync_file(path: Path) -> None:
    """fsync the data of a file already written and closed (or a directory's entries)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(directory: Path) -> None:
    """fsync a directory so that renames/links inside it survive a power cut."""
    fsync_file(directory)


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


@contextlib.contextmanager
def atomic_file(path: Path, *, overwrite: bool = True) -> Iterator[Path]:
    """Write ``path`` atomically: yield a temp path next to it, then fsync and publish it.

    The caller writes (and closes) the yielded temp file inside the ``with`` block. When the
    block succeeds the file is fsynced and moved into place with :func:`publish` (so with
    ``overwrite=False`` an existing ``path`` raises :class:`FileExistsError`); on any error
    the temp file is removed and ``path`` is untouched. The parent directory is created.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path.parent, suffix=path.suffix or ".tmp")
    try:
        yield tmp
        fsync_file(tmp)
        publish(tmp, path, overwrite=overwrite)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: temp file, fsync, replace, fsync dir."""
    with atomic_file(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)


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


def _parse_pid(text: str) -> int | None:
    """A plausible pid from ``text`` (ASCII digits, 1..2**22), else None."""
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 9:
        return None
    pid = int(text)
    return pid if 0 < pid <= _MAX_PID else None


def _owner_pid(name: str) -> int | None:
    """The pid embedded in a ``.tmp-<pid>-...`` name, else None."""
    if name.startswith(TEMP_PREFIX):
        return _parse_pid(name[len(TEMP_PREFIX) :].split("-", 1)[0])
    return None


def is_stale(path: Path, *, now: float | None = None) -> bool:
    """Whether the temp file or ``.N.reserved`` marker ``path`` was abandoned.

    The owner is the pid in the name (temp files) or in the content
    (reservations). It is stale when the owner process is gone; when the
    owner cannot be read, once it is older than :data:`GRACE_S` (a writer
    fills in the pid right after creating the marker); and in any case once
    it is older than :data:`MAX_WRITER_AGE_S`, which no writer lives for
    (that also covers a recycled pid).
    """
    try:
        st = path.lstat()
    except OSError:
        return False
    age = (time.time() if now is None else now) - st.st_mtime
    if age > MAX_WRITER_AGE_S:
        return True
    pid: int | None = None
    if path.name.startswith(TEMP_PREFIX):
        pid = _owner_pid(path.name)
    elif path.name.endswith(RESERVED_SUFFIX) and stat.S_ISREG(st.st_mode):
        with contextlib.suppress(OSError, UnicodeDecodeError), open(path, "rb") as fh:
            pid = _parse_pid(fh.read(32).decode("ascii"))
    if pid is None:
        return age > GRACE_S
    return not _pid_alive(pid)


def find_stale(
    directory: Path, *, reservations: bool = False, recursive: bool = False
) -> list[Path]:
    """Abandoned ``.tmp-*`` files in ``directory`` (see :func:`is_stale`); nothing is removed.

    With ``reservations`` also ``.N.reserved`` markers; with ``recursive`` also
    in subdirectories (symlinks are never followed). A missing or unreadable
    directory yields nothing.
    """
    found: list[Path] = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return found
    now = time.time()
    for entry in entries:
        path = Path(entry.path)
        try:
            is_dir = entry.is_dir(follow_symlinks=False)
        except OSError:
            continue
        if is_dir:
            if recursive:
                found += find_stale(path, reservations=reservations, recursive=True)
            continue
        candidate = entry.name.startswith(TEMP_PREFIX) or (
            reservations and entry.name.endswith(RESERVED_SUFFIX)
        )
        if candidate and is_stale(path, now=now):
            found.append(path)
    return found


def clean_stale_temps(
    directory: Path, *, reservations: bool = False, recursive: bool = False
) -> list[Path]:
    """Delete abandoned ``.tmp-*`` files in ``directory`` and return them.

    Takes the same options as :func:`find_stale`. Files of live writers are
    left alone. Call it before writing into a directory that a killed process
    may have written to (a zoo model directory, the download cache), e.g.
    ``clean_stale_temps(cache_root, recursive=True)``.
    """
    removed: list[Path] = []
    for path in find_stale(directory, reservations=reservations, recursive=recursive):
        with contextlib.suppress(OSError):
            path.unlink()
            removed.append(path)
    return removed


def remove_stale(directory: Path) -> list[Path]:
    """Delete temp files and version reservations whose writer is gone.

    Returns the removed paths. Files of live processes (e.g. another server
    sharing the zoo) are left alone.
    """
    return clean_stale_temps(directory, reservations=True)
