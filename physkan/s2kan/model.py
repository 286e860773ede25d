"""The S2KAN network: stacked :class:`~physkan.s2kan.edge.S2Layer` with optional
multiplication nodes (as in MultKAN: ``width=[2, [1, 1], 1]`` has one sum and one product node
in the hidden layer; a product node multiplies two subnodes)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sympy
import torch
from torch import Tensor, nn

from physkan.io import register_model_kind
from physkan.kan.network import parse_width
from physkan.s2kan.edge import S2Layer
from physkan.s2kan.mdl import MDLParts, data_cost_bits, model_cost_bits

__all__ = ["S2KAN"]

MULT_ARITY = 2


class S2KAN(nn.Module):
    """Softly symbolified KAN: every edge is a gated sum of symbolic terms and a spline.

    Args:
        width: nodes per layer, ``int`` or ``[n_add, n_mult]`` (e.g. ``[2, 1, 1]``,
            ``[2, [1, 1], 1]``).
        library: symbolic function names (``None`` → the default library).
        grid, k: spline grid intervals and order.
        variables, outputs: names of inputs and outputs (default ``x0..``, ``y0..``).
        seed: seed of the parameter initialisation.
        resolution: relative precision of the data used by the MDL data cost.
        use_spline: give every edge a spline term.
        basis: basis family of the spline terms (``[model].basis``; default B-splines).

    ``forward`` maps ``(N, n_in) -> (N, n_out)`` and is differentiable to any order.
    """

    def __init__(
        self,
        width: Sequence[int | Sequence[int]] = (2, 1, 1),
        library: Sequence[str] | None = None,
        *,
        grid: int = 5,
        k: int = 3,
        variables: Sequence[str] | None = None,
        outputs: Sequence[str] | None = None,
        seed: int = 0,
        resolution: float = 1e-5,
        use_spline: bool = True,
        basis: str = "bspline",
    ) -> None:
        super().__init__()
        self.width = parse_width(list(width))
        self.basis = basis
        self.grid_size, self.k, self.seed = grid, k, seed
        self.resolution, self.use_spline = resolution, use_spline
        n_in, n_out = sum(self.width[0]), sum(self.width[-1])
        self.variables = list(variables) if variables else [f"x{i}" for i in range(n_in)]
        self.outputs = list(outputs) if outputs else [f"y{i}" for i in range(n_out)]
        if len(self.variables) != n_in or len(self.outputs) != n_out:
            raise ValueError(
                f"variables/outputs: expected {n_in} inputs and {n_out} outputs for width "
                f"{self.width_spec}, got {self.variables} and {self.outputs}"
            )
        gen_state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        try:
            layers = []
            for lyr in range(len(self.width) - 1):
                n_add, n_mult = self.width[lyr + 1]
                layers.append(
                    S2Layer(sum(self.width[lyr]), n_add + MULT_ARITY * n_mult, library,
                            grid=grid, k=k, use_spline=use_spline, basis=basis)
                )  # fmt: skip
            self.layers = nn.ModuleList(layers)
            self._seed_products()
        finally:
            torch.random.set_rng_state(gen_state)
        self.library = self.layers[0].library

    def _seed_products(self) -> None:
        """Start every product node as a product of two distinct inputs of its layer
        (``x_a · x_b``, identity splines; other edges into its subnodes start at zero) so
        that warm-up begins from a genuine product instead of a random decomposition."""
        with torch.no_grad():
            for lyr, layer in enumerate(self.layers):
                n_add, n_mult = self.width[lyr + 1]
                ident = layer.greville()
                for m in range(n_mult):
                    for half in range(MULT_ARITY):
                        j = n_add + MULT_ARITY * m + half
                        src = (MULT_ARITY * m + half) % layer.n_in
                        layer.coef[:, j, :] = 0.0
                        layer.coef[src, j, :] = ident[src]
                    if lyr + 1 < len(self.layers):  # the product node feeds on with slope 1
                        nxt = self.layers[lyr + 1]
                        nxt.coef[n_add + m] = nxt.greville()[n_add + m]

    def product_subnodes(self, layer: int) -> list[int]:
        """Subnode indices of layer ``layer`` that feed multiplication nodes."""
        n_add, n_mult = self.width[layer + 1]
        return list(range(n_add, n_add + MULT_ARITY * n_mult))

    # ------------------------------------------------------------------ structure
    @property
    def width_spec(self) -> list[int | list[int]]:
        return [n_add if not n_mult else [n_add, n_mult] for n_add, n_mult in self.width]

    @property
    def depth(self) -> int:
        return len(self.layers)

    def combine(self, layer: int, sub: Tensor) -> Tensor:
        """Subnodes ``(N, n_sub)`` of layer ``layer`` -> nodes ``(N, n_add + n_mult)``."""
        n_add, n_mult = self.width[layer + 1]
        if not n_mult:
            return sub
        prod = sub[:, n_add:].reshape(sub.shape[0], n_mult, MULT_ARITY).prod(-1)
        return torch.cat([sub[:, :n_add], prod], dim=1)

    def forward(self, x: Tensor) -> Tensor:
        """``(N, n_in) -> (N, n_out)``."""
        if x.ndim != 2 or x.shape[1] != len(self.variables):
            raise ValueError(f"x: expected shape (N, {len(self.variables)}), got {tuple(x.shape)}")
        for lyr, layer in enumerate(self.layers):
            x = self.combine(lyr, layer(x))
        return x

    def layer_inputs(self, x: Tensor) -> list[Tensor]:
        """Input of every layer (``x`` first), each ``(N, width)``."""
        inputs = [x]
        for lyr, layer in enumerate(self.layers[:-1]):
            inputs.append(self.combine(lyr, layer(inputs[-1])))
        return inputs

    def update_grids(self, x: Tensor, margin: float = 0.1) -> None:
        """Fit every spline grid to the range its input takes on ``x (N, n_in)``."""
        with torch.no_grad():
            for layer, xin in zip(self.layers, self.layer_inputs(x), strict=True):
                layer.set_grid(xin, margin)

    def update_grid(self, x: Tensor) -> None:
        """Engine hook (:class:`~physkan.train.callbacks.GridUpdate`): :meth:`update_grids`."""
        self.update_grids(x)

    # ------------------------------------------------------------------ MDL
    def model_cost_bits(self, n: int) -> Tensor:
        """Differentiable expected model cost (bits) for a data set of ``n`` points."""
        return model_cost_bits(list(self.layers), n)

    def description_length(self, data_mse: float | Tensor, n: int, floor: float = 0.0) -> MDLParts:
        """MDL parts for residual ``data_mse`` on ``n`` points (``floor`` see :mod:`mdl`)."""
        mse = float(data_mse)
        data = float(data_cost_bits(mse, n, floor))
        return MDLParts(data, float(self.model_cost_bits(n).detach()), n, mse)

    def open_terms(self) -> list[tuple[int, int, int, str]]:
        """``(layer, in, subnode, term name)`` of every open term (``"spline"`` for splines)."""
        out = []
        for lyr, layer in enumerate(self.layers):
            names = [*layer.library, "spline"]
            for i, j, s in layer.open_terms().nonzero().tolist():
                out.append((lyr, i, j, names[s]))
        return out

    def spline_edges(self) -> list[tuple[int, int, int]]:
        """``(layer, in, subnode)`` of every edge whose spline is still open."""
        return [(lyr, i, j) for lyr, i, j, name in self.open_terms() if name == "spline"]

    def complexity(self) -> float:
        """Structural complexity: library complexity of open symbolic terms + spline sizes."""
        total = 0.0
        for lyr, _i, _j, name in self.open_terms():
            layer = self.layers[lyr]
            total += layer.n_basis if name == "spline" else layer.functions[layer.library.index(name)].complexity
        return total

    # ------------------------------------------------------------------ formulas
    def formula(self, *, simplify: bool = True, x: Tensor | None = None, y: Tensor | None = None) -> list[sympy.Expr]:
        """One sympy expression per output; spline edges appear as ``spline_{l,i,j}(arg)``.

        ``x (N, n_in)``, ``y (N, n_out)`` (optional) let constant snapping check the data.
        """
        from physkan.s2kan.formula import model_formulas

        return model_formulas(self, simplify=simplify, x=x, y=y)

    def spline_report(self) -> list[str]:
        """Human-readable lines naming each spline edge kept (empty when fully symbolic)."""
        from physkan.s2kan.formula import spline_report

        return spline_report(self)

    # ------------------------------------------------------------------ persistence
    def config(self) -> dict[str, Any]:
        """JSON-able description; with the state dict it rebuilds the model."""
        return {
            "kind": "s2kan",
            "width": self.width_spec,
            "library": list(self.library),
            "grid": self.grid_size,
            "k": self.k,
            "variables": list(self.variables),
            "outputs": list(self.outputs),
            "seed": self.seed,
            "resolution": self.resolution,
            "use_spline": self.use_spline,
            "basis": self.basis,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> S2KAN:
        """Inverse of :meth:`config` (parameters come from the state dict)."""
        cfg = {k: v for k, v in dict(config).items() if k != "kind"}
        return cls(**cfg)


register_model_kind("s2kan", S2KAN)  # load_model rebuilds files whose config.kind is this
