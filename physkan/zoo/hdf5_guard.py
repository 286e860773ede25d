"""Inspect an untrusted HDF5 file without following anything out of it.

An HDF5 file can make its reader open other files: *external links* (a link
to an object in another file), *external storage* (a dataset whose raw bytes
live in a file path), *virtual datasets* (a dataset assembled from other
files) and user-defined links. A zoo file needs none of them, and a server
that followed them would read its own disk for whoever uploads a file.

An HDF5 file can also declare far more data than it holds: a chunked dataset
with no chunks written reads back as fill values (a 10 KB file declaring
512 MB), and a compressed chunk can inflate a thousandfold.

:func:`check_hdf5_safe` walks every link and object with the low-level h5py
API and reads no dataset values. It accepts a file only if

* every link is a hard link (no soft, external or user-defined links);
* no dataset has external storage, a virtual layout or a filter other than
  shuffle/fletcher32 (zoo files are written uncompressed);
* variable-length data (strings) appears only in single-element datasets and
  attributes, so a read cannot multiply heap objects;
* the *declared* size of all datasets and attributes (elements × item size)
  fits both ``max_bytes`` and the file's own size, so nothing sparse or
  compressed is ever expanded.

It raises :class:`UnsafeHDF5Error` (a :class:`~physkan.zoo.card.ZooError`) or,
for too much declared data, its subclass :class:`DeclaredSizeError`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from physkan.zoo.card import ZooError

__all__ = [
    "MAX_OBJECTS",
    "DeclaredSizeError",
    "HDF5Summary",
    "UnsafeHDF5Error",
    "check_hdf5_safe",
    "check_open_file",
]

#: Most links + attributes a zoo file may have (a large KAN has a few hundred).
MAX_OBJECTS = 100_000


class UnsafeHDF5Error(ZooError):
    """The file uses an HDF5 feature a zoo file must not use (links out, external data ...)."""


class DeclaredSizeError(UnsafeHDF5Error):
    """The file declares more data than allowed (``declared`` > ``limit`` bytes)."""

    def __init__(self, message: str, declared: int, limit: int) -> None:
        super().__init__(message)
        self.declared, self.limit = declared, limit


@dataclass
class HDF5Summary:
    """What a successful check counted."""

    declared_bytes: int = 0
    objects: int = 0


def check_hdf5_safe(
    path: str | os.PathLike, max_bytes: int | None = None, *, source: str | None = None
) -> HDF5Summary:
    """Check the HDF5 file at ``path`` (see the module docstring); return what was counted.

    ``max_bytes`` bounds the declared data (e.g. the server's upload limit);
    the file's own size always bounds it too. ``source`` names the file in
    messages (default: the path). Raises :class:`DeclaredSizeError`,
    :class:`UnsafeHDF5Error`, or :class:`ZooError` for an unreadable file.
    """
    import h5py

    path = Path(path)
    source = source or str(path)
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ZooError(
            f"{source}: not a readable HDF5 file (truncated or corrupt?): {exc}"
        ) from None
    with f:
        return check_open_file(f, max_bytes, source=source, file_size=path.stat().st_size)


def check_open_file(
    f: Any,
    max_bytes: int | None = None,
    *,
    source: str,
    file_size: int | None = None,
    only: Sequence[str] | None = None,
) -> HDF5Summary:
    """Like :func:`check_hdf5_safe` for an open ``h5py.File`` (reads no dataset values).

    With ``only`` (paths such as ``"card"``) just the root's attributes and
    those objects are checked: enough for a reader that touches nothing else,
    and much cheaper than walking a file with hundreds of tensors.
    """
    walker = _Walker(source)
    try:
        if only is None:
            walker.walk(f.id)
        else:
            walker.check_paths(f.id, only)
    except ZooError:
        raise
    except Exception as exc:  # a damaged file fails while being walked
        raise ZooError(f"{source}: corrupt HDF5 file ({type(exc).__name__}: {exc})") from None
    declared = walker.summary.declared_bytes
    if max_bytes is not None and declared > max_bytes:
        raise DeclaredSizeError(
            f"{source}: declares {declared} bytes of data, over the limit of {max_bytes} bytes",
            declared,
            max_bytes,
        )
    if file_size is not None and declared > file_size:
        raise DeclaredSizeError(
            f"{source}: declares {declared} bytes of data but the file holds only {file_size} "
            "bytes (sparse or compressed data is not allowed in zoo files)",
            declared,
            file_size,
        )
    return walker.summary


class _Walker:
    """Depth-first walk over hard links from the root group, counting declared bytes."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.summary = HDF5Summary()
        # object address -> declared bytes it added (a reader reads it once per link)
        self.seen: dict[tuple[int, int], int] = {}

    def refuse(self, where: str, what: str) -> UnsafeHDF5Error:
        return UnsafeHDF5Error(f"{self.source}: {where}: {what}; zoo files may not use it")

    def count(self, nbytes: int = 0) -> None:
        self.summary.objects += 1
        self.summary.declared_bytes += nbytes
        if self.summary.objects > MAX_OBJECTS:
            raise UnsafeHDF5Error(f"{self.source}: more than {MAX_OBJECTS} objects and attributes")

    def walk(self, root: Any) -> None:
        from h5py import h5g

        stack = [("/", root)]
        while stack:
            path, group = stack.pop()
            self.check_attrs(path, group)
            for raw in group:  # H5Literate: link names only, nothing is opened
                name = raw.decode("utf-8", "replace")
                child = f"{path.rstrip('/')}/{name}"
                obj = self.open_hard_link(group, raw, child)
                if obj is None:
                    continue
                if isinstance(obj, h5g.GroupID):
                    stack.append((child, obj))
                else:
                    self.check_linked_object(child, obj)

    def check_paths(self, root: Any, paths: Sequence[str]) -> None:
        """Check the root's attributes and each object at ``paths`` (hard links all the way)."""
        from h5py import h5g

        self.check_attrs("/", root)
        for path in paths:
            group, where = root, ""
            for part in path.strip("/").split("/"):
                where = f"{where}/{part}"
                if not group.links.exists(part.encode()):  # the link only, not its target
                    raise ZooError(f"{self.source}: corrupt zoo file (no {where})")
                obj = self.open_hard_link(group, part.encode(), where)
                if obj is None or not isinstance(obj, h5g.GroupID):
                    break
                group = obj
            if obj is not None and not isinstance(obj, h5g.GroupID):
                self.check_linked_object(where, obj)

    def open_hard_link(self, group: Any, raw: bytes, path: str) -> Any:
        """Open the object of a hard link; refuse any other link.

        Returns None for an object seen before (its declared bytes count again).
        """
        from h5py import h5l, h5o

        if b"/" in raw or raw in (b"", b"."):
            raise self.refuse(path, "a link name that is a path")
        kind = group.links.get_info(raw).type
        if kind == h5l.TYPE_EXTERNAL:
            raise self.refuse(path, "an external link (to another file)")
        if kind == h5l.TYPE_SOFT:
            raise self.refuse(path, "a soft link")
        if kind != h5l.TYPE_HARD:
            raise self.refuse(path, "a user-defined link")
        self.count()
        obj = h5o.open(group, raw)
        info = h5o.get_info(obj)
        key = (info.fileno, info.addr)
        if key in self.seen:  # another hard link to an object already checked
            self.summary.declared_bytes += self.seen[key]
            return None
        self.seen[key] = 0
        return obj

    def check_linked_object(self, path: str, obj: Any) -> None:
        """:meth:`check_object`, remembering its bytes for further links to it."""
        from h5py import h5o

        before = self.summary.declared_bytes
        self.check_object(path, obj)
        info = h5o.get_info(obj)
        self.seen[(info.fileno, info.addr)] = self.summary.declared_bytes - before

    def check_object(self, path: str, obj: Any) -> None:
        from h5py import h5d

        self.check_attrs(path, obj)
        if not isinstance(obj, h5d.DatasetID):
            return  # a committed datatype: only its attributes hold data
        plist = obj.get_create_plist()
        if plist.get_layout() == h5d.VIRTUAL:
            raise self.refuse(path, "a virtual dataset (data from other files)")
        if plist.get_external_count() > 0:
            raise self.refuse(path, "external storage (raw data in another file)")
        for i in range(plist.get_nfilters()):
            code = plist.get_filter(i)[0]
            if code not in _HARMLESS_FILTERS:
                raise self.refuse(path, f"HDF5 filter {code} (compression)")
        self.count_data(path, obj.get_space(), obj.get_type())

    def check_attrs(self, path: str, obj: Any) -> None:
        from h5py import h5a

        for i in range(h5a.get_num_attrs(obj)):
            attr = h5a.open(obj, index=i)
            name = attr.name.decode("utf-8", "replace")
            self.count()
            self.count_data(f"{path} attribute {name!r}", attr.get_space(), attr.get_type())

    def count_data(self, where: str, space: Any, tid: Any) -> None:
        npoints = int(space.get_simple_extent_npoints())
        try:
            dtype = tid.dtype
        except Exception:  # a datatype numpy cannot represent
            raise self.refuse(where, "an unsupported datatype") from None
        if dtype.hasobject and npoints > 1:
            raise self.refuse(where, "variable-length data with more than one element")
        self.summary.declared_bytes += npoints * int(tid.get_size())


# H5Z_FILTER_SHUFFLE and H5Z_FILTER_FLETCHER32 (fixed by the HDF5 format): they never
# make data bigger, unlike deflate, szip or plugin filters, whose output is unbounded.
_HARMLESS_FILTERS = frozenset({2, 3})
