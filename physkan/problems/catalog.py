"""A light catalogue of problem files: names, types and descriptions read from the TOML.

``physkan problems`` lists the built-in problems (and the plugins' problem files) from here
without validating them, so it imports neither torch nor sympy nor pydantic: a row holds
what the file declares (its ``type`` and ``description``), or type ``"error"`` with the
reason when the file cannot be read as TOML or lacks a ``type``. Full validation of every
problem is :func:`physkan.problems.loader.list_problems` (``physkan problems --check``).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

__all__ = [
    "BUILTIN_DIR",
    "ProblemSummary",
    "builtin_files",
    "builtin_summaries",
    "read_toml",
    "summarize_file",
    "summarize_mapping",
]

#: directory of the problem files shipped with physkan (package data).
BUILTIN_DIR = Path(__file__).resolve().parent / "builtin"


@dataclass(frozen=True)
class ProblemSummary:
    """One row of a problem listing; ``source`` is ``builtin``, a path or ``plugin``."""

    name: str
    type: str
    description: str
    source: str


def builtin_files() -> list[Path]:
    """The built-in problem files, sorted by name (the name is the file's stem)."""
    return sorted(BUILTIN_DIR.glob("*.toml"))


def _problem_error(message: str, path: Path) -> Exception:
    from .errors import ProblemError  # pydantic: only on the error path

    return ProblemError(message, source=path)


def read_toml(path: str | Path) -> dict[str, Any]:
    """Parse a TOML file; malformed files raise ``ProblemError`` with line and column."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as err:
        raise _problem_error(f"{path}: malformed TOML: {err}", path) from None
    except UnicodeDecodeError as err:
        raise _problem_error(f"{path}: not UTF-8 text ({err.reason})", path) from None
    except OSError as err:
        raise _problem_error(f"{path}: cannot read ({err.strerror})", path) from None


def summarize_mapping(name: str, data: Mapping[str, Any], source: str, where: str = "") -> ProblemSummary:
    """The row of a parsed problem (``where`` prefixes an error message, e.g. the path)."""
    kind = data.get("type")
    if not isinstance(kind, str) or not kind:
        prefix = f"{where}: " if where else ""
        return ProblemSummary(name, "error", f"{prefix}type: required, a problem type name", source)
    description = data.get("description", "")
    return ProblemSummary(name, kind, description if isinstance(description, str) else str(description), source)


def summarize_file(name: str, path: Path, source: str) -> ProblemSummary:
    """The row of the problem file ``path`` listed as ``name`` (never raises)."""
    try:
        data = read_toml(path)
    except Exception as err:  # noqa: BLE001 - ProblemError; shown as the row's description
        return ProblemSummary(name, "error", " ".join(str(err).split()), source)
    return summarize_mapping(name, data, source, where=str(path))


def builtin_summaries() -> list[ProblemSummary]:
    """Rows of the built-in problems, sorted by name."""
    return [summarize_file(path.stem, path, "builtin") for path in builtin_files()]
