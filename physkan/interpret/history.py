"""Checkpoints for hypothesis testing (KAN 2.0, Sec. 4.3, trick C).

A :class:`History` stores named checkpoints: deep copies of a model's ``config()`` and
``state_dict()``. Rewinding restores the exact parameters *and* structure: when the current
model still has the checkpointed structure its tensors are overwritten in place, otherwise
(e.g. after pruning replaced the network) a new model is built from the checkpoint.

The module-level :func:`checkpoint` / :func:`rewind` keep the history on the model itself;
the pruning functions hand it on to the networks they build, so ``rewind(pruned, name)``
returns the network as it was before pruning.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from physkan.io import model_from_payload

__all__ = ["Checkpoint", "History", "checkpoint", "history_of", "inherit_history", "rewind"]

_ATTR = "_physkan_history"


@dataclass
class Checkpoint:
    """A frozen model version: ``config`` (JSON-able) and cloned tensors ``state``."""

    name: str
    config: dict[str, Any]
    state: dict[str, Tensor]
    time: float = field(default_factory=time.time)
    note: str = ""

    @classmethod
    def of(cls, model: nn.Module, name: str, note: str = "") -> Checkpoint:
        """Deep-copy ``model`` (which must have ``config()``)."""
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return cls(name=name, config=copy.deepcopy(model.config()), state=state, note=note)

    def build(self) -> nn.Module:
        """A new model equal to the checkpointed one."""
        return model_from_payload(self.config, {k: v.clone() for k, v in self.state.items()})


class History:
    """Named checkpoints, in creation order."""

    def __init__(self) -> None:
        self.checkpoints: dict[str, Checkpoint] = {}

    def __contains__(self, name: str) -> bool:
        return name in self.checkpoints

    def __len__(self) -> int:
        return len(self.checkpoints)

    def names(self) -> list[str]:
        return list(self.checkpoints)

    def save(self, model: nn.Module, name: str, note: str = "") -> Checkpoint:
        """Store (or overwrite) checkpoint ``name`` of ``model``."""
        ckpt = Checkpoint.of(model, name, note)
        self.checkpoints[name] = ckpt
        return ckpt

    def get(self, name: str) -> Checkpoint:
        if name not in self.checkpoints:
            known = ", ".join(self.checkpoints) or "none"
            raise KeyError(f"no checkpoint named {name!r} (known: {known})")
        return self.checkpoints[name]

    @torch.no_grad()
    def restore(self, name: str, model: nn.Module | None = None) -> nn.Module:
        """The model of checkpoint ``name``: ``model`` restored in place when its structure
        matches the checkpoint, a new model otherwise."""
        ckpt = self.get(name)
        if model is not None and _same_structure(model, ckpt):
            for key, value in model.state_dict().items():
                value.copy_(ckpt.state[key])
            target = model
        else:
            target = ckpt.build()
        setattr(target, _ATTR, self)
        return target


def _same_structure(model: nn.Module, ckpt: Checkpoint) -> bool:
    if not hasattr(model, "config") or model.config() != ckpt.config:
        return False
    state = model.state_dict()
    return state.keys() == ckpt.state.keys() and all(
        state[k].shape == v.shape and state[k].dtype == v.dtype for k, v in ckpt.state.items()
    )


def history_of(model: nn.Module) -> History:
    """The history attached to ``model`` (created on first use)."""
    hist = getattr(model, _ATTR, None)
    if hist is None:
        hist = History()
        setattr(model, _ATTR, hist)
    return hist


def inherit_history(old: nn.Module, new: nn.Module) -> None:
    """Let ``new`` (e.g. a pruned copy of ``old``) share ``old``'s history."""
    hist = getattr(old, _ATTR, None)
    if hist is not None:
        setattr(new, _ATTR, hist)


def checkpoint(model: nn.Module, name: str, note: str = "") -> Checkpoint:
    """Save ``model`` as checkpoint ``name`` in its own history."""
    return history_of(model).save(model, name, note)


def rewind(model: nn.Module, name: str) -> nn.Module:
    """Return ``model`` as it was at checkpoint ``name`` (in place when the structure matches).

    Raises:
        KeyError: if ``model``'s history has no such checkpoint.
    """
    return history_of(model).restore(name, model)
