"""The one error type of ``physkan.problems`` and the rendering of validation errors.

Every user-facing failure (unknown problem, malformed TOML, a schema violation, a data
file without the named columns) is a :class:`ProblemError` whose message is a single line
that names the file and the offending field, e.g.::

    pendulum.toml: system.lagrangian: does not depend on any velocity (q_dot)
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from pathlib import Path

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from physkan.errors import UserError

__all__ = ["ProblemError", "field_error", "format_validation_error", "raise_field_errors"]

#: given a location tuple, the keys that are allowed there (None if unknown).
AllowedKeys = Callable[[tuple[str | int, ...]], "Sequence[str] | None"]


class ProblemError(UserError, ValueError):
    """A problem file, name or data set the user has to fix.

    ``str(err)`` is one line. ``err.source`` is the file or problem name it concerns (or
    ``None``), ``err.details`` the individual ``(field path, message)`` pairs.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | Path | None = None,
        details: Sequence[tuple[str, str]] = (),
    ) -> None:
        self.source = None if source is None else str(source)
        self.details = list(details)
        super().__init__(" ".join(message.split()))


def field_error(loc: tuple[str | int, ...], message: str) -> InitErrorDetails:
    """One pydantic error at ``loc`` whose rendered message is exactly ``message``."""
    return InitErrorDetails(
        type=PydanticCustomError("problem_spec", "{message}", {"message": message}),
        loc=loc,
        input=None,
    )


def raise_field_errors(title: str, errors: Sequence[InitErrorDetails]) -> None:
    """Raise a pydantic ``ValidationError`` made of ``errors`` (no-op if empty).

    Used by model validators that check several fields at once, so that each problem is
    reported at its own location (``data.ranges.q_dot``) rather than at the model.
    """
    if errors:
        raise ValidationError.from_exception_data(title, list(errors))


def _path(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _message(err: dict, allowed_keys: AllowedKeys | None) -> str:
    kind = err["type"]
    loc = tuple(err["loc"])
    if kind == "extra_forbidden":
        allowed = list(allowed_keys(loc[:-1]) or []) if allowed_keys else []
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        known = f"allowed keys: {', '.join(allowed)}" if allowed else ""
        return f"unknown key; {hint}{known}".rstrip("; ")
    if kind == "missing":
        return "required but missing"
    msg = str(err["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    if kind not in ("problem_spec", "value_error") and "input" in err:
        shown = repr(err["input"])
        if len(shown) <= 40:
            msg += f" (got {shown})"
    return msg


def format_validation_error(
    err: ValidationError,
    source: str | Path | None = None,
    allowed_keys: AllowedKeys | None = None,
) -> ProblemError:
    """Turn a pydantic ``ValidationError`` into a one-line :class:`ProblemError`.

    The message reads ``"<source>: <field.path>: <msg>; <field.path>: <msg>"``.
    """
    details: list[tuple[str, str]] = []
    for item in err.errors(include_url=False):
        pair = (_path(item["loc"]), _message(item, allowed_keys))
        if pair not in details:
            details.append(pair)
    body = "; ".join(f"{path}: {msg}" for path, msg in details)
    prefix = f"{source}: " if source else ""
    return ProblemError(prefix + body, source=source, details=details)
