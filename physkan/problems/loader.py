"""Find, read and validate problem files.

``load_problem(x)`` resolves ``x`` in this order:

1. an existing file path (``problems/pendulum.toml``);
2. a built-in name — the stem of a file in ``physkan/problems/builtin`` (``"pendulum"``);
3. a name registered with :func:`register_problem` (plugins, ``physkan_problems`` hook).

Built-in and registered problems share one registry, :data:`PROBLEMS`; the plugin host
fills it through :func:`register_problem` at the first lookup in any registry (this module
never imports the plugin system). Every failure is a one-line
:class:`~physkan.problems.errors.ProblemError`.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from physkan.registry import BUILTIN, Registry

from .catalog import BUILTIN_DIR, ProblemSummary, builtin_files, read_toml
from .errors import ProblemError, format_validation_error
from .spec import ProblemSpec, allowed_keys

__all__ = [
    "BUILTIN_DIR",
    "EXTRA_SOURCES",
    "PROBLEMS",
    "ProblemSummary",
    "builtin_names",
    "list_problems",
    "load_problem",
    "problem_from_dict",
    "read_toml",
    "register_problem",
]

#: problem name -> spec or path of a TOML file: the built-in problem files (source
#: :data:`~physkan.registry.BUILTIN`) and those registered at run time (plugins).
PROBLEMS: Registry[ProblemSpec | Path] = Registry("problem")
#: former name of the table of registered problems (now :data:`PROBLEMS`).
EXTRA_SOURCES = PROBLEMS


def builtin_names() -> list[str]:
    """Names of the built-in problems, sorted."""
    return sorted(n for n in PROBLEMS.names() if PROBLEMS.source(n) == BUILTIN)


def registered_names() -> list[str]:
    """Names of the problems registered at run time (plugins), sorted."""
    return sorted(n for n in PROBLEMS.names() if PROBLEMS.source(n) != BUILTIN)


def register_problem(
    name: str,
    spec_or_path: ProblemSpec | str | Path,
    *,
    source: str = "user",
    replace: bool = True,
) -> None:
    """Make ``load_problem(name)`` return ``spec_or_path`` (a spec or a TOML path).

    Args:
        source: who registers it (a plugin's name; ``"user"`` for one's own code).
        replace: re-registering a name replaces it (the plugin host passes ``False``).

    Raises:
        ValueError: ``name`` is a built-in problem (built-ins are never shadowed), or it is
            taken and ``replace`` is false (:class:`~physkan.registry.NameClash`).
    """
    if PROBLEMS.source(name) == BUILTIN:
        raise ValueError(f"problem name {name!r} is taken by a built-in problem")
    if not isinstance(spec_or_path, ProblemSpec):
        spec_or_path = Path(spec_or_path)
    PROBLEMS.register(name, spec_or_path, source=source, replace=replace)


def problem_from_dict(
    data: Mapping[str, Any],
    source: str | Path | None = None,
    base_dir: str | Path | None = None,
) -> ProblemSpec:
    """Validate a parsed problem file.

    Args:
        data: the parsed TOML (or an equivalent dict).
        source: shown at the start of error messages and kept as ``spec.source``.
        base_dir: a relative ``[data].file`` is taken relative to this directory.
    """
    raw = dict(data)
    section = raw.get("data")
    if base_dir is not None and isinstance(section, dict) and isinstance(section.get("file"), str):
        file = Path(section["file"]).expanduser()
        if not file.is_absolute():
            raw["data"] = {**section, "file": str(Path(base_dir).resolve() / file)}
    try:
        spec = ProblemSpec.model_validate(raw)
    except ValidationError as err:
        problem_type = raw.get("type") if isinstance(raw.get("type"), str) else None
        raise format_validation_error(
            err, source, lambda loc: allowed_keys(problem_type, loc)
        ) from None
    spec._source = None if source is None else str(source)
    return spec


def _load_file(path: Path) -> ProblemSpec:
    if path.is_dir():
        raise ProblemError(f"{path}: is a directory, expected a .toml problem file", source=path)
    return problem_from_dict(read_toml(path), source=path, base_dir=path.parent)


def _unknown(name: str) -> ProblemError:
    registered = registered_names()
    known = [*builtin_names(), *registered]
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
    looks_like_path = name.endswith(".toml") or "/" in name or "\\" in name
    what = "no such problem file" if looks_like_path else "unknown problem"
    return ProblemError(
        f"{what} {name!r}; {hint}built-in problems: {', '.join(builtin_names())}"
        f"{'; registered: ' + ', '.join(registered) if registered else ''}"
        "; or give the path of a .toml file",
        source=name,
    )


def load_problem(name_or_path: str | Path) -> ProblemSpec:
    """Load and validate a problem given a file path, a built-in name or a registered name."""
    path = Path(name_or_path).expanduser()
    if path.exists():
        return _load_file(path)
    name = str(name_or_path)
    entry = PROBLEMS.find(name)
    if entry is None:
        raise _unknown(name)
    if isinstance(entry, ProblemSpec):
        spec = entry.model_copy(deep=True)
        spec._source = entry.source or f"plugin:{name}"
        return spec
    spec = _load_file(entry)
    if PROBLEMS.source(name) == BUILTIN:
        spec._source = f"builtin:{name}"
    return spec


def list_problems() -> list[ProblemSummary]:
    """Summaries of the built-in and registered problems (broken ones show their error)."""
    rows = []
    names = [(n, "builtin") for n in builtin_names()]
    names += [(n, "plugin") for n in PROBLEMS.names() if PROBLEMS.source(n) != BUILTIN]
    for name, origin in names:
        entry = PROBLEMS.find(name)
        source = origin if origin == BUILTIN or not isinstance(entry, Path) else str(entry)
        try:
            spec = load_problem(name)
        except ProblemError as err:
            rows.append(ProblemSummary(name, "error", str(err), source))
            continue
        rows.append(ProblemSummary(name, spec.type, spec.description, source))
    return rows


for _path in builtin_files():
    PROBLEMS.register(_path.stem, _path)
