"""One immutable HDF5 file per model version: write atomically, read and verify.

File layout (``FORMAT_VERSION = 1``)::

    /                 attrs: format="physkan-zoo", format_version, physkan_version,
                             created (ISO 8601), sha256 (hex)
    /card             JSON string: the :class:`~physkan.zoo.card.ModelCard`
    /model/config     JSON string: everything needed to rebuild the module ("kind", ...)
    /model/state      group; attr "names" = JSON list of tensor names in order
    /model/state/<k>  one dataset per tensor; <k> is the name with "%" -> "%25"
                      and "/" -> "%2F"; attr "name" holds the original name

No pickle is ever written or read, and no file is read before
:func:`physkan.zoo.hdf5_guard.check_open_file` has accepted it: hard links
only, no external storage or virtual datasets, no compression, and declared
data no larger than the file itself (or ``max_bytes``).

Payload hash (``sha256`` attribute, also the server's ETag) — independent of
HDF5 internals, computed over a framed byte stream::

    H = sha256(b"physkan-zoo/1\\n")
    frame(tag, data) := H.update(tag + b"\\0" + len(data) as 8-byte big-endian + data)
    frame(b"card",   canonical_json(card))
    frame(b"config", canonical_json(config))
    for name in sorted(state):               # Python str ordering
        a = state[name] as a C-contiguous little-endian numpy array
        frame(b"tensor", name.encode("utf-8"))
        frame(b"dtype",  a.dtype.str.encode())      # e.g. b"<f4", b"|b1"
        frame(b"shape",  canonical_json(list(a.shape)))
        frame(b"data",   a.tobytes())

where ``canonical_json(x) = json.dumps(x, sort_keys=True, separators=(",", ":"),
ensure_ascii=False).encode("utf-8")`` and the card is first converted with
``card.model_dump(mode="json")``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from physkan import _fs
from physkan.zoo.card import ModelCard, ZooError, card_from_json
from physkan.zoo.hdf5_guard import check_open_file

__all__ = [
    "FORMAT_VERSION",
    "StoredModel",
    "build_model",
    "canonical_json",
    "model_payload",
    "payload_sha256",
    "read_header",
    "read_model_file",
    "verify_file",
    "write_model_file",
]

FORMAT_NAME = "physkan-zoo"
FORMAT_VERSION = 1


def _to_payload(model: Any) -> tuple[dict, dict[str, np.ndarray]]:
    """Hook: module -> (config, tensors). Tests may monkeypatch this."""
    from physkan.io import model_to_payload

    return model_to_payload(model)


def _from_payload(config: dict, state: Mapping[str, np.ndarray]) -> Any:
    """Hook: (config, tensors) -> module. Tests may monkeypatch this."""
    from physkan.io import model_from_payload

    return model_from_payload(config, state)


def model_payload(model: Any) -> tuple[dict, dict[str, np.ndarray]]:
    """Turn a model into its JSON config and numpy tensors via ``physkan.io``."""
    try:
        config, state = _to_payload(model)
    except (TypeError, ValueError) as exc:
        raise ZooError(f"cannot store {type(model).__name__}: {exc}") from None
    return dict(config), {k: _as_array(k, v) for k, v in state.items()}


def build_model(stored: StoredModel) -> Any:
    """Rebuild the module of a loaded file via ``physkan.io.model_from_payload``."""
    try:
        return _from_payload(stored.config, stored.state)
    except (TypeError, ValueError, KeyError, RuntimeError) as exc:
        raise ZooError(f"{stored.path or 'model'}: cannot rebuild the model: {exc}") from None


@dataclass
class StoredModel:
    """The decoded content of one zoo file."""

    card: ModelCard
    config: dict[str, Any]
    state: dict[str, np.ndarray]
    sha256: str
    path: Path | None = None
    attrs: dict[str, Any] = field(default_factory=dict)


def canonical_json(obj: Any) -> bytes:
    """Deterministic JSON bytes (sorted keys, no spaces, UTF-8)."""
    try:
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    except (TypeError, ValueError) as exc:
        raise ZooError(f"not JSON-serialisable: {exc}") from None


def _as_array(name: str, value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor, without importing torch
        value = value.detach().cpu().numpy()
    arr = np.asarray(value)
    if not arr.flags.c_contiguous:  # (np.ascontiguousarray would turn 0-d into 1-d)
        arr = arr.copy(order="C")
    if arr.dtype.kind not in "biufc":
        raise ZooError(f"tensor {name!r} has unsupported dtype {arr.dtype} (numeric or bool only)")
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    return arr


def payload_sha256(card: ModelCard, config: Mapping[str, Any], state: Mapping[str, Any]) -> str:
    """The hex sha256 of a payload, by the scheme in the module docstring."""
    h = hashlib.sha256(b"physkan-zoo/1\n")

    def frame(tag: bytes, data: bytes) -> None:
        h.update(tag + b"\0" + len(data).to_bytes(8, "big"))
        h.update(data)

    frame(b"card", canonical_json(card.model_dump(mode="json")))
    frame(b"config", canonical_json(dict(config)))
    for name in sorted(state):
        arr = _as_array(name, state[name])
        frame(b"tensor", name.encode("utf-8"))
        frame(b"dtype", arr.dtype.str.encode())
        frame(b"shape", canonical_json(list(arr.shape)))
        frame(b"data", arr.tobytes())
    return h.hexdigest()


def _key(name: str) -> str:
    if not name:
        raise ZooError("tensor names must not be empty")
    return name.replace("%", "%25").replace("/", "%2F")


def write_model_file(
    path: str | os.PathLike,
    card: ModelCard,
    config: Mapping[str, Any],
    state: Mapping[str, Any],
    *,
    overwrite: bool = True,
) -> str:
    """Write a zoo file atomically and return its payload sha256.

    The file is written to a temp file in the same directory, fsynced, moved
    into place (``os.replace``, or ``os.link`` when ``overwrite=False`` so an
    existing file is never clobbered) and the directory is fsynced. On any
    error nothing appears at ``path``.
    """
    import h5py

    path = Path(path)
    if "kind" not in config:
        raise ZooError("model config must contain a 'kind' entry")
    arrays = {k: _as_array(k, v) for k, v in state.items()}
    sha = payload_sha256(card, config, arrays)
    card_json = canonical_json(card.model_dump(mode="json")).decode()
    config_json = canonical_json(dict(config)).decode()
    try:
        with _fs.atomic_file(path, overwrite=overwrite) as tmp, h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT_NAME
            f.attrs["format_version"] = FORMAT_VERSION
            f.attrs["physkan_version"] = card.physkan_version
            f.attrs["created"] = card.created.isoformat()
            f.attrs["sha256"] = sha
            f.create_dataset("card", data=card_json, dtype=h5py.string_dtype())
            model = f.create_group("model")
            model.create_dataset("config", data=config_json, dtype=h5py.string_dtype())
            group = model.create_group("state")
            group.attrs["names"] = json.dumps(list(arrays))
            for name, arr in arrays.items():
                _write_tensor(group, name, arr)
    except FileExistsError:
        raise ZooError(f"{path} already exists; zoo files are immutable") from None
    return sha


def _write_tensor(group: Any, name: str, arr: np.ndarray) -> None:
    ds = group.create_dataset(_key(name), data=arr)
    ds.attrs["name"] = name


def _str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _open(path: Path, max_bytes: int | None = None, only: tuple[str, ...] | None = None) -> Any:
    """Open ``path`` read-only after the HDF5 safety check (see the module docstring).

    ``only`` limits the check to the root attributes and those objects (for
    readers that touch nothing else).
    """
    import h5py

    if not path.is_file():
        raise ZooError(f"{path}: no such zoo file")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ZooError(f"{path}: not a readable HDF5 file (truncated or corrupt?): {exc}") from None
    try:
        size = path.stat().st_size
        check_open_file(f, max_bytes, source=str(path), file_size=size, only=only)
    except BaseException:
        f.close()
        raise
    return f


def _check_format(path: Path, attrs: Mapping[str, Any]) -> None:
    if _str(attrs.get("format", "")) != FORMAT_NAME or "format_version" not in attrs:
        raise ZooError(f"{path}: not a physkan zoo file (missing format attributes)")
    version = int(attrs["format_version"])
    if version > FORMAT_VERSION:
        raise ZooError(
            f"{path}: written in zoo format {version}, but this physkan reads formats up to "
            f"{FORMAT_VERSION}; upgrade physkan to load it"
        )
    if version < 1:
        raise ZooError(f"{path}: invalid zoo format version {version}")


def read_header(path: str | os.PathLike) -> tuple[ModelCard, str]:
    """Read only the card and the recorded sha256 (no tensor data, no hash check)."""
    path = Path(path)
    with _open(path, only=("card",)) as f:
        try:
            _check_format(path, f.attrs)
            return card_from_json(_str(f["card"][()]), str(path)), _str(f.attrs["sha256"])
        except ZooError:
            raise
        except Exception as exc:
            raise ZooError(f"{path}: corrupt zoo file ({type(exc).__name__}: {exc})") from None


def _load_json_object(path: Path, what: str, text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ZooError(f"{path}: corrupt zoo file ({what} is not valid JSON: {exc})") from None
    if not isinstance(value, dict):
        raise ZooError(
            f"{path}: corrupt zoo file ({what} must be a JSON object, not {type(value).__name__})"
        )
    return value


def _tensor_names(path: Path, text: str) -> list[str]:
    try:
        names = json.loads(text)
    except (ValueError, RecursionError):
        names = None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ZooError(f"{path}: corrupt zoo file (tensor names must be a JSON list of strings)")
    return names


def read_model_file(
    path: str | os.PathLike, *, verify: bool = True, max_bytes: int | None = None
) -> StoredModel:
    """Read a zoo file; with ``verify`` the payload sha256 must match the recorded one.

    ``max_bytes`` bounds the data the file may declare (the file's own size
    always does); a file over it raises
    :class:`~physkan.zoo.hdf5_guard.DeclaredSizeError` before anything is read.
    Raises :class:`ZooError` for a missing, truncated, corrupt, tampered,
    unsafe (links out of the file, external data) or future-format file.
    """
    path = Path(path)
    with _open(path, max_bytes) as f:
        try:
            _check_format(path, f.attrs)
            attrs = {k: _str(v) if isinstance(v, (bytes, str)) else v for k, v in f.attrs.items()}
            card = card_from_json(_str(f["card"][()]), str(path))
            config = _load_json_object(path, "/model/config", _str(f["model/config"][()]))
            if "kind" not in config:
                raise ZooError(f"{path}: corrupt zoo file (/model/config has no 'kind' entry)")
            group = f["model/state"]
            names = _tensor_names(path, _str(group.attrs["names"]))
            if sorted(_key(n) for n in names) != sorted(group.keys()):
                raise ZooError(f"{path}: corrupt zoo file (tensor list does not match datasets)")
            state = {n: np.asarray(group[_key(n)][()]) for n in names}
        except ZooError:
            raise
        except Exception as exc:
            raise ZooError(f"{path}: corrupt zoo file ({type(exc).__name__}: {exc})") from None
    recorded = str(attrs.get("sha256", ""))
    if verify:
        try:
            actual = payload_sha256(card, config, state)
        except RecursionError:
            raise ZooError(f"{path}: corrupt zoo file (config nested too deeply)") from None
        if actual != recorded:
            # never echo the computed hash: it would tell an uploader what the server read
            raise ZooError(
                f"{path}: checksum mismatch (the payload does not hash to the recorded "
                "sha256); the file is corrupt or was modified"
            )
    return StoredModel(card, config, state, recorded, path, attrs)


def verify_file(path: str | os.PathLike, max_bytes: int | None = None) -> str:
    """Fully read and hash-check a zoo file; return its sha256 or raise :class:`ZooError`.

    ``max_bytes`` bounds the declared data as in :func:`read_model_file`.
    """
    return read_model_file(path, verify=True, max_bytes=max_bytes).sha256
