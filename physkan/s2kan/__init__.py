"""S2KAN: softly symbolified KANs whose edges are MDL-gated sums of library functions and a
spline (Bagrow & Bongard). See :class:`S2KAN`, :func:`train_s2kan` and :func:`s2kan_discover`."""

from physkan.s2kan.discover import S2KANResult, s2kan_discover
from physkan.s2kan.edge import S2Layer
from physkan.s2kan.mdl import MDLParts
from physkan.s2kan.model import S2KAN
from physkan.s2kan.train import S2KANTrainConfig, train_s2kan

__all__ = ["MDLParts", "S2KAN", "S2KANResult", "S2KANTrainConfig", "S2Layer", "s2kan_discover", "train_s2kan"]
