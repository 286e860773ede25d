"""The model card (pydantic), zoo naming rules and model specs.

A *model card* is the human-facing description stored with every zoo file: the
formula in three notations, metrics, tags, how it was trained and on what data.
A *spec* names a model for :func:`physkan.zoo.load`: ``"name"`` (the latest
version), ``"name:3"`` (version 3) or ``"name@prod"`` (the version an alias
points to).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from physkan.errors import UserError

__all__ = [
    "NAME_PATTERN",
    "ModelCard",
    "Spec",
    "ZooError",
    "card_from_json",
    "parse_spec",
    "physkan_version",
    "validate_alias",
    "validate_name",
]

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
_NAME_RE = re.compile(NAME_PATTERN)
RESERVED_ALIASES = frozenset({"latest"})


class ZooError(UserError):
    """Any problem with a zoo file, a zoo directory or a zoo server.

    The message is meant for the user: it says what is wrong and, where
    possible, what to do about it.
    """


def validate_name(name: str, what: str = "model name") -> str:
    """Return ``name`` if it is a legal zoo name, else raise :class:`ZooError`.

    Legal names match ``^[a-z0-9][a-z0-9._-]{0,63}$`` and contain no ``..``; so
    a name is always a single, harmless path component.
    """
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name) or ".." in name:
        raise ZooError(
            f"invalid {what} {name!r}: use 1-64 characters from a-z 0-9 . _ -, "
            "starting with a letter or digit, without '..' or slashes"
        )
    return name


def validate_alias(alias: str) -> str:
    """Return ``alias`` if users may set it: a legal name, not all digits, not reserved."""
    validate_name(alias, "alias")
    if alias.isdigit():
        raise ZooError(f"invalid alias {alias!r}: an alias cannot be a number (that is a version)")
    if alias in RESERVED_ALIASES:
        raise ZooError(f"alias {alias!r} is reserved and set automatically")
    return alias


def physkan_version() -> str:
    """The installed physkan version, or ``"0+unknown"`` when not installed."""
    try:
        from importlib.metadata import PackageNotFoundError, version

        return version("physkan")
    except PackageNotFoundError:
        try:
            from physkan._version import __version__

            return str(__version__)
        except Exception:  # pragma: no cover - a broken package must not break the zoo
            return "0+unknown"


def _now() -> datetime:
    return datetime.now(timezone.utc)


class ModelCard(BaseModel):
    """Everything a reader needs to know about one model version.

    ``version`` is assigned by the zoo when the model is registered (0 means
    "not registered yet").
    """

    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="strings")

    name: str
    version: int = Field(default=0, ge=0)
    problem: str = ""
    description: str = ""
    formula: str = ""
    formula_latex: str = ""
    formula_srepr: str = ""
    metrics: dict[str, float] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    training_config: dict[str, Any] = Field(default_factory=dict)
    provenance: dict[str, Any] = Field(default_factory=dict)
    physkan_version: str = Field(default_factory=physkan_version)
    created: datetime = Field(default_factory=_now)

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        try:
            return validate_name(value)
        except ZooError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("tags")
    @classmethod
    def _check_tags(cls, value: list[str]) -> list[str]:
        for tag in value:
            if not tag or len(tag) > 64 or any(c in tag for c in "/\\\n\r\t"):
                raise ValueError(f"invalid tag {tag!r}: 1-64 characters, no slashes or newlines")
        return value

    def to_json(self) -> str:
        """The card as a JSON string (key order as declared)."""
        return self.model_dump_json()

    def matches(self, text: str) -> bool:
        """Case-insensitive substring search over name, tags, problem and formula."""
        needle = text.lower()
        hay = [self.name, self.problem, self.formula, *self.tags]
        return any(needle in h.lower() for h in hay)


def card_from_json(text: str | bytes, source: str = "card") -> ModelCard:
    """Parse and validate a card; raise :class:`ZooError` with the pydantic reasons."""
    try:
        return ModelCard.model_validate_json(text)
    except ValidationError as exc:
        reasons = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<card>'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ZooError(f"{source}: invalid model card ({reasons})") from None


@dataclass(frozen=True)
class Spec:
    """A parsed model spec: ``name`` plus at most one of ``version``/``alias``."""

    name: str
    version: int | None = None
    alias: str | None = None

    @property
    def ref(self) -> str:
        """The version-or-alias part as used in server URLs (``"latest"`` by default)."""
        if self.version is not None:
            return str(self.version)
        return self.alias or "latest"

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}:{self.version}"
        return f"{self.name}@{self.alias}" if self.alias else self.name


def _is_ascii_digits(text: str) -> bool:
    """True for ``"0"``-``"9"`` only: ``str.isdigit`` also accepts ``"³"`` and ``"٣"``."""
    return bool(text) and text.isascii() and text.isdigit()


def parse_spec(spec: str) -> Spec:
    """Parse ``"name"``, ``"name:VERSION"`` or ``"name@ALIAS"``.

    >>> parse_spec("pendulum:3")
    Spec(name='pendulum', version=3, alias=None)
    """
    if not isinstance(spec, str) or not spec:
        raise ZooError(f"invalid model spec {spec!r}: expected NAME, NAME:VERSION or NAME@ALIAS")
    if ":" in spec and "@" in spec:
        raise ZooError(f"invalid model spec {spec!r}: give a version or an alias, not both")
    if ":" in spec:
        name, _, ver = spec.partition(":")
        if not _is_ascii_digits(ver) or int(ver) < 1:
            raise ZooError(
                f"invalid model spec {spec!r}: the version must be a positive integer "
                "(ASCII digits 0-9)"
            )
        return Spec(validate_name(name), version=int(ver))
    if "@" in spec:
        name, _, alias = spec.partition("@")
        validate_name(alias, "alias")
        if _is_ascii_digits(alias):
            if int(alias) < 1:
                raise ZooError(f"invalid model spec {spec!r}: versions start at 1")
            return Spec(validate_name(name), version=int(alias))
        return Spec(validate_name(name), alias=alias)
    return Spec(validate_name(spec))
