"""Drawings for the zoo's web pages, made where torch already is: the network PNG and MathML.

Rendered when a model is registered (:func:`physkan.zoo.register_model`), by
``physkan zoo render`` for files already in a zoo (``scripts/build_zoo.py`` does it for the
shipped ones), never in the server process (it must not import torch or the formula
parser, which loads the plugin registries). Two sidecar files sit next to the version file,
each published atomically (temp file, fsync, rename)::

    ROOT/<name>/<version>.png       the network (physkan.interpret.plot) on 256 inputs drawn
                                    uniformly from each input's layer-0 grid range
    ROOT/<name>/<version>.mathml    the card's formula as presentation MathML, one
                                    <math> element per output ("; " separates outputs)

The formula text is parsed with :func:`physkan.symbolic.parse.parse_expression` (the safe
parser: card formulas come from uploads), never ``sympify``. The zoo index ignores these
files (only ``N.h5`` are versions); the server's web pages show them when present
(:mod:`physkan.zoo.web` re-sanitises the MathML) and a placeholder otherwise.
"""

from __future__ import annotations

import html.entities
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from physkan import _fs
from physkan.zoo.card import ModelCard, ZooError
from physkan.zoo.local import LocalZoo
from physkan.zoo.sidecars import MATHML_NS

__all__ = ["MATHML_NS", "Rendered", "draw_network", "formula_mathml", "render_version"]

#: samples the network is drawn on
PLOT_SAMPLES = 256
_ENTITY = re.compile(r"&([A-Za-z][A-Za-z0-9]*);")
_XML_ENTITIES = frozenset({"lt", "gt", "amp", "quot", "apos"})
_log = logging.getLogger("physkan.zoo")


@dataclass(frozen=True)
class Rendered:
    """The sidecar files written for one version (None: not written, e.g. no formula)."""

    png: Path | None
    mathml: Path | None


def _xml_entities(text: str) -> str:
    """Replace HTML-only named entities (``&pi;``, ``&InvisibleTimes;``) by their characters.

    sympy writes them; the result must be plain XML (the server parses it with expat).
    """

    def one(m: re.Match[str]) -> str:
        name = m.group(1)
        if name in _XML_ENTITIES:
            return m.group(0)
        char = html.entities.html5.get(name + ";")
        return char if char is not None else m.group(0)

    return _ENTITY.sub(one, text)


def formula_mathml(formula: str, variables: list[str] | None = None) -> str:
    """Presentation MathML of ``formula`` (``"; "``-separated outputs: one ``<math>`` each).

    Raises :class:`ZooError` when the text does not parse (with the parser's reason).
    """
    from sympy.printing.mathml import mathml

    from physkan.symbolic.parse import ExpressionError, parse_expression

    parts = []
    for text in (p.strip() for p in formula.split(";")):
        if not text:
            continue
        try:
            expr = parse_expression(text, variables)
        except (ExpressionError, ValueError, TypeError) as exc:
            raise ZooError(f"formula {text[:80]!r} does not parse: {exc}") from None
        body = _xml_entities(mathml(expr, printer="presentation"))
        parts.append(f'<math xmlns="{MATHML_NS}" display="inline">{body}</math>')
    return "\n".join(parts)


def _plot_inputs(model: Any) -> Any:
    """``(PLOT_SAMPLES, n_in)`` inputs, uniform over each input's layer-0 grid range."""
    import torch

    interior = model.layers[0].grid_interior()  # (in, G + 1)
    low, high = interior.min(dim=1).values, interior.max(dim=1).values
    gen = torch.Generator().manual_seed(0)
    u = torch.rand(PLOT_SAMPLES, interior.shape[0], generator=gen, dtype=interior.dtype)
    return low + u * (high - low)


def draw_network(model: Any, path: Path, title: str | None = None) -> Path | None:
    """Draw a MultKAN to ``path`` atomically; None (nothing written) for other model kinds."""
    from physkan.interpret.plot import plot
    from physkan.kan import MultKAN

    if not isinstance(model, MultKAN):
        return None
    with _fs.atomic_file(path) as tmp:
        plot(model, _plot_inputs(model), tmp, title=title, dpi=90)
    return path


def render_version(
    zoo: LocalZoo, name: str, version: int, model: Any = None, card: ModelCard | None = None
) -> Rendered:
    """Write the PNG and MathML sidecars of ``name:version`` (rebuilt from its file if needed).

    A formula that does not parse leaves no MathML (logged); a model that cannot be drawn
    leaves no PNG. Raises :class:`ZooError` for a missing or damaged version file.
    """
    from physkan.zoo import store

    path = zoo.version_path(name, version)
    if model is None or card is None:
        stored = store.read_model_file(path, verify=True)
        card = stored.card if card is None else card
        model = store.build_model(stored) if model is None else model
    variables = list(getattr(model, "variables", []) or []) or None
    mathml_path: Path | None = None
    if card.formula.strip():
        try:
            text = formula_mathml(card.formula, variables)
        except ZooError as exc:
            _log.warning("zoo: no MathML for %s:%s: %s", name, version, exc)
        else:
            mathml_path = path.with_suffix(".mathml")
            _fs.atomic_write_bytes(mathml_path, text.encode())
    png = draw_network(model, path.with_suffix(".png"), title=f"{name}:{version}")
    return Rendered(png, mathml_path)
