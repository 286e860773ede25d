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
    "load_model",
    "model_from_payload",
    "model_to_payload",
    "register_model_kind",
    "save_model",
]

FORMAT = "physkan-model"
FORMAT_VERSION = 1

MODEL_KINDS: dict[str, Callable[[dict[str, Any]], nn.Module]] = {}


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
    """Rebuild a model from :func:`model_to_payload`'s output (tensors bitwise equal)."""
    _default_kinds()
    kind = config.get("kind")
    if kind not in MODEL_KINDS:
        raise ValueError(
            f"config.kind: unknown model kind {kind!r}; known: {', '.join(sorted(MODEL_KINDS))}"
        )
    model = MODEL_KINDS[kind](dict(config))
    tensors = {k: torch.as_tensor(np.asarray(v)) for k, v in state.items()}
    dtype = next(iter(tensors.values())).dtype if tensors else torch.float32
    if dtype.is_floating_point:
        model = model.to(dtype)
    model.load_state_dict(tensors, strict=True)
    return model


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
        ValueError: if the file is not a physkan model file or has a newer format version.
    """
    import h5py

    path = Path(path)
    try:
        fh = h5py.File(path, "r")
    except OSError as exc:
        raise ValueError(f"{path}: not a readable HDF5 model file ({exc})") from None
    with fh:
        if fh.attrs.get("format") != FORMAT:
            raise ValueError(f"{path}: not a physkan model file")
        version = int(fh.attrs.get("format_version", -1))
        if version > FORMAT_VERSION:
            raise ValueError(
                f"{path}: format version {version} is newer than this physkan supports "
                f"({FORMAT_VERSION}); upgrade physkan"
            )
        config = json.loads(fh["config"][()])
        state = {name.replace("|", "/"): ds[()] for name, ds in fh["state"].items()}
    return model_from_payload(config, state)
