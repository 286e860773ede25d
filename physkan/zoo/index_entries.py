"""The entries of a zoo's ``index.json``: their summaries, filters and shape checks.

Pure functions over the dictionaries :class:`~physkan.zoo.local.LocalZoo` derives from the
version files (no locking, no writes): one summary per model for listings and search, the
check that an entry read back from disk has the shape the store writes, stat stamps, and the
verification of one version file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from physkan.zoo.card import ZooError
from physkan.zoo.store import read_header, verify_file

__all__ = ["matches", "summaries", "summary", "valid_entry", "verify_one"]


def summary(name: str, entry: dict[str, Any]) -> dict[str, Any] | None:
    latest = entry.get("aliases", {}).get("latest")
    info = entry.get("versions", {}).get(str(latest))
    if info is None:
        return None
    card = info["card"]
    return {
        "name": name,
        "latest_version": latest,
        "versions": len(entry["versions"]),
        "aliases": entry.get("aliases", {}),
        "problem": card.get("problem", ""),
        "formula": card.get("formula", ""),
        "tags": card.get("tags", []),
        "metrics": card.get("metrics", {}),
        "created": card.get("created"),
        "sha256": info["sha256"],
    }


def matches(item: dict[str, Any], search: str | None, tag: str | None, problem: str | None) -> bool:
    if tag is not None and tag not in item["tags"]:
        return False
    if problem is not None and item["problem"] != problem:
        return False
    if search:
        needle = search.lower()
        hay = [item["name"], item["problem"], item["formula"], *item["tags"]]
        return any(needle in h.lower() for h in hay)
    return True


def summaries(
    index: dict[str, Any],
    *,
    search: str | None = None,
    tag: str | None = None,
    problem: str | None = None,
) -> list[dict[str, Any]]:
    """One summary per model of ``index`` (from its latest card), filtered, sorted by name.

    ``search`` is a case-insensitive substring of name, problem, formula or a
    tag; ``tag`` and ``problem`` must match exactly.
    """
    models = index["models"]
    items = [s for n in sorted(models) if (s := summary(n, models[n]))]
    return [s for s in items if matches(s, search, tag, problem)]


def verify_one(path: Path, name: str, version: int) -> str | None:
    """None if ``path`` is a sound file of ``name:version``, else why not."""
    try:
        verify_file(path)
        card, _ = read_header(path)
    except ZooError as exc:
        return str(exc)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        return f"{path}: unreadable ({type(exc).__name__}: {exc})"
    if (card.name, card.version) != (name, version):
        return f"{path}: its card says {card.name}:{card.version}, not {name}:{version}"
    return None


def stat_stamp(st: os.stat_result) -> list[int]:
    return [st.st_ino, st.st_size, st.st_mtime_ns]


def reason_without_path(path: Path, message: str) -> str:
    """``message`` without the leading path (the index stores reasons per version)."""
    return message.removeprefix(f"{path}: ").replace(str(path), path.name)


def read_aliases_file(path: Path) -> dict[str, int]:
    """User aliases from ``aliases.json``; entries of the wrong shape are ignored."""
    try:
        raw = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return {}
    if not isinstance(raw, dict):
        return {}
    out: dict[str, int] = {}
    for key, value in raw.items():
        if isinstance(value, str) and value.isascii() and value.isdigit():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool) and key != "latest":
            out[str(key)] = value
    return out


def is_stamp(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 3 and all(type(x) is int for x in value)


def valid_entry(entry: Any) -> bool:
    """Whether a model entry read from ``index.json`` has the shape this module writes."""
    if not isinstance(entry, dict):
        return False
    versions, aliases = entry.get("versions"), entry.get("aliases")
    damaged, stamp = entry.get("damaged"), entry.get("stamp")
    if not (isinstance(versions, dict) and isinstance(aliases, dict)):
        return False
    if not (isinstance(damaged, dict) and isinstance(stamp, dict)):
        return False
    files = stamp.get("files")
    if not isinstance(files, dict) or not all(is_stamp(s) for s in files.values()):
        return False
    if not (stamp.get("aliases") is None or is_stamp(stamp.get("aliases"))):
        return False
    if set(versions) | set(damaged) != set(files) or set(versions) & set(damaged):
        return False
    if not all(isinstance(r, str) for r in damaged.values()):
        return False
    for info in versions.values():
        if not (
            isinstance(info, dict)
            and isinstance(info.get("sha256"), str)
            and type(info.get("size")) is int
            and isinstance(info.get("card"), dict)
        ):
            return False
    return all(type(v) is int and str(v) in versions for v in aliases.values())
