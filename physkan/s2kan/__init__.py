"""S2KAN: softly symbolified KANs whose edges are MDL-gated sums of library functions and a
spline (Bagrow & Bongard). See :class:`S2KAN`, :func:`train_s2kan` and :func:`s2kan_discover`.

The training parts (which import the Lightning engine) load on first use, so ``import physkan``
stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

from physkan.s2kan.edge import S2Layer
from physkan.s2kan.mdl import MDLParts
from physkan.s2kan.model import S2KAN

_LAZY = {
    "S2KANResult": "physkan.s2kan.discover",
    "s2kan_discover": "physkan.s2kan.discover",
    "S2KANTrainConfig": "physkan.s2kan.train",
    "train_s2kan": "physkan.s2kan.train",
    "MDLObjective": "physkan.s2kan.objective",
    "MDLRamp": "physkan.s2kan.objective",
}

__all__ = ["MDLObjective", "MDLParts", "MDLRamp", "S2KAN", "S2KANResult", "S2KANTrainConfig", "S2Layer",
           "s2kan_discover", "train_s2kan"]  # fmt: skip


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'physkan.s2kan' has no attribute {name!r}")
