"""Saving and loading models as *config + tensors* (JSON + HDF5), never pickle.

A model is described by a JSON-able ``config`` (with a ``"kind"`` naming its class) and a
mapping of tensor names to arrays. :func:`save_model` writes both into one HDF5 file:

```
/attrs: format ("physkan-model"), format_version, physkan_version
/config            JSON string
/state/<name>      one dataset per tensor ('/' in names is stored as '|')
```
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = [
    "MODEL_KINDS",
    "ModelFileError",
    "load_model",
    "model_from_payload",
    "model_to_payload",
    "register_model_kind",
    "save_model",
]

FORMAT = "physkan-model"
FORMAT_VERSION = 1

MODEL_KINDS: dict[str, Callable[[dict[str, Any]], nn.Module]] = {}

#: what rebuilding a module from a malformed config or state may raise.
_REBUILD_ERRORS = (
    TypeError, KeyError, ValueError, IndexError, AttributeError, RuntimeError, OverflowError,
    MemoryError,
)  # fmt: skip


class ModelFileError(ValueError):
    """A model file or payload that cannot be loaded; ``str(err)`` is one line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


def register_model_kind(kind: str, factory: Callable[[dict[str, Any]], nn.Module]) -> None:
    """Register ``factory(config) -> module`` for configs with ``config["kind"] == kind``."""
    MODEL_KINDS[kind] = factory


def _default_kinds() -> None:
    if "multkan" not in MODEL_KINDS:
        from physkan.kan.network import MultKAN

        register_model_kind("multkan", MultKAN.from_config)
    if "s2kan" not in MODEL_KINDS:
        try:
            from physkan.s2kan.model import S2KAN
        except ImportError:
            return
        register_model_kind("s2kan", S2KAN.from_config)


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
    _default_kinds()
    if not isinstance(config, Mapping):
        raise ModelFileError(
            f"config: expected a JSON object with a 'kind', got a {type(config).__name__}"
        )
    kind = config.get("kind")
    if not isinstance(kind, str) or kind not in MODEL_KINDS:
        raise ModelFileError(
            f"config.kind: unknown model kind {kind!r}; known: {', '.join(sorted(MODEL_KINDS))}"
        )
    tensors = {name: _tensor(name, value) for name, value in state.items()}
    try:
        model = MODEL_KINDS[kind](dict(config))
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
    """Write ``model`` to an HDF5 file atomically (temp file, fsync, rename)."""
    import h5py

    from physkan import __version__

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    config, state = model_to_payload(model)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as fh:
            fh.attrs["format"] = FORMAT
            fh.attrs["format_version"] = FORMAT_VERSION
            fh.attrs["physkan_version"] = __version__
            fh["config"] = json.dumps(config)
            group = fh.create_group("state")
            for name, array in state.items():
                group.create_dataset(name.replace("/", "|"), data=array)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
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
