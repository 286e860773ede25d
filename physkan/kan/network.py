"""KAN / MultKAN networks: stacks of :class:`KANLayer` with optional multiplication nodes.

``width`` lists the nodes of every layer. An entry is either ``n`` (``n`` addition nodes)
or ``[n_add, n_mult]``. A KAN layer maps the ``n_add + n_mult`` nodes of layer ``l`` to
the *subnodes* of layer ``l+1``: ``n_add + arity * n_mult`` of them. Addition nodes copy
their subnode; multiplication node ``m`` multiplies subnodes
``n_add + arity*m ... n_add + arity*m + arity - 1`` (KAN 2.0, eq. 4). Subnodes and nodes
each carry an affine map ``scale * z + bias`` (identity at init; trainable when
``affine_trainable``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from physkan.io import load_model, register_model_kind, save_model
from physkan.kan.basis import BasisFamily
from physkan.kan.layer import KANLayer, all_finite
from physkan.kan.regularize import regularization

__all__ = ["MultKAN", "KAN", "Activations", "parse_width"]

WidthEntry = int | Sequence[int]


def parse_width(width: Sequence[WidthEntry]) -> list[tuple[int, int]]:
    """Normalise a width spec to ``[(n_add, n_mult), ...]``.

    Raises:
        ValueError: naming ``width`` for fewer than two layers, non-positive sizes, or
            multiplication nodes in the input layer.
    """
    if not isinstance(width, Sequence) or isinstance(width, str) or len(width) < 2:
        raise ValueError(f"width must list at least an input and an output layer, got {width!r}")
    parsed: list[tuple[int, int]] = []
    for pos, entry in enumerate(width):
        if isinstance(entry, bool):
            raise ValueError(f"width[{pos}] must be an int or [n_add, n_mult], got {entry!r}")
        if isinstance(entry, int):
            n_add, n_mult = entry, 0
        elif isinstance(entry, Sequence) and len(entry) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) for v in entry
        ):
            n_add, n_mult = int(entry[0]), int(entry[1])
        else:
            raise ValueError(f"width[{pos}] must be an int or [n_add, n_mult], got {entry!r}")
        if n_add < 0 or n_mult < 0 or n_add + n_mult < 1:
            raise ValueError(f"width[{pos}] must have at least one node, got {entry!r}")
        parsed.append((n_add, n_mult))
    if parsed[0][1]:
        raise ValueError("width[0]: the input layer cannot have multiplication nodes")
    return parsed


@dataclass
class Activations:
    """Everything a forward pass saw, for regularisation, attribution and plots.

    Attributes:
        inputs: per layer, the node values entering the KAN layer ``(N, in_l)``.
        edges: per layer, the edge post-activations ``(N, in_l, out_l)``.
        subnodes: per layer, the subnode values after the subnode affine ``(N, out_l)``.
        nodes: per layer, the node values after multiplication and node affine.
    """

    inputs: list[Tensor] = field(default_factory=list)
    edges: list[Tensor] = field(default_factory=list)
    subnodes: list[Tensor] = field(default_factory=list)
    nodes: list[Tensor] = field(default_factory=list)


class MultKAN(nn.Module):
    """A KAN with optional multiplication nodes (KAN 2.0). ``KAN`` is an alias.

    Args:
        width: e.g. ``[2, 5, 1]`` or ``[2, [5, 2], 1]``.
        grid: grid intervals ``G`` of every layer.
        k: spline order.
        basis: basis family name (see :func:`physkan.kan.basis.available_basis_families`).
        mult_arity: how many subnodes each multiplication node multiplies (>= 2).
        grid_range: initial input range of the grids.
        seed: seed of the initialisation (``None``: torch's global RNG).
        variables / outputs: names of the inputs / outputs (used in formulas; default
            ``x0..x{n-1}`` and ``y`` / ``y0..y{m-1}``).
        affine_trainable: train the node and subnode affine parameters.
        noise_scale, scale_base_mu, scale_base_sigma, base_fun, grid_eps: as in
            :class:`KANLayer`.

    Shapes: ``forward(x)``: ``(N, n_in) -> (N, n_out)``.
    """

    kind = "multkan"

    def __init__(
        self,
        width: Sequence[WidthEntry],
        grid: int = 5,
        k: int = 3,
        basis: str | BasisFamily = "bspline",
        mult_arity: int = 2,
        grid_range: tuple[float, float] = (-1.0, 1.0),
        seed: int | None = 0,
        variables: Sequence[str] | None = None,
        outputs: Sequence[str] | None = None,
        affine_trainable: bool = False,
        noise_scale: float = 0.5,
        scale_base_mu: float = 0.0,
        scale_base_sigma: float = 1.0,
        base_fun: str = "silu",
        grid_eps: float = 1.0,
    ) -> None:
        super().__init__()
        self.width = parse_width(width)
        if isinstance(mult_arity, bool) or not isinstance(mult_arity, int) or mult_arity < 2:
            raise ValueError(f"mult_arity must be an integer >= 2, got {mult_arity!r}")
        self.mult_arity = mult_arity
        self.basis_name = basis if isinstance(basis, str) else basis.name
        self.grid_range = (float(grid_range[0]), float(grid_range[1]))
        self.seed = seed
        self.affine_trainable = affine_trainable
        self._init_kwargs = dict(
            noise_scale=noise_scale,
            scale_base_mu=scale_base_mu,
            scale_base_sigma=scale_base_sigma,
            base_fun=base_fun,
            grid_eps=grid_eps,
        )
        n_in, n_out = self.width[0][0], self.n_nodes(len(self.width) - 1)
        self.variables = _names(variables, n_in, "x", "variables")
        self.outputs = _names(outputs, n_out, "y", "outputs")

        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        self.layers = nn.ModuleList()
        self.subnode_scale = nn.ParameterList()
        self.subnode_bias = nn.ParameterList()
        self.node_scale = nn.ParameterList()
        self.node_bias = nn.ParameterList()
        for lyr in range(len(self.width) - 1):
            n_sub = self.n_subnodes(lyr + 1)
            self.layers.append(
                KANLayer(
                    self.n_nodes(lyr),
                    n_sub,
                    grid_size=grid,
                    k=k,
                    basis=basis,
                    grid_range=grid_range,
                    generator=generator,
                    **self._init_kwargs,
                )
            )
            n_nodes = self.n_nodes(lyr + 1)
            for plist, size, value in (
                (self.subnode_scale, n_sub, 1.0),
                (self.subnode_bias, n_sub, 0.0),
                (self.node_scale, n_nodes, 1.0),
                (self.node_bias, n_nodes, 0.0),
            ):
                plist.append(nn.Parameter(torch.full((size,), value), requires_grad=affine_trainable))

    # ------------------------------------------------------------------ structure
    @property
    def depth(self) -> int:
        """Number of KAN layers."""
        return len(self.layers)

    def n_nodes(self, layer: int) -> int:
        """Nodes of layer ``layer`` (addition + multiplication)."""
        return sum(self.width[layer])

    def n_subnodes(self, layer: int) -> int:
        """Subnodes feeding the nodes of layer ``layer``."""
        n_add, n_mult = self.width[layer]
        return n_add + self.mult_arity * n_mult

    @property
    def width_spec(self) -> list[int | list[int]]:
        """The width in the user's notation (``[2, [5, 2], 1]``)."""
        return [a if m == 0 else [a, m] for a, m in self.width]

    # ------------------------------------------------------------------ forward
    def _check_input(self, x: Tensor) -> None:
        if not isinstance(x, Tensor):
            raise TypeError(f"x: expected a torch.Tensor, got {type(x).__name__}")
        n_in = self.width[0][0]
        if x.dim() != 2 or x.shape[1] != n_in:
            raise ValueError(
                f"x: expected shape (N, {n_in}) for inputs {self.variables}, got {tuple(x.shape)}"
            )
        if not all_finite(x):
            raise ValueError("x: input contains NaN or inf values")

    def _combine(self, layer: int, z: Tensor) -> Tensor:
        """Subnodes ``(N, n_sub)`` of layer ``layer+1`` -> nodes ``(N, n_nodes)``."""
        z = torch.addcmul(self.subnode_bias[layer], z, self.subnode_scale[layer])  # z * scale + bias
        n_add, n_mult = self.width[layer + 1]
        if n_mult:
            prod = z[:, n_add:].reshape(z.shape[0], n_mult, self.mult_arity).prod(-1)
            z = torch.cat([z[:, :n_add], prod], dim=1)
        return torch.addcmul(self.node_bias[layer], z, self.node_scale[layer])

    def forward(self, x: Tensor) -> Tensor:
        """``(N, n_in) -> (N, n_out)``."""
        self._check_input(x)
        for lyr, layer in enumerate(self.layers):
            x = self._combine(lyr, layer(x))
        return x

    def forward_with_activations(self, x: Tensor) -> tuple[Tensor, Activations]:
        """Forward pass that also returns every layer's activations (slower)."""
        self._check_input(x)
        acts = Activations()
        for lyr, layer in enumerate(self.layers):
            edges = layer.edge_activations(x)
            acts.inputs.append(x)
            acts.edges.append(edges)
            sub = edges.sum(1)
            acts.subnodes.append(sub * self.subnode_scale[lyr] + self.subnode_bias[lyr])
            x = self._combine(lyr, sub)
            acts.nodes.append(x)
        return x, acts

    def layer_inputs(self, x: Tensor) -> list[Tensor]:
        """The input of every KAN layer for samples ``x`` (no activations kept)."""
        self._check_input(x)
        inputs = []
        for lyr, layer in enumerate(self.layers):
            inputs.append(x)
            x = self._combine(lyr, layer(x))
        return inputs

    # ------------------------------------------------------------------ regularisation
    def regularization(
        self, acts: Activations, lamb_l1: float = 1.0, lamb_entropy: float = 1.0
    ) -> Tensor:
        """``sum_l (mu_1 |Phi_l|_1 + mu_2 S(Phi_l))`` of the paper (multiply by lambda)."""
        return regularization(acts.edges, lamb_l1=lamb_l1, lamb_entropy=lamb_entropy)

    # ------------------------------------------------------------------ grids
    @torch.no_grad()
    def update_grid(self, x: Tensor) -> None:
        """Adapt every layer's grid to the activations of ``x`` ``(N, n_in)``."""
        self._check_input(x)
        for lyr, layer in enumerate(self.layers):
            layer.update_grid(x)
            x = self._combine(lyr, layer(x))

    @torch.no_grad()
    def refine(self, grid: int) -> MultKAN:
        """Grid extension to ``grid`` intervals in every layer (function preserved). Returns self."""
        for layer in self.layers:
            layer.refine(grid)
        return self

    # ------------------------------------------------------------------ serialisation
    def config(self) -> dict[str, Any]:
        """JSON-able description from which :meth:`from_config` rebuilds the module."""
        return {
            "kind": self.kind,
            "width": self.width_spec,
            "grid": [layer.grid_size for layer in self.layers],
            "k": self.layers[0].k,
            "basis": self.basis_name,
            "mult_arity": self.mult_arity,
            "grid_range": list(self.grid_range),
            "seed": self.seed,
            "variables": list(self.variables),
            "outputs": list(self.outputs),
            "affine_trainable": self.affine_trainable,
            **self._init_kwargs,
            "symbolic_names": [layer.symbolic_names for layer in self.layers],
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> MultKAN:
        """Rebuild an (untrained) module of the described shape; load the state after."""
        cfg = dict(config)
        cfg.pop("kind", None)
        grids = cfg.pop("grid")
        names = cfg.pop("symbolic_names", None)
        grids = list(grids) if isinstance(grids, list) else [grids]
        model = cls(grid=int(grids[0]), **cfg)
        for layer, g in zip(model.layers, grids if len(grids) > 1 else grids * model.depth):
            if g != layer.grid_size:
                layer.refine(int(g))
        if names is not None:
            for layer, layer_names in zip(model.layers, names):
                layer.symbolic_names = [list(row) for row in layer_names]
        return model

    def save(self, path: str) -> None:
        """Write config + tensors to an HDF5 file (see :mod:`physkan.io`; never pickle)."""
        save_model(self, path)

    @classmethod
    def load(cls, path: str) -> MultKAN:
        """Load a model written by :meth:`save`."""
        model = load_model(path)
        if not isinstance(model, cls):
            raise TypeError(f"{path}: holds a {type(model).__name__}, not a {cls.__name__}")
        return model

    def copy(self) -> MultKAN:
        """A deep copy (same config, same tensors)."""
        ref = self.layers[0].coef
        clone = type(self).from_config(self.config()).to(dtype=ref.dtype, device=ref.device)
        clone.load_state_dict(self.state_dict())
        return clone


KAN = MultKAN
register_model_kind(MultKAN.kind, MultKAN)  # load_model rebuilds files whose config.kind is this


def _names(names: Sequence[str] | None, n: int, prefix: str, what: str) -> list[str]:
    """The given names, checked, or the default convention (the same as S2KAN's): inputs
    ``x0..x{n-1}``; outputs ``y`` for one output, else ``y0..y{n-1}``."""
    if names is None:
        if prefix == "y" and n == 1:
            return ["y"]
        return [f"{prefix}{i}" for i in range(n)]
    names = [str(v) for v in names]
    if len(names) != n:
        raise ValueError(f"{what}: expected {n} names, got {len(names)} ({names})")
    if len(set(names)) != n:
        raise ValueError(f"{what}: names must be unique, got {names}")
    return names
