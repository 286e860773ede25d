"""Zoo server settings: upload tokens and validated limits (no web framework imported).

:func:`server_settings` validates with pydantic and raises :class:`ZooError` naming the
command-line option; :func:`load_tokens` reads a TOML tokens file and/or
``$PHYSKAN_ZOO_TOKENS``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from physkan.zoo.card import ZooError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "DEFAULT_MAX_UPLOAD_BYTES",
    "DEFAULT_READ_TIMEOUT_S",
    "ServerSettings",
    "load_tokens",
    "server_settings",
]

DEFAULT_MAX_UPLOAD_BYTES = 256 * 1024 * 1024
DEFAULT_READ_TIMEOUT_S = 30.0


def _token_problem(value: object) -> str | None:
    """Why ``value`` cannot be an upload token, or None when it can."""
    if not isinstance(value, str):
        return f"must be a string, not {_kind(value)}"
    if not value:
        return "must not be empty"
    if value != value.strip():
        return "has surrounding whitespace (it would never match)"
    if not value.isascii() or not value.isprintable():
        return "must be printable ASCII (HTTP headers carry nothing else)"
    return None


def _kind(value: object) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", list: "a list"}
    return names.get(type(value), "a table" if isinstance(value, dict) else type(value).__name__)


def load_tokens(tokens_file: str | os.PathLike | None = None) -> list[str]:
    """Upload tokens from a TOML file and/or ``$PHYSKAN_ZOO_TOKENS`` (comma list).

    The file is ``tokens_file`` or ``$PHYSKAN_ZOO_TOKENS_FILE`` and holds either
    ``tokens = ["t1", "t2"]`` or a table ``[tokens]`` of ``user = "token"``.
    Every entry must be a non-empty printable ASCII string without surrounding
    whitespace; anything else raises :class:`ZooError` naming the file and the
    entry (never the token itself).
    """
    tokens: list[str] = []
    path = tokens_file or os.environ.get("PHYSKAN_ZOO_TOKENS_FILE")
    if path:
        try:
            data = tomllib.loads(Path(path).read_text())
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ZooError(f"cannot read tokens file {path}: {exc}") from None
        if "tokens" not in data:
            raise ZooError(f"tokens file {path}: no 'tokens' entry (a list or a table of strings)")
        raw = data["tokens"]
        if isinstance(raw, dict):
            entries = [(f"tokens.{key}", value) for key, value in raw.items()]
        elif isinstance(raw, list):
            entries = [(f"tokens[{i}]", value) for i, value in enumerate(raw)]
        else:
            raise ZooError(
                f"tokens file {path}: 'tokens' must be a list or a table of strings, "
                f"not {_kind(raw)}"
            )
        for entry, value in entries:
            problem = _token_problem(value)
            if problem:
                raise ZooError(f"tokens file {path}: {entry} {problem}")
            tokens.append(value)
    env = os.environ.get("PHYSKAN_ZOO_TOKENS", "")
    for i, token in enumerate(t.strip() for t in env.split(",") if t.strip()):
        problem = _token_problem(token)
        if problem:
            raise ZooError(f"$PHYSKAN_ZOO_TOKENS: token {i + 1} {problem}")
        tokens.append(token)
    return tokens


_OPTIONS = {
    "max_upload_bytes": "--max-upload-bytes",
    "read_timeout": "--read-timeout",
    "tokens": "token",
}


class ServerSettings(BaseModel):
    """Validated zoo server settings (build with :func:`server_settings`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_upload_bytes: int = Field(DEFAULT_MAX_UPLOAD_BYTES, gt=0, description="bytes")
    read_timeout: float = Field(
        DEFAULT_READ_TIMEOUT_S,
        gt=0,
        allow_inf_nan=False,
        description="seconds an upload body may stall before the server answers 408",
    )
    tokens: list[str] = Field(default_factory=list, description="upload (Bearer) tokens")

    @field_validator("tokens")
    @classmethod
    def _clean(cls, value: list[str]) -> list[str]:
        for token in value:
            problem = _token_problem(token)
            if problem:
                raise ValueError(f"an upload token {problem}")
        return value


def server_settings(
    *,
    max_upload_bytes: int | None = None,
    read_timeout: float | None = None,
    tokens: Iterable[str] = (),
) -> ServerSettings:
    """Validated server settings (None -> the default); :class:`ZooError` names the option."""
    values: dict[str, Any] = {"tokens": list(tokens)}
    if max_upload_bytes is not None:
        values["max_upload_bytes"] = max_upload_bytes
    if read_timeout is not None:
        values["read_timeout"] = read_timeout
    try:
        return ServerSettings.model_validate(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else "settings"
        option = _OPTIONS.get(field, field)
        got = "" if field == "tokens" else f" (got {err.get('input')!r})"
        where = f"{option} entry {err['loc'][1] + 1}" if len(err["loc"]) > 1 else option
        raise ZooError(f"invalid {where}: {err['msg']}{got}") from None
