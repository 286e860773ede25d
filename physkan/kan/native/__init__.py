"""Compiled local B-spline kernels (``bspline.c``), loaded with :mod:`ctypes`; optional.

The fused uniform-grid route of a KAN layer (:mod:`physkan.kan.local_fused`) contracts
only the ``k + 1`` active functions per input. In pure PyTorch that needs a dense
``(N, in * nb)`` basis tensor and indexing kernels at ~3 ns per value; the kernels here
compute the local values on the fly and never build it:

* :func:`spline_forward`    ``y (N, out)`` from ``x (N, in)`` and ``coef (in * nb, out)``
* :func:`spline_coef_grad`  ``dL/dcoef (in * nb, out)`` from ``g = dL/dy (N, out)``
* :func:`spline_input_grad` ``dL/dx (N, in)`` from ``g @ coef^T`` (first order; backwards
  with ``create_graph`` keep to the differentiable PyTorch route)
* :func:`spline_basis`      the dense basis ``(N, in, nb)`` on any non-decreasing knots, the
  same bits as :func:`physkan.kan.basis.bspline_basis`'s PyTorch route
* :func:`spline_basis_grad` its first-order ``dL/dx (N, in)`` from ``dL/dbasis``

Build: on first use ``bspline.c`` is compiled with the system C compiler (``$PHYSKAN_CC``,
``$CC``, ``cc``, ``gcc`` or ``clang``; -O3, C99, OpenMP, about a second) into the user
cache (``platformdirs.user_cache_dir("physkan")/native``, or ``$PHYSKAN_NATIVE_DIR``),
named by a hash of the source, flags and platform and published atomically, so concurrent
processes (DDP workers) are safe and later runs load it at once; ``scripts/setup.sh``
builds it ahead (``python -m physkan.kan.native``). OpenMP resolves to the libgomp torch
has loaded, so the kernels run on torch's own thread pool (``torch.set_num_threads``);
without OpenMP they build single-threaded. Without a compiler, on a failed build, for
devices other than the CPU or dtypes other than float32/float64, inside :func:`disabled`,
or with ``PHYSKAN_NATIVE=0``, :func:`available` is False and the layer keeps its
pure-PyTorch route: the same numbers to rounding, slower. Results are the same bits for
any thread count (see ``bspline.c``).
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import Tensor

__all__ = [
    "available", "build", "disabled", "library_path", "spline_basis", "spline_basis_grad", "spline_coef_grad",
    "spline_forward", "spline_input_grad",
]

_log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("bspline.c")
#: compiler flags: -std=c99 keeps floating-point contraction off (the same bits on every CPU)
FLAGS = ("-O3", "-std=c99", "-fno-trapping-math", "-fopenmp", "-fPIC", "-shared")
#: the ABI version ``bspline.c`` reports (``physkan_spline_abi``)
ABI = 2
#: seconds a build may take before it is abandoned (the PyTorch route is used)
BUILD_TIMEOUT_S = 120.0
_DTYPES = {torch.float32: "f32", torch.float64: "f64"}

_lock = threading.Lock()
_state: dict[str, object] = {}  # "lib": ctypes.CDLL | None once tried
_off = threading.local()  # .depth > 0 inside `disabled()` (per thread)


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Within the block (this thread), :func:`available` is False: the PyTorch route runs
    (benchmarks and tests compare both routes in one process)."""
    _off.depth = getattr(_off, "depth", 0) + 1
    try:
        yield
    finally:
        _off.depth -= 1


def _cache_dir() -> Path:
    explicit = os.environ.get("PHYSKAN_NATIVE_DIR")
    if explicit:
        return Path(explicit)
    import platformdirs

    return Path(platformdirs.user_cache_dir("physkan")) / "native"


def library_path() -> Path:
    """Where the compiled library for this source, these flags and this platform lives."""
    digest = hashlib.sha256(SOURCE.read_bytes())
    digest.update(repr((FLAGS, sys.platform, platform.machine())).encode())
    return _cache_dir() / f"bspline-{digest.hexdigest()[:16]}.so"


def _compiler() -> str | None:
    for name in (os.environ.get("PHYSKAN_CC"), os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def build(path: Path | None = None) -> Path:
    """Compile ``bspline.c`` to ``path`` (default :func:`library_path`) atomically.

    Raises:
        RuntimeError: no C compiler, or the build failed (its message included).
    """
    from physkan._fs import atomic_file

    path = path or library_path()
    cc = _compiler()
    if cc is None:
        raise RuntimeError("no C compiler found (set PHYSKAN_CC or CC, or install gcc)")
    with atomic_file(path) as tmp:
        errors = []
        for flags in (FLAGS, tuple(f for f in FLAGS if f != "-fopenmp")):  # then single-threaded
            cmd = [cc, *flags, str(SOURCE), "-o", str(tmp), "-lm"]
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
            if done.returncode == 0:
                break
            errors.append(f"{' '.join(cmd)} failed:\n{done.stderr.strip()}")
        else:
            raise RuntimeError("\n".join(errors))
    return path


def _disabled_by_environment() -> bool:
    return os.environ.get("PHYSKAN_NATIVE", "1").strip().lower() in ("0", "false", "no", "off")


def _open() -> ctypes.CDLL:
    """Build the library if this source has none yet, load it and declare its functions.

    Raises:
        RuntimeError, OSError, subprocess.TimeoutExpired: no compiler, a failed build or load,
        an ABI mismatch.
    """
    path = library_path()
    if not path.exists():
        build(path)
    lib = ctypes.CDLL(str(path))
    lib.physkan_spline_abi.restype = ctypes.c_int64
    lib.physkan_spline_max_order.restype = ctypes.c_int64
    if lib.physkan_spline_abi() != ABI:
        raise RuntimeError(f"{path}: ABI {lib.physkan_spline_abi()}, expected {ABI}")
    for name in ("forward", "coef_grad", "input_grad", "basis", "basis_grad"):
        for suffix in _DTYPES.values():
            getattr(lib, f"physkan_spline_{name}_{suffix}").restype = None
    return lib


def _load() -> ctypes.CDLL | None:
    if _disabled_by_environment():
        return None
    try:
        return _open()
    except Exception as err:  # no compiler, read-only cache, foreign platform: PyTorch route
        _log.info("physkan native B-spline kernels unavailable (%s); using the PyTorch route", err)
        return None


def _library() -> ctypes.CDLL | None:
    if "lib" not in _state:
        with _lock:
            if "lib" not in _state:
                _state["lib"] = _load()
    return _state["lib"]  # type: ignore[return-value]


def available(*tensors: Tensor, k: int | None = None) -> bool:
    """Whether the compiled kernels can serve these tensors (CPU, float32 or float64, one
    dtype) and order ``k``; builds or loads the library on first call."""
    if getattr(_off, "depth", 0) > 0:
        return False
    if any(t.device.type != "cpu" or t.dtype not in _DTYPES for t in tensors):
        return False
    if len({t.dtype for t in tensors}) > 1:
        return False
    lib = _library()
    return lib is not None and (k is None or 1 <= k <= lib.physkan_spline_max_order())


def _ptr(t: Tensor | None) -> ctypes.c_void_p:
    return ctypes.c_void_p(None if t is None else t.data_ptr())


def _i(v: int) -> ctypes.c_int64:
    return ctypes.c_int64(int(v))


def _threads() -> int:
    return max(1, torch.get_num_threads())


def _fn(name: str, dtype: torch.dtype):
    return getattr(_library(), f"physkan_spline_{name}_{_DTYPES[dtype]}")


def _check(x: Tensor, t0: Tensor, h: Tensor, n_basis: int, k: int, rows: int | None = None) -> None:
    """Shapes the C code trusts (it indexes raw memory): raise instead of reading past them."""
    if x.dim() != 2 or t0.shape != (x.shape[1],) or h.shape != (x.shape[1],):
        raise ValueError(f"x (N, in) with t0, h (in,): got {tuple(x.shape)}, {tuple(t0.shape)}, {tuple(h.shape)}")
    if n_basis < k + 1:
        raise ValueError(f"n_basis must be >= k + 1 = {k + 1}, got {n_basis}")
    if rows is not None and rows != x.shape[1] * n_basis:
        raise ValueError(f"coefficients: expected {x.shape[1] * n_basis} rows (in * n_basis), got {rows}")


def spline_forward(x: Tensor, t0: Tensor, h: Tensor, n_basis: int, k: int, m: Tensor, coef: Tensor) -> Tensor:
    """``y (N, out)``: the spline branch for ``x (N, in)`` on the uniform grid ``t0 + h * j``
    (``t0, h (in,)``), ``m (k+1, k+1)`` the local polynomials' coefficients
    (:func:`~physkan.kan.local_basis.uniform_bspline_matrix`), ``coef (in * n_basis, out)``.
    Inputs must satisfy :func:`available`; they are made contiguous here."""
    _check(x, t0, h, n_basis, k, coef.shape[0])
    x, t0, h, m, coef = (t.contiguous() for t in (x, t0, h, m, coef))
    n, n_in = x.shape
    y = x.new_empty(n, coef.shape[1])
    _fn("forward", x.dtype)(_ptr(x), _i(n), _i(n_in), _ptr(t0), _ptr(h), _i(n_basis), _i(k), _ptr(m),
                            _ptr(coef), _i(coef.shape[1]), _ptr(y), _i(_threads()))  # fmt: skip
    return y


def spline_coef_grad(x: Tensor, t0: Tensor, h: Tensor, n_basis: int, k: int, m: Tensor, g: Tensor) -> Tensor:
    """``dL/dcoef (in * n_basis, out)`` = basis(x)^T ``g`` for ``g = dL/dy (N, out)``."""
    _check(x, t0, h, n_basis, k)
    if g.shape[0] != x.shape[0]:
        raise ValueError(f"g: expected {x.shape[0]} rows, got {g.shape[0]}")
    x, t0, h, m, g = (t.contiguous() for t in (x, t0, h, m, g))
    n, n_in = x.shape
    gc = x.new_empty(n_in * n_basis, g.shape[1])
    _fn("coef_grad", x.dtype)(_ptr(x), _i(n), _i(n_in), _ptr(t0), _ptr(h), _i(n_basis), _i(k), _ptr(m),
                              _ptr(g), _i(g.shape[1]), _ptr(gc), _i(_threads()))  # fmt: skip
    return gc


def spline_input_grad(x: Tensor, t0: Tensor, h: Tensor, n_basis: int, k: int, d: Tensor, full: Tensor) -> Tensor:
    """``dL/dx (N, in)`` of the spline branch from ``full = g @ coef^T`` ``(N, width)``
    (``width >= in * n_basis``; ``g = dL/dy``): ``sum_r values_r'(f) / h`` times the entries
    of ``full`` at the active functions, ``d (k+1, k)`` the derivative polynomials'
    coefficients (:func:`~physkan.kan.local_basis.derivative`)."""
    _check(x, t0, h, n_basis, k)
    if full.shape[0] != x.shape[0] or full.shape[1] < x.shape[1] * n_basis:
        raise ValueError(f"full: expected ({x.shape[0]}, >= {x.shape[1] * n_basis}), got {tuple(full.shape)}")
    x, t0, h, d, full = (t.contiguous() for t in (x, t0, h, d, full))
    n, n_in = x.shape
    gx = x.new_empty(n, n_in)
    _fn("input_grad", x.dtype)(_ptr(x), _i(n), _i(n_in), _ptr(t0), _ptr(h), _i(n_basis), _i(k), _ptr(d),
                               _ptr(full), _i(full.shape[1]), _ptr(gx), _i(_threads()))  # fmt: skip
    return gx


def spline_basis(x: Tensor, grid: Tensor, k: int) -> Tensor:
    """The B-spline basis ``(N, in, M - 1 - k)`` of ``x (N, in)`` on the knots ``grid (in, M)``
    (any non-decreasing rows), bit for bit what the PyTorch route of
    :func:`physkan.kan.basis.bspline_basis` gives on such a grid. No autograd here (the
    caller pairs it with :func:`spline_basis_grad`). Inputs must satisfy :func:`available`."""
    _check_knots(x, grid, k)
    n_knots = grid.shape[1]
    x, grid = x.contiguous(), grid.contiguous()
    n, n_in = x.shape
    out = x.new_empty(n, n_in, n_knots - 1 - k)
    if out.numel() == 0:
        return out
    _fn("basis", x.dtype)(_ptr(x), _i(n), _i(n_in), _ptr(grid), _i(n_knots), _i(k), _ptr(out),
                          _i(_threads()))  # fmt: skip
    return out


def _check_knots(x: Tensor, grid: Tensor, k: int) -> None:
    if x.dim() != 2 or grid.dim() != 2 or grid.shape[0] != x.shape[1]:
        raise ValueError(f"x (N, in) with grid (in, M): got {tuple(x.shape)}, {tuple(grid.shape)}")
    if grid.shape[1] < k + 2:
        raise ValueError(f"grid: need at least k + 2 = {k + 2} knots per input, got {grid.shape[1]}")


def spline_basis_grad(x: Tensor, grid: Tensor, k: int, g: Tensor) -> Tensor:
    """``dL/dx (N, in)`` of :func:`spline_basis` for ``g = dL/dbasis (N, in, M - 1 - k)``
    (first order; the same numbers as autograd through the PyTorch route, to rounding)."""
    _check_knots(x, grid, k)
    if g.shape != (x.shape[0], x.shape[1], grid.shape[1] - 1 - k):
        raise ValueError(f"g: expected {(x.shape[0], x.shape[1], grid.shape[1] - 1 - k)}, got {tuple(g.shape)}")
    x, grid, g = x.contiguous(), grid.contiguous(), g.contiguous()
    gx = x.new_empty(x.shape)
    if gx.numel() == 0:
        return gx
    _fn("basis_grad", x.dtype)(_ptr(x), _i(x.shape[0]), _i(x.shape[1]), _ptr(grid), _i(grid.shape[1]), _i(k),
                               _ptr(g), _ptr(gx), _i(_threads()))  # fmt: skip
    return gx


def _main() -> int:
    """``python -m physkan.kan.native``: build (if needed) and load; print where, or why not."""
    if _disabled_by_environment():
        print("physkan native kernels: disabled (PHYSKAN_NATIVE)", file=sys.stderr)
        return 1
    try:
        _state["lib"] = _open()
    except Exception as err:  # noqa: BLE001 - reported, the PyTorch route stays
        print(f"physkan native kernels not built: {err}", file=sys.stderr)
        return 1
    print(f"physkan native kernels: {library_path()}")
    return 0
