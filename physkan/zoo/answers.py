"""What a zoo server may answer: strict pydantic shapes of its JSON, and the checks on its text.

The client (:mod:`physkan.zoo.client`) trusts no server. Every JSON answer is validated
against one of these shapes (strict: no ``"5"`` for 5, no ``true`` for 1; unknown extra keys
are allowed, so a newer server may add fields), and every piece of server text that reaches
a message is made printable and bounded first.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

DIGITS_RE = re.compile(r"[0-9]{1,18}")  # str patterns: [0-9] is ASCII only


def printable(text: str, limit: int = 300) -> str:
    """Server text made safe for one terminal line: no control characters, bounded."""
    clean = "".join(c if c.isprintable() else " " for c in str(text))
    return clean if len(clean) <= limit else clean[:limit] + "…"


def positive_int(text: str | None, what: str) -> int:
    """``text`` as an integer >= 1 if it is 1-18 ASCII digits, else raise ``ValueError``."""
    if text is None:
        raise ValueError(f"missing {what}")
    if not DIGITS_RE.fullmatch(text.strip()) or int(text) < 1:
        raise ValueError(f"{what} {printable(text, 40)!r} is not a positive integer")
    return int(text)


_Name = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]
_Sha = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
_Version = Annotated[int, Field(ge=1)]
_Metric = Annotated[float, Field(strict=False)]  # "NaN"/"Infinity" are JSON strings


class Answer(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")


AnswerT = TypeVar("AnswerT", bound=Answer)


class SummaryAnswer(Answer):
    name: _Name
    latest_version: _Version
    versions: _Version
    problem: str
    formula: str
    tags: list[str]
    aliases: dict[str, _Version] = Field(default_factory=dict)
    metrics: dict[str, _Metric] = Field(default_factory=dict)
    sha256: _Sha | None = None


class ModelListAnswer(Answer):
    items: list[SummaryAnswer]
    total: Annotated[int, Field(ge=0)]
    page: _Version
    per_page: _Version


class VersionInfoAnswer(Answer):
    version: _Version
    sha256: _Sha
    card: dict[str, Any]


class ModelInfoAnswer(Answer):
    name: _Name
    aliases: dict[str, _Version]
    versions: list[VersionInfoAnswer]


class UploadedAnswer(Answer):
    name: _Name
    version: _Version
    sha256: _Sha


class AliasSetAnswer(Answer):
    name: _Name
    alias: str
    version: _Version


class HealthAnswer(Answer):
    status: str


def reasons(exc: ValidationError) -> str:
    parts = [
        f"{'.'.join(str(p) for p in err['loc']) or '<answer>'}: {err['msg']}"
        for err in exc.errors()[:5]
    ]
    return printable("; ".join(parts), 400)
