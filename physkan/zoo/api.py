"""The user-facing zoo functions: register, load, push, pull.

``load("pendulum")`` looks in the local zoo directory first, then in the
download cache, then on a zoo server (``url=`` or ``$PHYSKAN_ZOO_URL``),
revalidating cached aliases by ETag.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from physkan import _fs
from physkan.zoo import store
from physkan.zoo.cache import ZooCache, fetch_to_cache
from physkan.zoo.card import ModelCard, ZooError, parse_spec
from physkan.zoo.client import ZooClient
from physkan.zoo.local import LocalZoo, ModelRef, default_cache_dir, default_zoo_dir

_log = logging.getLogger("physkan.zoo")

__all__ = ["ZooEntry", "load", "load_entry", "locate", "pull", "push", "register_model"]


@dataclass
class ZooEntry:
    """A loaded model with its card and the file it came from."""

    card: ModelCard
    model: Any
    path: Path
    sha256: str


def as_zoo(zoo: str | os.PathLike | LocalZoo | None) -> LocalZoo:
    """A :class:`LocalZoo` for ``zoo`` (a path or zoo), default :func:`default_zoo_dir`."""
    if isinstance(zoo, LocalZoo):
        return zoo
    return LocalZoo(default_zoo_dir() if zoo is None else zoo)


def register_model(
    model: Any,
    *,
    name: str,
    problem: str = "",
    formula: str = "",
    formula_latex: str = "",
    formula_srepr: str = "",
    metrics: Mapping[str, float] | None = None,
    tags: Sequence[str] | None = None,
    training_config: Mapping[str, Any] | None = None,
    provenance: Mapping[str, Any] | None = None,
    description: str = "",
    zoo: str | os.PathLike | LocalZoo | None = None,
    draw: bool = True,
) -> ModelRef:
    """Store ``model`` as a new version of ``name`` in a local zoo.

    The model is converted with ``physkan.io.model_to_payload``; the zoo
    assigns the version (1, 2, ...) and moves the ``latest`` alias.
    With ``draw`` the web page's sidecars are written too: the network PNG
    (KAN models) and the formula as MathML (:mod:`physkan.zoo.render`); a
    drawing that fails is logged, never fails the registration.
    Raises :class:`ZooError` for an invalid name or card.
    """
    try:
        card = ModelCard(
            name=name,
            problem=problem,
            description=description,
            formula=formula,
            formula_latex=formula_latex,
            formula_srepr=formula_srepr,
            metrics=dict(metrics or {}),
            tags=list(tags or []),
            training_config=dict(training_config or {}),
            provenance=dict(provenance or {}),
        )
    except ValueError as exc:  # pydantic.ValidationError is a ValueError
        raise ZooError(f"invalid model card: {exc}") from None
    config, state = store.model_payload(model)
    target = as_zoo(zoo)
    ref = target.add(card, config, state)
    if draw:
        from physkan.zoo.render import render_version

        try:
            render_version(target, ref.name, ref.version, model=model, card=card)
        except Exception as exc:  # a drawing is a nicety: never lose the registered model
            _log.warning(
                "zoo: could not draw %s:%s for the web page: %s", ref.name, ref.version, exc
            )
    return ref


def locate(
    spec: str,
    *,
    zoo: str | os.PathLike | LocalZoo | None = None,
    url: str | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> ModelRef:
    """Find the file for ``spec``: local zoo, then cache, then server."""
    parsed = parse_spec(spec)
    local = as_zoo(zoo)
    try:
        return local.resolve(parsed)
    except ZooError as exc:
        local_error = exc
    cache_root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    url = url or os.environ.get("PHYSKAN_ZOO_URL")
    if url:
        return fetch_to_cache(parsed, url, cache_root)
    cached = ZooCache(cache_root).lookup(parsed)
    if cached:
        return cached
    raise ZooError(
        f"{local_error}; not in the cache {cache_root} either, and no server to ask "
        "(pass url= / --url or set PHYSKAN_ZOO_URL)"
    )


def load_entry(
    spec: str,
    *,
    zoo: str | os.PathLike | LocalZoo | None = None,
    url: str | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> ZooEntry:
    """Locate, verify and rebuild ``spec``; return card, model and path."""
    ref = locate(spec, zoo=zoo, url=url, cache_dir=cache_dir)
    try:
        stored = store.read_model_file(ref.path, verify=True)
    except ZooError:
        cache_root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        url = url or os.environ.get("PHYSKAN_ZOO_URL")
        if not url or not ref.path.is_relative_to(cache_root):
            raise
        # a damaged cached copy: drop it and download again
        ref.path.unlink(missing_ok=True)
        ZooCache(cache_root).forget(parse_spec(spec))
        ref = fetch_to_cache(parse_spec(spec), url, cache_root)
        stored = store.read_model_file(ref.path, verify=True)
    model = store.build_model(stored)
    return ZooEntry(stored.card, model, ref.path, stored.sha256)


def load(
    spec: str,
    *,
    zoo: str | os.PathLike | LocalZoo | None = None,
    url: str | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> Any:
    """Load a model by spec (``"name"``, ``"name:3"``, ``"name@prod"``).

    Returns the rebuilt module with its :class:`ModelCard` as ``model.card``.
    """
    entry = load_entry(spec, zoo=zoo, url=url, cache_dir=cache_dir)
    model = entry.model
    model.card = entry.card
    return model


def push(
    path_or_ref: str | os.PathLike | ModelRef, url: str | None = None, token: str | None = None
) -> dict[str, Any]:
    """Upload a zoo file (or a registered :class:`ModelRef`) to a server.

    Returns the server's answer: ``{"name", "version", "sha256", ...}``.
    """
    path = path_or_ref.path if isinstance(path_or_ref, ModelRef) else Path(path_or_ref)
    if not path.is_file():
        raise ZooError(f"{path}: no such file")
    with ZooClient(url, token) as client:
        return client.upload(path)


def pull(
    spec: str,
    url: str | None = None,
    dest: str | os.PathLike | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
) -> Path:
    """Download ``spec`` from a server; return the local path.

    Without ``dest`` the file goes to the cache (where :func:`load` finds it);
    a directory ``dest`` receives ``<name>-<version>.h5``; any other ``dest``
    is the target file name.
    """
    cache_root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    ref = fetch_to_cache(parse_spec(spec), url, cache_root)
    if dest is None:
        return ref.path
    target = Path(dest)
    if target.is_dir():
        target = target / f"{ref.name}-{ref.version}.h5"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _fs.temp_path(target.parent, suffix=target.suffix or ".h5")
    try:
        shutil.copyfile(ref.path, tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target
