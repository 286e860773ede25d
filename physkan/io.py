"""Saving and loading models as *config + tensors* (JSON + HDF5), never pickle.

A model is described by a JSON-able ``config`` (with a ``"kind"`` naming its class) and a
mapping of tensor names to arrays. :func:`save_model` writes both into one HDF5 file:

```
/attrs: format ("physkan-model"), format_version, physkan_version
/config            JSON string
/state/<name>      one dataset per tensor ('/' in names is stored as '|')
```

Model classes are not imported here (``io`` sits near the bottom of the layers, see
``docs/architecture.md``): each class registers its kind when its module is imported, e.g.
``register_model_kind("multkan", MultKAN)`` in :mod:`physkan.kan.network`. The composition
root ``physkan/__init__.py`` imports the built-in model packages, so ``import physkan.io``
in a fresh process knows them. Files are written with :func:`physkan._fs.atomic_file`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from physkan import _fs
from physkan._version import __version__
from physkan.errors import UserError
from physkan.registry import BUILTIN, Registry

__all__ = [
    "MODEL_KINDS",
    "ModelFileError",
    "get_model_kind",
    "load_model",
    "model_from_payload",
    "model_to_payload",
    "register_model_kind",
    "save_model",
]

FORMAT = "physkan-model"
FORMAT_VERSION = 1

#: what rebuilding a module from a malformed config or state may raise.
_REBUILD_ERRORS = (
    TypeError, KeyError, ValueError, IndexError, AttributeError, RuntimeError, OverflowError,
    MemoryError,
)  # fmt: skip


class ModelFileError(UserError, ValueError):
    """A model file or payload that cannot be loaded; ``str(err)`` is one line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


#: ``factory(config) -> module`` per model kind (``config["kind"]``), filled by the model
#: classes' modules when they are imported (and by plugins through
#: :func:`register_model_kind`).
MODEL_KINDS: Registry[Callable[[dict[str, Any]], nn.Module]] = Registry(
    "model kind", error=ModelFileError
)


def register_model_kind(
    kind: str,
    factory: Callable[[dict[str, Any]], nn.Module],
    *,
    source: str = BUILTIN,
    replace: bool = True,
) -> None:
    """Register how configs with ``config["kind"] == kind`` are rebuilt.

    Args:
        kind: the name stored in the file's config.
        factory: a model class with a ``from_config(config)`` classmethod, or any callable
            ``factory(config) -> module``.
        source: who registers it (:data:`physkan.registry.BUILTIN` or a plugin's name).
        replace: overwrite an existing entry (the default, like the dict this used to be);
            a plugin never replaces a built-in (see :class:`physkan.registry.Registry`).
    """
    from_config = getattr(factory, "from_config", None)
    build = from_config if isinstance(factory, type) and callable(from_config) else factory
    MODEL_KINDS.register(kind, build, source=source, replace=replace)


def get_model_kind(kind: str) -> Callable[[dict[str, Any]], nn.Module]:
    """The factory registered for ``kind``; raises :class:`ModelFileError` if unknown."""
    return MODEL_KINDS.get(kind)


def model_to_payload(model: nn.Module) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Split a model into its JSON-able config and its tensors as numpy arrays."""
    if not hasattr(model, "config"):
        raise TypeError(f"model: {type(model).__name__} has no config(); cannot be saved")
    config = model.config()
    json.dumps(config)  # fail early if something is not JSON-able
    state = {name: t.detach().cpu().numpy().copy() for name, t in model.state_dict().items()}
    return config, state


def model_from_payload(config: Mapping[str, Any], state: Mapping[str, Any]) -> nn.Module:
    """Rebuild a model from :func:`model_to_payload`'s output (tensors bitwise equal).

    Raises:
        ModelFileError: (a ``ValueError``) for a config that is not a JSON object, an
            unknown kind, a config the model class rejects, a tensor that is not a numeric
            array, or tensors that do not fit the model (the full mismatch, on one line).
    """
    if not isinstance(config, Mapping):
        raise ModelFileError(
            f"config: expected a JSON object with a 'kind', got a {type(config).__name__}"
        )
    kind = config.get("kind")
    if not isinstance(kind, str) or kind not in MODEL_KINDS:
        known = ", ".join(sorted(MODEL_KINDS.names()))
        raise ModelFileError(f"config.kind: unknown model kind {kind!r}; known: {known}")
    tensors = {name: _tensor(name, value) for name, value in state.items()}
    try:
        model = get_model_kind(kind)(dict(config))
    except _REBUILD_ERRORS as exc:
        raise ModelFileError(f"config: cannot rebuild a {kind!r} model: {_describe(exc)}") from None
    dtype = next(iter(tensors.values())).dtype if tensors else torch.float32
    try:
        if dtype.is_floating_point:
            model = model.to(dtype)
        model.load_state_dict(tensors, strict=True)
    except _REBUILD_ERRORS as exc:
        raise ModelFileError(f"state: does not fit the config: {_describe(exc)}") from None
    return model


def _describe(exc: BaseException) -> str:
    """The exception's full message on one line (tabs and newlines become spaces)."""
    text = " ".join(str(exc).split())
    if isinstance(exc, KeyError):
        text = f"missing key {text}"
    return text or type(exc).__name__


def _tensor(name: str, value: Any) -> torch.Tensor:
    """A stored array as a tensor; strings, objects and complex numbers are refused."""
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"state.{name}: not an array ({_describe(exc)})") from None
    if array.dtype.kind not in "biuf":
        raise ModelFileError(
            f"state.{name}: expected a numeric array, got {array.dtype} data"
        )
    return torch.as_tensor(array)


def save_model(model: nn.Module, path: str | os.PathLike[str]) -> Path:
    """Write ``model`` to an HDF5 file atomically (temp file, fsync, rename, fsync dir)."""
    import h5py

    path = Path(path)
    config, state = model_to_payload(model)
    with _fs.atomic_file(path) as tmp, h5py.File(tmp, "w") as fh:
        fh.attrs["format"] = FORMAT
        fh.attrs["format_version"] = FORMAT_VERSION
        fh.attrs["physkan_version"] = __version__
        fh["config"] = json.dumps(config)
        group = fh.create_group("state")
        for name, array in state.items():
            group.create_dataset(name.replace("/", "|"), data=array)
    return path


def load_model(path: str | os.PathLike[str]) -> nn.Module:
    """Load a model written by :func:`save_model`.

    Raises:
        ModelFileError: (a ``ValueError``, one line) if the file is not a physkan model
            file, has a newer format version, or holds a config/tensors that do not make
            a model.
    """
    import h5py

    path = Path(path)
    try:
        fh = h5py.File(path, "r")
    except OSError as exc:
        raise ModelFileError(f"{path}: not a readable HDF5 model file ({exc})") from None
    try:
        with fh:
            if fh.attrs.get("format") != FORMAT:
                raise ModelFileError(f"{path}: not a physkan model file")
            try:
                version = int(fh.attrs.get("format_version", -1))
            except (TypeError, ValueError):
                raise ModelFileError(f"{path}: format_version is not an integer") from None
            if version > FORMAT_VERSION:
                raise ModelFileError(
                    f"{path}: format version {version} is newer than this physkan supports "
                    f"({FORMAT_VERSION}); upgrade physkan"
                )
            config = _read_config(fh, path)
            if not isinstance(fh.get("state"), h5py.Group):
                raise ModelFileError(f"{path}: no /state group of tensors")
            state = {}
            for name, ds in fh["state"].items():
                if not isinstance(ds, h5py.Dataset):
                    raise ModelFileError(f"{path}: state.{name} is a group, not a tensor")
                state[name.replace("|", "/")] = ds[()]
    except ModelFileError:
        raise
    except (OSError, KeyError, TypeError, ValueError) as exc:  # corrupt HDF5 internals
        raise ModelFileError(f"{path}: cannot read the model file ({_describe(exc)})") from None
    try:
        return model_from_payload(config, state)
    except ModelFileError as exc:
        raise ModelFileError(f"{path}: {exc}") from None


def _read_config(fh: Any, path: Path) -> Any:
    """The ``/config`` JSON of an open model file."""
    if "config" not in fh:
        raise ModelFileError(f"{path}: no /config in the file")
    raw = fh["config"][()]
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    if not isinstance(raw, str):
        raise ModelFileError(f"{path}: config: expected a JSON string, got {type(raw).__name__}")
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{path}: config: not valid JSON ({exc})") from None
