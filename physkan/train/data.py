"""Full-batch data loading: every training step sees all samples (or this rank's shard).

KANs are trained full-batch (as in the KAN papers): one batch holding every sample per step.
:func:`full_batch_loader` returns a ``DataLoader`` over :class:`FullBatchDataset`, whose
``steps`` items are each the whole batch, so one Lightning *epoch* is the whole run and the
progress bar counts steps.

Under DDP the dataset shards itself when an item is fetched, with
``torch.utils.data.DistributedSampler`` semantics (no shuffling): the row indices are padded
to a multiple of the world size by repeating the first rows, and rank ``r`` of ``W`` gets
rows ``r, r + W, r + 2W, ...``. Every shard has the same size, so the mean of the per-rank
losses is the loss on the padded set, DDP's mean of the gradients is its gradient, and
``all_gather`` of per-rank tensors needs no padding. Because the dataset shards itself, the
Trainer must not inject a ``DistributedSampler`` (``use_distributed_sampler=False``, the
default of :func:`~physkan.train.trainer.make_trainer`).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.distributed as dist
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

__all__ = ["FullBatchDataset", "check_batch", "full_batch_loader", "rank_and_world", "shard_rows"]


def rank_and_world() -> tuple[int, int]:
    """``(rank, world_size)`` of the default process group, ``(0, 1)`` without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def check_batch(tensors: Mapping[str, Tensor]) -> int:
    """Number of rows ``N`` shared by every tensor of ``tensors``.

    Raises:
        ValueError: empty mapping, a non-tensor, a 0-dim tensor or mismatched row counts.
    """
    if not tensors:
        raise ValueError("the batch holds no tensors")
    rows: dict[str, int] = {}
    for key, value in tensors.items():
        if not isinstance(value, Tensor):
            raise TypeError(f"batch[{key!r}]: expected a torch.Tensor, got {type(value).__name__}")
        if value.dim() == 0:
            raise ValueError(f"batch[{key!r}]: expected samples along dim 0, got a 0-dim tensor")
        rows[key] = int(value.shape[0])
    if len(set(rows.values())) != 1:
        raise ValueError(f"batch tensors must have the same number of rows, got {rows}")
    n = next(iter(rows.values()))
    if n == 0:
        raise ValueError("the batch holds no samples")
    return n


def shard_rows(n: int, rank: int, world: int) -> Tensor:
    """Row indices of rank ``rank`` of ``world`` (``DistributedSampler``, no shuffle).

    Returns:
        ``(ceil(n / world),)`` long tensor.
    """
    total = -(-n // world) * world
    idx = torch.arange(total) % n  # pad by wrapping around to the first rows
    return idx[rank:total:world]


class FullBatchDataset(Dataset):
    """``steps`` items, each the full batch (this rank's shard under DDP).

    Args:
        tensors: ``name -> (N, ...)`` tensors with a common ``N``.
        steps: number of items (training steps); 1 for a validation set.
    """

    def __init__(self, tensors: Mapping[str, Tensor], steps: int = 1) -> None:
        self.n = check_batch(tensors)
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        self.tensors = {k: v.detach() for k, v in tensors.items()}
        self.steps = int(steps)
        self._cache: tuple[tuple[int, int], dict[str, Tensor]] | None = None

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        if not 0 <= index < self.steps:
            raise IndexError(index)
        key = rank_and_world()
        if self._cache is None or self._cache[0] != key:
            rank, world = key
            if world == 1:
                shard = dict(self.tensors)
            else:
                rows = shard_rows(self.n, rank, world)
                shard = {k: v[rows] for k, v in self.tensors.items()}
            self._cache = (key, shard)
        return dict(self._cache[1])

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_cache"] = None  # never ship a shard to a spawned process
        return state


def full_batch_loader(tensors: Mapping[str, Tensor], steps: int = 1) -> DataLoader:
    """A ``DataLoader`` yielding the full batch ``steps`` times (no collation, no workers)."""
    return DataLoader(FullBatchDataset(tensors, steps), batch_size=None, shuffle=False)
