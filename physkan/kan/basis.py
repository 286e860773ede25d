"""Basis families for KAN edges, kept in a registry that plugins extend.

A basis family turns pre-activations ``x`` of shape ``(N, in)`` into basis values of
shape ``(N, in, n_basis)`` on a per-input knot vector ``grid`` of shape ``(in, M)``.
A KAN edge is then ``spline(x) = sum_b coef[b] * basis_b(x)``.

Families shipped here:

* ``"bspline"`` - B-splines of order ``k`` on ``G`` intervals (``G + k`` functions). Only the
  ``k + 1`` non-zero functions at each point are evaluated (local de Boor recursion on
  ``(N, in)`` tensors, no loop over points) and scattered into the dense result, so the
  cost is ``O(N in k^2)`` plus one write of the output; autograd gives exact derivatives
  of any order (``create_graph=True``). On knots that are not uniform the compiled kernels
  of :mod:`physkan.kan.native` write the same bits in one pass, with a compiled first-order
  backward (a backward with ``create_graph`` differentiates the PyTorch route).
* ``"rbf"`` - Gaussian radial basis functions centred on the grid points (FastKAN-style).

The registry :data:`BASIS_FAMILIES` (a :class:`physkan.registry.Registry`) holds them; plugins
add theirs through :func:`register_basis_family`, called by the plugin host at the first
lookup in any registry (this module never imports the plugin system).
"""

from __future__ import annotations

import difflib
from abc import ABC, abstractmethod
from typing import Any

import torch
from torch import Tensor
from torch.autograd import Function, forward_ad

from physkan.errors import UserError
from physkan.kan import native
from physkan.registry import BUILTIN, Registry

__all__ = [
    "BASIS_FAMILIES",
    "BasisFamily",
    "bspline_basis",
    "cox_de_boor",
    "BSplineBasis",
    "GaussianRBFBasis",
    "PointGridBasis",
    "UnknownBasisError",
    "available_basis_families",
    "get_basis_family",
    "register_basis_family",
]


class UnknownBasisError(UserError, ValueError):
    """Raised when a basis family name is not registered."""


class BasisFamily(ABC):
    """A family of 1D basis functions parametrised by a knot vector.

    Subclasses set ``name`` and implement :meth:`num_basis`, :meth:`make_grid` and
    :meth:`evaluate`. Grids are stored per input, so each edge of a layer can adapt to
    the distribution of its own input.
    """

    name: str = ""

    @abstractmethod
    def num_basis(self, grid_size: int, k: int) -> int:
        """Number of basis functions for ``grid_size`` intervals and order ``k``."""

    @abstractmethod
    def make_grid(self, low: Tensor, high: Tensor, grid_size: int, k: int) -> Tensor:
        """Knot vectors for the box ``[low, high]``.

        Args:
            low, high: shape ``(in,)``, the range of each input.
        Returns:
            Tensor ``(in, M)`` of non-decreasing knots (``M`` is family specific).
        """

    @abstractmethod
    def evaluate(self, x: Tensor, grid: Tensor, k: int) -> Tensor:
        """Basis values ``(N, in, num_basis)`` for ``x`` of shape ``(N, in)``.

        Must be differentiable in ``x`` to any order (``create_graph=True``).
        """

    def interior(self, grid: Tensor, k: int) -> Tensor:
        """The knots that span the fitted range, shape ``(in, G + 1)``."""
        return grid[:, k:-k] if k > 0 else grid

    def grid_from_interior(self, interior: Tensor, k: int) -> Tensor:
        """Knot vector ``(in, M)`` from interior knots ``(in, G + 1)``.

        The default extends the interior by ``k`` knots on each side with the mean spacing
        at that end, which is what B-splines need to be a partition of unity on the range.
        """
        if k == 0:
            return interior
        h_lo = interior[:, 1:2] - interior[:, 0:1]
        h_hi = interior[:, -1:] - interior[:, -2:-1]
        steps = torch.arange(1, k + 1, dtype=interior.dtype, device=interior.device)
        left = interior[:, 0:1] - h_lo * steps.flip(0)
        right = interior[:, -1:] + h_hi * steps
        return torch.cat([left, interior, right], dim=1)


# --------------------------------------------------------------------------- B-splines


def cox_de_boor(x: Tensor, grid: Tensor, k: int) -> Tensor:
    """Reference Cox-de Boor recursion on the full basis (slow; used by tests).

    ``x (N, in)``, ``grid (in, M)`` -> ``(N, in, M - 1 - k)``.
    """
    xe = x.unsqueeze(-1)
    g = grid.unsqueeze(0)
    basis = ((xe >= g[..., :-1]) & (xe < g[..., 1:])).to(x.dtype)
    for p in range(1, k + 1):
        left_den = g[..., p:-1] - g[..., : -(p + 1)]
        right_den = g[..., p + 1 :] - g[..., 1:-p]
        left = (xe - g[..., : -(p + 1)]) / torch.where(left_den == 0, 1.0, left_den)
        right = (g[..., p + 1 :] - xe) / torch.where(right_den == 0, 1.0, right_den)
        basis = left * basis[..., :-1] + right * basis[..., 1:]
    return basis


def _pad_knots(grid: Tensor, k: int) -> Tensor:
    """Extend knots ``(in, M)`` by ``k`` equally spaced knots on each side."""
    steps = torch.arange(1, k + 1, dtype=grid.dtype, device=grid.device)
    h_lo = (grid[:, 1:2] - grid[:, 0:1]).clamp_min(1e-12)
    h_hi = (grid[:, -1:] - grid[:, -2:-1]).clamp_min(1e-12)
    return torch.cat([grid[:, :1] - h_lo * steps.flip(0), grid, grid[:, -1:] + h_hi * steps], 1)


def _is_uniform(grid: Tensor) -> bool:
    """Whether every row of ``grid`` is equally spaced (then a faster path applies)."""
    d = torch.diff(grid, dim=1)
    rtol = 64 * torch.finfo(grid.dtype).eps
    return bool(((d - d[:, :1]).abs() <= rtol * d[:, :1].abs()).all() and (d[:, :1] > 0).all())


def _local_uniform(x: Tensor, grid: Tensor, k: int) -> tuple[Tensor, Tensor, list[Tensor]]:
    """Span index, inside-mask and the ``k+1`` local basis values on a uniform grid.

    With ``u = (x - t_0) / h``, span ``i = floor(u)`` and ``f = u - i``, the non-zero
    functions ``B_{i-k} .. B_i`` are polynomials in ``f`` (the spacing cancels).
    """
    h = grid[:, 1] - grid[:, 0]
    u = (x - grid[:, 0]) / h
    span = torch.floor(u.detach())
    inside = (span >= 0) & (span <= grid.shape[1] - 2)
    f = u - span
    span = span.long()
    if k == 3:
        f2 = f * f
        f3 = f2 * f
        g = 1 - f
        values = [g * g * g / 6, 0.5 * f3 - f2 + 2 / 3, (-3 * f3 + 3 * f2 + 3 * f + 1) / 6, f3 / 6]
    else:
        values = [torch.ones_like(x)]
        for j in range(1, k + 1):
            saved = torch.zeros_like(x)
            new = []
            for r in range(j):
                temp = values[r] / j
                new.append(saved + (r + 1 - f) * temp)
                saved = (f + (j - r - 1)) * temp
            new.append(saved)
            values = new
    return span, inside, values


def _local_general(x: Tensor, grid: Tensor, k: int) -> tuple[Tensor, Tensor, list[Tensor]]:
    """Span index, inside-mask and local basis values for any non-decreasing knots.

    The triangular recursion of *The NURBS Book* (alg. A2.2) on ``(N, in)`` tensors.
    """
    n_in = x.shape[1]
    n_knots = grid.shape[1]
    span = torch.searchsorted(grid, x.detach().T.contiguous(), right=True).T - 1  # (N, in)
    inside = (span >= 0) & (span <= n_knots - 2)
    span = span.clamp(0, n_knots - 2)
    padded = _pad_knots(grid, k)
    offsets = torch.arange(-k + 1, k + 1, device=x.device)
    rows = torch.arange(n_in, device=x.device)[None, :, None]
    knots = padded[rows, span.unsqueeze(-1) + k + offsets]  # (N, in, 2k): t[i-k+1 .. i+k]
    left = [x - knots[..., k - j] for j in range(k + 1)]  # left[j] = x - t[i+1-j]
    right = [knots[..., k - 1 + j] - x for j in range(k + 1)]  # right[j] = t[i+j] - x
    values = [torch.ones_like(x)]
    for j in range(1, k + 1):
        saved = torch.zeros_like(x)
        new = []
        for r in range(j):
            den = right[r + 1] + left[j - r]
            temp = values[r] / torch.where(den == 0, 1.0, den)
            new.append(saved + right[r + 1] * temp)
            saved = left[j - r] * temp
        new.append(saved)
        values = new
    return span, inside, values


def _functorch_wrapped(t: Tensor) -> bool:
    check = getattr(torch._C._functorch, "is_functorch_wrapped_tensor", None)
    return bool(check(t)) if check is not None else False


def _compiled_ok(x: Tensor, grid: Tensor) -> bool:
    """Whether the compiled basis keeps every derivative being taken: reverse mode through
    ``x`` only (it has its own backward), no forward-mode tangent and no ``torch.func``
    wrapper (a compiled kernel would drop them)."""
    if torch.is_grad_enabled() and grid.requires_grad:
        return False
    if _functorch_wrapped(x) or _functorch_wrapped(grid):
        return False
    return forward_ad.unpack_dual(x).tangent is None and forward_ad.unpack_dual(grid).tangent is None


class _CompiledBasis(Function):
    """``x (N, in)`` -> basis ``(N, in, nb)`` on non-uniform knots from the compiled kernels;
    first-order ``dL/dx`` compiled too; a backward that needs a graph (``create_graph=True``)
    differentiates the PyTorch route instead (any order)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, grid: Tensor, k: int) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x, grid)
        ctx.k = k
        return native.spline_basis(x, grid, k)

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor | None, None, None]:  # type: ignore[override]
        x, grid = ctx.saved_tensors
        if torch.is_grad_enabled():
            with torch.enable_grad():
                (gx,) = torch.autograd.grad(_torch_basis(x, grid, ctx.k, False), x, g, create_graph=True)
            return gx, None, None
        return native.spline_basis_grad(x, grid, ctx.k, g), None, None


def bspline_basis(x: Tensor, grid: Tensor, k: int) -> Tensor:
    """B-spline basis of order ``k``: ``x (N, in)``, ``grid (in, M)`` -> ``(N, in, M - 1 - k)``.

    Only the ``k + 1`` functions that are non-zero at each point are evaluated (closed form
    on uniform grids, the de Boor triangle otherwise), then scattered into the dense result
    in one pass, by differentiable torch ops (derivatives of any order are exact), or, on
    knots that are not uniform and where the kernels build, by :mod:`physkan.kan.native`:
    the same bits, with a compiled first-order backward in ``x`` (:class:`_CompiledBasis`).
    Points outside ``[grid[0], grid[-1])`` get zeros.
    """
    uniform = _is_uniform(grid)
    if not uniform and grid.shape[1] >= k + 2 and _compiled_ok(x, grid) and native.available(x, grid, k=k):
        if torch.is_grad_enabled() and x.requires_grad:
            return _CompiledBasis.apply(x, grid, k)
        return native.spline_basis(x, grid, k)  # the same bits as below, one compiled pass
    return _torch_basis(x, grid, k, uniform)


def _torch_basis(x: Tensor, grid: Tensor, k: int, uniform: bool) -> Tensor:
    """The PyTorch route of :func:`bspline_basis` (differentiable to any order)."""
    n_pts, n_in = x.shape
    n_basis = grid.shape[1] - 1 - k
    local = _local_uniform if uniform else _local_general
    span, inside, values = local(x, grid, k)
    first = span - k  # index of the first non-zero function, (N, in)
    base = torch.arange(n_pts * n_in, device=x.device).view(n_pts, n_in) * n_basis + first
    dump = n_pts * n_in * n_basis  # one spare slot takes the writes of invalid entries
    targets = []
    for r in range(k + 1):
        ok = inside & (first >= -r) & (first < n_basis - r)
        targets.append(torch.where(ok, base + r, dump))
    flat = torch.stack(targets, -1).reshape(-1)
    out = x.new_zeros(dump + 1).scatter_(0, flat, torch.stack(values, -1).reshape(-1))
    return out[:dump].view(n_pts, n_in, n_basis)


class BSplineBasis(BasisFamily):
    """B-splines of order ``k`` (degree ``k``) on ``G`` intervals: ``G + k`` functions.

    The knot vector has ``G + 2k + 1`` entries: ``G + 1`` interior knots spanning the input
    range plus ``k`` on each side, so the basis sums to one on the range (partition of unity).
    """

    name = "bspline"

    def num_basis(self, grid_size: int, k: int) -> int:
        return grid_size + k

    def make_grid(self, low: Tensor, high: Tensor, grid_size: int, k: int) -> Tensor:
        steps = torch.linspace(0.0, 1.0, grid_size + 1, dtype=low.dtype, device=low.device)
        interior = low[:, None] + (high - low)[:, None] * steps[None, :]
        return self.grid_from_interior(interior, k)

    def evaluate(self, x: Tensor, grid: Tensor, k: int) -> Tensor:
        return bspline_basis(x, grid, k)


# --------------------------------------------------------------------------- Gaussian RBF


class PointGridBasis(BasisFamily):
    """Base for families whose grid is just ``G + 1`` points spanning the range (no padding).

    Gaussian RBFs and Fourier series are of this kind: subclasses only implement
    :meth:`num_basis` and :meth:`evaluate`.
    """

    def make_grid(self, low: Tensor, high: Tensor, grid_size: int, k: int) -> Tensor:
        steps = torch.linspace(0.0, 1.0, grid_size + 1, dtype=low.dtype, device=low.device)
        return low[:, None] + (high - low)[:, None] * steps[None, :]

    def interior(self, grid: Tensor, k: int) -> Tensor:
        return grid

    def grid_from_interior(self, interior: Tensor, k: int) -> Tensor:
        return interior


class GaussianRBFBasis(PointGridBasis):
    """Gaussian bumps ``exp(-((x - c_b) / h)^2)`` centred on the ``G + 1`` grid points.

    ``k`` is accepted for interface compatibility and ignored; ``h`` is the local grid
    spacing, so a refined or adapted grid keeps neighbouring bumps overlapping.
    """

    name = "rbf"

    def num_basis(self, grid_size: int, k: int) -> int:
        return grid_size + 1

    def evaluate(self, x: Tensor, grid: Tensor, k: int) -> Tensor:
        spacing = torch.diff(grid, dim=1)
        width = torch.cat([spacing[:, :1], 0.5 * (spacing[:, 1:] + spacing[:, :-1]), spacing[:, -1:]], 1)
        return torch.exp(-(((x.unsqueeze(-1) - grid.unsqueeze(0)) / width.unsqueeze(0)) ** 2))


# --------------------------------------------------------------------------- registry

#: name -> basis family; physkan's families first, plugins' families added at first lookup.
BASIS_FAMILIES: Registry[BasisFamily] = Registry("basis family", error=UnknownBasisError)


def register_basis_family(
    family: BasisFamily, *, overwrite: bool = False, source: str = BUILTIN
) -> None:
    """Add a basis family to the registry under ``family.name``.

    Args:
        family: the family instance.
        overwrite: replace a family of the same name (never a built-in one from a plugin).
        source: who registers it (:data:`physkan.registry.BUILTIN` or a plugin's name).

    Raises:
        ValueError: if the name is empty; :class:`~physkan.registry.NameClash` (a
            ``ValueError``) if it is already taken and ``overwrite`` is false.
    """
    if not family.name:
        raise ValueError("basis family must have a non-empty `name`")
    BASIS_FAMILIES.register(family.name, family, source=source, replace=overwrite)


def get_basis_family(name: str | BasisFamily) -> BasisFamily:
    """Look up a basis family by name (instances pass through).

    Raises:
        UnknownBasisError: naming the unknown basis and listing the available ones.
    """
    if isinstance(name, BasisFamily):
        return name
    family = BASIS_FAMILIES.find(name) if isinstance(name, str) else None
    if family is not None:
        return family
    names = BASIS_FAMILIES.names()
    close = difflib.get_close_matches(str(name), names, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise UnknownBasisError(
        f"basis: unknown basis family {name!r}; available: {', '.join(sorted(names))}.{hint}"
    )


def available_basis_families() -> list[str]:
    """Names of all registered basis families (plugins included), sorted."""
    return sorted(BASIS_FAMILIES.names())


register_basis_family(BSplineBasis())
register_basis_family(GaussianRBFBasis())
