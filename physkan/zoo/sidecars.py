"""The web pages' view of a version's sidecar files (``<v>.png``, ``<v>.mathml``): light, safe.

:mod:`physkan.zoo.render` writes them in a process that has torch; the server only reads
them. Nothing read from a zoo directory is trusted: the MathML is parsed with expat (no
DOCTYPE or entity declarations accepted, at most :data:`MAX_MATHML_BYTES`) and rebuilt from a
whitelist of presentation-MathML elements and attributes, every text escaped -- so a
hand-placed file cannot inject a script or a link into a page. Results are cached per file
``(inode, size, mtime_ns)``, so a re-rendered sidecar shows up at the next request.
Standard library only (this module is imported by the server process).
"""

from __future__ import annotations

import os
import re
import threading
import xml.etree.ElementTree as ET
from html import escape
from pathlib import Path

from physkan.errors import PhyskanError

__all__ = ["MATHML_NS", "MAX_MATHML_BYTES", "MAX_PNG_BYTES", "Sidecars", "sanitize_mathml"]

MATHML_NS = "http://www.w3.org/1998/Math/MathML"
#: largest MathML sidecar read (bytes); larger ones are ignored
MAX_MATHML_BYTES = 256 * 1024
#: largest PNG sidecar served (bytes)
MAX_PNG_BYTES = 8 * 1024 * 1024
_MAX_DEPTH = 64
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

_ELEMENTS = frozenset(
    "math mrow mi mn mo ms mtext mspace msup msub msubsup mfrac msqrt mroot mover munder "  # noqa: SIM905
    "munderover mtable mtr mtd mstyle mpadded mphantom menclose".split()
)
_ATTRIBUTES = frozenset(
    "mathvariant display stretchy fence separator lspace rspace linethickness accent "  # noqa: SIM905
    "accentunder columnalign form largeop movablelimits symmetric scriptlevel displaystyle "
    "notation width".split()
)
_ATTR_VALUE = re.compile(r"[A-Za-z0-9 .#%+-]{0,40}")


class _Rejected(PhyskanError):
    pass


def _local(tag: str) -> str:
    ns, _, name = tag.rpartition("}")
    if ns and ns.lstrip("{") != MATHML_NS:
        raise _Rejected(f"element {tag!r} is not MathML")
    return name


def _write(node: ET.Element, out: list[str], depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise _Rejected("nested too deeply")
    name = _local(node.tag)
    if name not in _ELEMENTS:
        raise _Rejected(f"element {name!r} is not allowed")
    attrs = ""
    if name == "math":
        attrs += f' xmlns="{MATHML_NS}"'
    for key, value in sorted(node.attrib.items()):
        if key in _ATTRIBUTES and _ATTR_VALUE.fullmatch(value):
            attrs += f' {key}="{escape(value)}"'
    out.append(f"<{name}{attrs}>")
    out.append(escape(node.text or "", quote=False))
    for child in node:
        _write(child, out, depth + 1)
        out.append(escape(child.tail or "", quote=False))
    out.append(f"</{name}>")


def sanitize_mathml(text: str) -> str | None:
    """``text`` (one or more ``<math>`` elements) rebuilt from the whitelist, or None.

    None when it is too long, not well-formed XML, declares a DOCTYPE or entities, or
    holds anything but MathML ``<math>`` elements made of whitelisted elements.
    Attributes outside the whitelist (``style``, ``href``, event handlers) are dropped.
    """
    if len(text) > MAX_MATHML_BYTES or "<!" in text:
        return None
    try:
        root = ET.fromstring(f"<root>{text}</root>")
    except (ET.ParseError, ValueError, RecursionError):
        return None
    if (root.text or "").strip() or not len(root):
        return None
    out: list[str] = []
    try:
        for node in root:
            if _local(node.tag) != "math" or (node.tail or "").strip():
                return None
            _write(node, out, 0)
    except (_Rejected, RecursionError):
        return None
    return "".join(out)


def _stat_key(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class Sidecars:
    """Cached access to the sidecars of the zoo at ``root`` (thread-safe).

    Callers pass validated names and integer versions (one safe path component each).
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self._mathml: dict[tuple[str, int], tuple[tuple[int, int, int], str | None]] = {}
        self._lock = threading.Lock()

    def png_path(self, name: str, version: int) -> Path | None:
        """The network PNG of ``name:version`` if present, a PNG and at most 8 MiB."""
        path = self.root / name / f"{int(version)}.png"
        key = _stat_key(path)
        if key is None or not 0 < key[1] <= MAX_PNG_BYTES:
            return None
        try:
            with open(path, "rb") as fh:
                if fh.read(len(_PNG_MAGIC)) != _PNG_MAGIC:
                    return None
        except OSError:
            return None
        return path

    def mathml(self, name: str, version: int) -> str | None:
        """The sanitised MathML of ``name:version`` (see :func:`sanitize_mathml`), or None."""
        path = self.root / name / f"{int(version)}.mathml"
        key = _stat_key(path)
        if key is None:
            return None
        with self._lock:
            hit = self._mathml.get((name, version))
            if hit is not None and hit[0] == key:
                return hit[1]
        text: str | None = None
        if key[1] <= MAX_MATHML_BYTES:
            try:
                raw = path.read_bytes()[: MAX_MATHML_BYTES + 1]
                text = sanitize_mathml(raw.decode("utf-8"))
            except (OSError, UnicodeDecodeError):
                text = None
        with self._lock:
            if len(self._mathml) > 4096:
                self._mathml.clear()
            self._mathml[(name, version)] = (key, text)
        return text
