"""Read named numeric columns from a user's CSV or HDF5 file.

Supported layouts:

* **CSV** — a header row of column names, then one numeric row per sample
  (``,`` separated; blank lines are skipped; an empty cell is a missing value);
* **HDF5** — either one 1-D dataset per column at the root (``/x``, ``/y``), or a single
  2-D dataset of shape ``(rows, columns)`` with a ``columns`` attribute naming them.

Missing columns, NaN/inf values, ragged rows and non-numeric cells all raise
:class:`~physkan.problems.errors.ProblemError` naming the file and the column.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from .errors import ProblemError

__all__ = ["CSV_SUFFIXES", "HDF5_SUFFIXES", "file_sha256", "read_columns"]

CSV_SUFFIXES = (".csv", ".txt")
HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".he5")


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes (data provenance)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_csv(path: Path) -> dict[str, np.ndarray]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        rows = [row for row in csv.reader(fh) if row and any(c.strip() for c in row)]
    if not rows:
        raise ProblemError(f"{path}: empty CSV file", source=path)
    header = [h.strip() for h in rows[0]]
    values = np.empty((len(rows) - 1, len(header)), dtype=np.float64)
    for i, row in enumerate(rows[1:]):
        if len(row) != len(header):
            raise ProblemError(
                f"{path}: line {i + 2} has {len(row)} fields, the header has {len(header)}",
                source=path,
            )
        for j, cell in enumerate(row):
            text = cell.strip()
            try:
                values[i, j] = float(text) if text else np.nan
            except ValueError:
                raise ProblemError(
                    f"{path}: column {header[j]!r}, line {i + 2}: {text!r} is not a number",
                    source=path,
                ) from None
    return {name: values[:, j] for j, name in enumerate(header)}


class _NotNumeric:
    """A column that exists but cannot be read as numbers (reported only if it is used)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _numeric(path: Path, name: str, dataset: object) -> np.ndarray | _NotNumeric:
    try:
        array = np.asarray(dataset[()])  # type: ignore[index]
    except (TypeError, ValueError, OSError) as err:
        return _NotNumeric(f"{path}: column {name!r} cannot be read ({err})")
    if array.dtype.kind not in "biuf":
        return _NotNumeric(f"{path}: column {name!r} is not numeric (HDF5 type {array.dtype})")
    return array.astype(np.float64)


def _read_hdf5(path: Path) -> dict[str, np.ndarray | _NotNumeric]:
    import h5py

    try:
        fh = h5py.File(path, "r")
    except OSError as err:
        raise ProblemError(f"{path}: not a readable HDF5 file ({err})", source=path) from None
    with fh:
        out: dict[str, np.ndarray | _NotNumeric] = {}
        for key, item in fh.items():
            if not isinstance(item, h5py.Dataset):
                continue
            if item.ndim == 1:
                out[key] = _numeric(path, key, item)
            elif item.ndim == 2 and "columns" in item.attrs:
                raw = item.attrs["columns"]
                raw = [raw] if np.ndim(raw) == 0 else list(raw)
                names = [c.decode(errors="replace") if isinstance(c, bytes) else str(c) for c in raw]
                if len(names) != item.shape[1]:
                    raise ProblemError(
                        f"{path}: dataset {key!r} has {item.shape[1]} columns but its "
                        f"'columns' attribute names {len(names)}",
                        source=path,
                    )
                table = _numeric(path, key, item)
                for j, name in enumerate(names):
                    out.setdefault(name, table if isinstance(table, _NotNumeric) else table[:, j])
    return out


def read_columns(
    path: str | Path,
    names: Sequence[str],
    columns: Mapping[str, str] | None = None,
    *,
    optional: Sequence[str] = (),
) -> dict[str, np.ndarray]:
    """Read the columns ``names`` (renamed through ``columns``: name -> column) from a file.

    Returns ``{name: float64 array}``, all of the same length; the ``optional`` names are
    read (and checked) too when the file has them, and left out when it does not.

    Raises:
        ProblemError: unreadable file, unknown format, missing columns (the message lists
            the missing and the available ones), unequal lengths, or NaN/inf values.
    """
    path = Path(path)
    columns = dict(columns or {})
    if not path.is_file():
        raise ProblemError(f"data file {str(path)!r} does not exist", source=path)
    suffix = path.suffix.lower()
    names = [*names, *(n for n in optional if n not in names)]
    wanted = [columns.get(n, n) for n in names]
    try:
        if suffix in CSV_SUFFIXES:
            table = _read_csv(path)
        elif suffix in HDF5_SUFFIXES:
            table = _read_hdf5(path)
        else:
            raise ProblemError(
                f"{path}: unknown data format {suffix!r}; use CSV ({', '.join(CSV_SUFFIXES)}) "
                f"or HDF5 ({', '.join(HDF5_SUFFIXES)})",
                source=path,
            )
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise ProblemError(f"{path}: cannot read ({err})", source=path) from None
    keep = [n not in optional or columns.get(n, n) in table for n in names]
    names = [n for n, k in zip(names, keep, strict=True) if k]
    wanted = [w for w, k in zip(wanted, keep, strict=True) if k]
    missing = [c for c in wanted if c not in table]
    if missing:
        raise ProblemError(
            f"{path}: missing column(s) {', '.join(missing)}; available: "
            f"{', '.join(table) or 'none'} (map names with [data].columns)",
            source=path,
        )
    for col in wanted:
        entry = table[col]
        if isinstance(entry, _NotNumeric):
            raise ProblemError(entry.reason, source=path)
    out = {name: table[col] for name, col in zip(names, wanted, strict=True)}
    lengths = {len(v) for v in out.values()}
    if len(lengths) > 1:
        raise ProblemError(f"{path}: columns have different lengths {sorted(lengths)}", source=path)
    if lengths == {0}:
        raise ProblemError(f"{path}: no data rows", source=path)
    for name, col in zip(names, wanted, strict=True):
        bad = ~np.isfinite(out[name])
        if bad.any():
            raise ProblemError(
                f"{path}: column {col!r} has {int(bad.sum())} missing/NaN/inf value(s) "
                f"(first at row {int(np.argmax(bad))})",
                source=path,
            )
    return out
