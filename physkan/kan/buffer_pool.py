"""Reusable buffers for tensors that a fused kernel saves for its backward.

A training step allocates the same large tensors (dense basis, row table) every forward and
frees them after backward. Above glibc's mmap threshold each fresh allocation is new pages
from the kernel: one page fault per 4 KiB, which on a ``(1024, 896)`` float32 basis costs
as much as the GEMM that reads it. :func:`reusable` hands back a buffer of the requested
shape that nothing else references any more (no autograd graph holds it: its use count is
the pool's own), so steady-state training allocates nothing.

A buffer is only reused once every graph that saved it is gone, so two forwards before one
backward (or a retained graph) simply get two buffers; results are never shared.
"""

from __future__ import annotations

import sys
import threading

import torch
from torch import Tensor

__all__ = ["reusable", "POOL_PER_KEY", "POOL_MAX_BYTES"]

#: Buffers kept per (kind, shape, dtype, device); beyond it buffers are plain allocations.
POOL_PER_KEY = 4
#: Bytes the pool may keep alive per thread; larger requests are plain allocations.
POOL_MAX_BYTES = 256 << 20
#: At most this many keys (shapes) are kept; the oldest is dropped.
_MAX_KEYS = 16


class _Pool(threading.local):
    def __init__(self) -> None:
        self.buffers: dict[tuple, list[Tensor]] = {}
        self.bytes = 0

    def drop_oldest(self) -> None:
        for buf in self.buffers.pop(next(iter(self.buffers))):
            self.bytes -= buf.nbytes


_POOL = _Pool()


def _counts(buf: Tensor) -> tuple[int, int, int]:
    """References to ``buf``: its tensor (C++: graphs, views), its storage (aliases such as
    ``detach()``) and its Python object (callers' variables)."""
    return buf._use_count(), torch._C._storage_Use_Count(buf.untyped_storage()._cdata), sys.getrefcount(buf)


def _baseline() -> tuple[int, int, int] | None:
    """The counts of a buffer that only a pool list holds (measured, not assumed)."""
    try:
        probe = [torch.empty(1)]
        return _counts(probe[0])
    except (AttributeError, RuntimeError):  # no use counts on this build: never reuse
        return None


_FREE = _baseline()




def reusable(kind: str, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> Tensor:
    """An uninitialised tensor of ``shape`` that may be saved for backward and returned.

    Args:
        kind: a name separating buffers of different roles with the same shape.
        shape, dtype, device: of the buffer.
    Returns:
        A pooled buffer nobody else references, or a new one (pooled while there is room).
    """
    key = (kind, tuple(shape), dtype, device)
    bufs = _POOL.buffers.get(key)
    if bufs is None:
        if len(_POOL.buffers) >= _MAX_KEYS:
            _POOL.drop_oldest()
        bufs = _POOL.buffers[key] = []
    for i in range(len(bufs)):  # (counted as in _baseline: only the list holds a free one)
        if _FREE is not None and _counts(bufs[i]) == _FREE:
            return bufs[i]
    buf = torch.empty(shape, dtype=dtype, device=device)
    if len(bufs) < POOL_PER_KEY and _POOL.bytes + buf.nbytes <= POOL_MAX_BYTES:
        bufs.append(buf)
        _POOL.bytes += buf.nbytes
    return buf
