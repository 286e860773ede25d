"""KANLayer: a matrix of learnable 1D functions ``phi_ij`` with ``y_j = sum_i phi_ij(x_i)``.

Each edge is ``phi(x) = scale_base * b(x) + scale_sp * spline(x)`` (pykan's semantics, with
``b = SiLU`` by default), masked per edge. An edge can instead be *symbolic*:
``phi(x) = c * f(a * x + b) + d`` for a named function ``f`` of the symbolic library.

The hot path evaluates the basis ``(N, in, n_basis)`` once and contracts it with all edges
in a single matmul; no ``(N, in, out, n_basis)`` tensor is ever built. For B-splines on
larger grids the *local* path (:mod:`physkan.kan.local_spline`) evaluates only the ``k + 1``
non-zero functions per input (closed form on uniform grids) and, there, shares its GEMMs
with the base branch; :attr:`KANLayer.spline_path` chooses (``"auto"``: the cost rule
:func:`~physkan.kan.local_spline.prefer_local`).
Per-edge activations ``(N, in, out)`` are computed only on request (:meth:`edge_activations`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from physkan.kan.basis import BasisFamily, BSplineBasis, get_basis_family
from physkan.kan.local_spline import local_spline_contract, prefer_local

__all__ = ["KANLayer", "BASE_FUNCTIONS", "SPLINE_PATHS", "all_finite", "set_symbolic_resolver"]

#: How the spline branch is contracted: ``"auto"`` (cost rule), ``"dense"`` (basis matmul) or
#: ``"local"`` (B-splines only: the ``k + 1`` active functions, no basis recursion).
SPLINE_PATHS = ("auto", "dense", "local")

#: ``name -> symbolic function`` (an object with ``torch_fn``) for symbolic edges. Installed by
#: :mod:`physkan.symbolic.library` when it is imported (``import physkan`` does): kan sits
#: below symbolic in the layers and never imports it.
_resolve_symbolic: Callable[[str], Any] | None = None


def set_symbolic_resolver(resolve: Callable[[str], Any]) -> None:
    """Make symbolic edges look their function names up with ``resolve`` (the library's)."""
    global _resolve_symbolic
    _resolve_symbolic = resolve


def _symbolic_function(name: str) -> Any:
    if _resolve_symbolic is None:
        raise RuntimeError(f"symbolic edge {name!r}: import physkan.symbolic first")
    return _resolve_symbolic(name)

BASE_FUNCTIONS: dict[str, Callable[[Tensor], Tensor] | None] = {
    "silu": torch.nn.functional.silu,
    "identity": lambda x: x,
    "zero": None,
}


def all_finite(x: Tensor) -> bool:
    """Whether every entry of ``x`` is finite, with one reduction in the common case: a
    finite sum proves it (NaN and inf propagate); a non-finite sum (NaN, inf or an overflow)
    is settled element-wise."""
    if not x.is_floating_point():
        return True
    return bool(torch.isfinite(x.sum())) or bool(torch.isfinite(x).all())


def _check_positive_int(value: int, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


class KANLayer(nn.Module):
    """One KAN layer with ``in_dim`` inputs and ``out_dim`` outputs.

    Args:
        in_dim, out_dim: number of input and output nodes (>= 1).
        grid_size: number of grid intervals ``G`` (>= 1).
        k: spline order (>= 1 for B-splines; cubic is 3).
        basis: name of a registered :class:`~physkan.kan.basis.BasisFamily`.
        grid_range: initial input range ``(low, high)`` covered by the grid.
        noise_scale: std of the initial spline coefficients is ``noise_scale / G``.
        scale_base_mu, scale_base_sigma: ``scale_base ~ mu + sigma * U(-1, 1) / sqrt(in)``.
        base_fun: ``"silu"``, ``"identity"`` or ``"zero"`` (no residual branch).
        grid_eps: mixing of a uniform grid into the quantile grid in :meth:`update_grid`
            (0 = pure sample quantiles, 1 = uniform over the sample range). The default 1
            keeps grids uniform: updates then preserve the function best and the fast
            closed-form basis path applies. pykan uses 0.02.
        generator: random generator used for initialisation (for seeded models).
        spline_path: ``"auto"``, ``"dense"`` or ``"local"`` (see :data:`SPLINE_PATHS`); both
            paths give the same numbers (to rounding), derivatives of any order included.

    Shapes: ``forward(x)`` maps ``(N, in_dim)`` to ``(N, out_dim)``.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        grid_size: int = 5,
        k: int = 3,
        basis: str | BasisFamily = "bspline",
        grid_range: tuple[float, float] = (-1.0, 1.0),
        noise_scale: float = 0.5,
        scale_base_mu: float = 0.0,
        scale_base_sigma: float = 1.0,
        base_fun: str = "silu",
        grid_eps: float = 1.0,
        generator: torch.Generator | None = None,
        spline_path: str = "auto",
    ) -> None:
        super().__init__()
        self.in_dim = _check_positive_int(in_dim, "in_dim", 1)
        self.out_dim = _check_positive_int(out_dim, "out_dim", 1)
        self.grid_size = _check_positive_int(grid_size, "grid_size (G)", 1)
        self.k = _check_positive_int(k, "k (spline order)", 1)
        if base_fun not in BASE_FUNCTIONS:
            raise ValueError(f"base_fun must be one of {sorted(BASE_FUNCTIONS)}, got {base_fun!r}")
        low, high = float(grid_range[0]), float(grid_range[1])
        if not low < high:
            raise ValueError(f"grid_range must satisfy low < high, got {grid_range!r}")
        if not 0.0 <= grid_eps <= 1.0:
            raise ValueError(f"grid_eps must lie in [0, 1], got {grid_eps!r}")
        self.basis = get_basis_family(basis)
        self.spline_path = spline_path
        self.base_fun_name = base_fun
        self.grid_eps = float(grid_eps)

        lows = torch.full((in_dim,), low)
        highs = torch.full((in_dim,), high)
        self.register_buffer("grid", self.basis.make_grid(lows, highs, grid_size, k))
        n_basis = self.basis.num_basis(grid_size, k)
        coef = (torch.rand(in_dim, n_basis, out_dim, generator=generator) - 0.5) * (
            noise_scale / grid_size
        )
        self.coef = nn.Parameter(coef)
        sb = scale_base_mu + scale_base_sigma * (
            torch.rand(in_dim, out_dim, generator=generator) * 2 - 1
        ) / in_dim**0.5
        self.scale_base = nn.Parameter(sb)
        self.scale_sp = nn.Parameter(torch.ones(in_dim, out_dim))
        self.register_buffer("mask", torch.ones(in_dim, out_dim))
        # Symbolic branch: mask (1 = edge is symbolic), affine (a, b, c, d) and names.
        self.register_buffer("symbolic_mask", torch.zeros(in_dim, out_dim))
        self.symbolic_affine = nn.Parameter(
            torch.tensor([1.0, 0.0, 1.0, 0.0]).repeat(in_dim, out_dim, 1)
        )
        self.symbolic_names: list[list[str]] = [["0"] * out_dim for _ in range(in_dim)]

    # ------------------------------------------------------------------ properties
    @property
    def spline_path(self) -> str:
        """``"auto"``, ``"dense"`` or ``"local"``: how :meth:`forward` contracts the splines."""
        return self._spline_path

    @spline_path.setter
    def spline_path(self, value: str) -> None:
        if value not in SPLINE_PATHS:
            raise ValueError(f"spline_path must be one of {list(SPLINE_PATHS)}, got {value!r}")
        if value == "local" and type(self.basis) is not BSplineBasis:
            raise ValueError(f"spline_path 'local' needs the bspline basis, not {self.basis.name!r}")
        self._spline_path = value

    def uses_local_path(self, n_points: int) -> bool:
        """Whether :meth:`forward` on ``n_points`` samples takes the local-support path."""
        if self._spline_path != "auto":
            return self._spline_path == "local"
        return type(self.basis) is BSplineBasis and prefer_local(
            n_points, self.in_dim, self.out_dim, self.n_basis, self.k
        )

    @property
    def n_basis(self) -> int:
        """Number of basis functions per edge."""
        return self.coef.shape[1]

    def extra_repr(self) -> str:
        return (
            f"in={self.in_dim}, out={self.out_dim}, G={self.grid_size}, k={self.k}, "
            f"basis={self.basis.name}, base={self.base_fun_name}"
        )

    def _base(self, x: Tensor) -> Tensor | None:
        fn = BASE_FUNCTIONS[self.base_fun_name]
        return None if fn is None else fn(x)

    def check_input(self, x: Tensor) -> None:
        """Raise a clear error for a wrong shape or non-finite values."""
        if x.dim() != 2 or x.shape[1] != self.in_dim:
            raise ValueError(
                f"x: expected shape (N, {self.in_dim}), got {tuple(x.shape)}"
            )
        if not all_finite(x):
            raise ValueError("x: input contains NaN or inf values")

    # ------------------------------------------------------------------ forward
    def numeric_weights(self) -> tuple[Tensor, Tensor]:
        """Effective weights of the numeric (spline + base) branch.

        Returns:
            ``w_spline (in * n_basis, out)`` and ``w_base (in, out)``, with the edge mask
            and the symbolic mask folded in.
        """
        active = torch.addcmul(self.mask, self.mask, self.symbolic_mask, value=-1.0)  # mask * (1 - sym)
        w_spline = (self.coef * (self.scale_sp * active).unsqueeze(1)).reshape(-1, self.out_dim)
        return w_spline, self.scale_base * active

    def forward(self, x: Tensor) -> Tensor:
        """``(N, in_dim) -> (N, out_dim)``: basis, then one matmul (+ symbolic edges)."""
        w_spline, w_base = self.numeric_weights()
        base = self._base(x)
        if self.uses_local_path(x.shape[0]):  # the base branch shares the spline GEMMs
            y = local_spline_contract(x, self.grid, self.k, w_spline, base, None if base is None else w_base)
        else:
            basis = self.basis.evaluate(x, self.grid, self.k)  # (N, in, nb)
            y = basis.reshape(x.shape[0], -1) @ w_spline
            if base is not None:
                y = y + base @ w_base
        if self.has_symbolic:
            y = y + self.symbolic_output(x)
        return y

    @property
    def has_symbolic(self) -> bool:
        return bool(self.symbolic_mask.any()) and bool((self.symbolic_mask * self.mask).any())

    def symbolic_edges(self) -> list[tuple[int, int, str]]:
        """``(i, j, name)`` for every active symbolic edge."""
        on = (self.symbolic_mask * self.mask).nonzero().tolist()
        return [(i, j, self.symbolic_names[i][j]) for i, j in on]

    def _symbolic_terms(self, x: Tensor):
        """Yield ``(ii, jj, values (N, E))`` for each group of symbolic edges sharing a function."""
        groups: dict[str, list[tuple[int, int]]] = {}
        for i, j, name in self.symbolic_edges():
            groups.setdefault(name, []).append((i, j))
        for name, edges in groups.items():
            ii = torch.tensor([e[0] for e in edges], device=x.device)
            jj = torch.tensor([e[1] for e in edges], device=x.device)
            a, b, c, d = self.symbolic_affine[ii, jj].unbind(-1)  # (E,)
            yield ii, jj, c * _symbolic_function(name).torch_fn(a * x[:, ii] + b) + d

    def symbolic_output(self, x: Tensor) -> Tensor:
        """Sum of the symbolic edges into each output node: ``(N, out)``."""
        y = x.new_zeros(x.shape[0], self.out_dim)
        for _, jj, vals in self._symbolic_terms(x):
            y = y.index_add(1, jj, vals)
        return y

    def symbolic_forward(self, x: Tensor) -> Tensor:
        """Symbolic branch per edge, ``(N, in, out)`` (zero where an edge is numeric)."""
        out = x.new_zeros(x.shape[0], self.in_dim, self.out_dim)
        rows = torch.arange(x.shape[0], device=x.device)[:, None]
        for ii, jj, vals in self._symbolic_terms(x):
            out = out.index_put((rows, ii, jj), vals)
        return out

    def spline_values(self, x: Tensor) -> Tensor:
        """Spline part of every edge, without scale or masks: ``(N, in, out)``."""
        basis = self.basis.evaluate(x, self.grid, self.k)
        return torch.einsum("nib,ibo->nio", basis, self.coef)

    def edge_activations(self, x: Tensor) -> Tensor:
        """Post-activation of every edge ``phi_ij(x_i)``: ``(N, in, out)``.

        ``edge_activations(x).sum(1)`` equals ``forward(x)``.
        """
        active = self.mask * (1.0 - self.symbolic_mask)
        acts = self.spline_values(x) * self.scale_sp
        base = self._base(x)
        if base is not None:
            acts = acts + base.unsqueeze(-1) * self.scale_base
        acts = acts * active
        if self.has_symbolic:
            acts = acts + self.symbolic_forward(x)
        return acts

    # ------------------------------------------------------------------ grids
    def grid_interior(self) -> Tensor:
        """Interior knots ``(in, G + 1)``: the range each input's grid covers."""
        return self.basis.interior(self.grid, self.k)

    @torch.no_grad()
    def refit_to_grid(self, new_grid: Tensor, x: Tensor, grid_size: int | None = None) -> None:
        """Replace the grid and refit ``coef`` so the spline part is unchanged on ``x``.

        Args:
            new_grid: knots ``(in, M')``.
            x: samples ``(N, in)`` on which the old splines are matched (least squares).
            grid_size: the new number of intervals (defaults to the current one).
        """
        old = self.spline_values(x)  # (N, in, out)
        g = self.grid_size if grid_size is None else grid_size
        basis = self.basis.evaluate(x, new_grid, self.k)  # (N, in, nb')
        a = basis.permute(1, 0, 2)  # (in, N, nb')
        rhs = old.permute(1, 0, 2)  # (in, N, out)
        coef = _lstsq(a, rhs)
        self.grid = new_grid.to(self.grid).contiguous()
        self.grid_size = g
        # keep the same Parameter object so optimizers and hooks stay attached
        self.coef.data = coef.to(self.coef).contiguous()

    @torch.no_grad()
    def update_grid(self, x: Tensor, margin: float = 0.0) -> None:
        """Adapt the grid to the sample distribution of ``x`` ``(N, in)``.

        Interior knots are the sample quantiles mixed with a uniform grid over the sample
        range by ``grid_eps``; spline coefficients are refit so the function is unchanged
        on the samples.
        """
        self.check_input(x)
        xs = torch.sort(x, dim=0).values
        n = xs.shape[0]
        idx = torch.linspace(0, n - 1, self.grid_size + 1, device=x.device).round().long()
        adaptive = xs[idx].T  # (in, G+1)
        lo = xs[0] - margin
        hi = xs[-1] + margin
        span = (hi - lo).clamp_min(1e-4)
        steps = torch.linspace(0, 1, self.grid_size + 1, dtype=x.dtype, device=x.device)
        uniform = lo[:, None] + span[:, None] * steps[None, :]
        interior = self.grid_eps * uniform + (1 - self.grid_eps) * adaptive
        # keep knots strictly increasing even for repeated samples
        interior = torch.maximum(interior, torch.cummax(interior, dim=1).values)
        min_gap = 1e-6 * span[:, None]
        interior = interior + min_gap * torch.arange(self.grid_size + 1, device=x.device)
        self.refit_to_grid(self.basis.grid_from_interior(interior, self.k), x)

    @torch.no_grad()
    def refine(self, grid_size: int, n_samples: int | None = None) -> None:
        """Grid extension: switch to ``grid_size`` intervals, preserving the function.

        New interior knots interpolate the old ones (a uniform grid stays uniform and, when
        ``grid_size`` is a multiple of ``G``, the old knots are kept), the outer knots are
        kept, and ``coef`` is refit by least squares on dense samples of the whole support.
        By knot insertion the old spline then lies exactly in the new space (for nested
        grids), so the function is preserved everywhere, not only on the grid range.
        """
        _check_positive_int(grid_size, "grid_size (G)", 1)
        old_interior = self.grid_interior()  # (in, G+1)
        pos_old = torch.linspace(0, 1, old_interior.shape[1], dtype=old_interior.dtype)
        pos_new = torch.linspace(0, 1, grid_size + 1, dtype=old_interior.dtype)
        interior = torch.stack([_interp(pos_new, pos_old, row) for row in old_interior.cpu()])
        interior = interior.to(self.grid)
        pad = (self.grid.shape[1] - old_interior.shape[1]) // 2
        if pad > 0:
            new_grid = torch.cat([self.grid[:, :pad], interior, self.grid[:, -pad:]], dim=1)
        else:
            new_grid = self.basis.grid_from_interior(interior, self.k)
        n = n_samples or max(512, 12 * (grid_size + 2 * self.k))
        t = torch.linspace(0, 1, n, dtype=self.grid.dtype, device=self.grid.device)[:, None]
        lo, hi = new_grid[:, 0], new_grid[:, -1]
        x = lo + (hi - lo) * t * (1 - 1e-9)  # (n, in), the support, right end excluded
        self.refit_to_grid(new_grid, x, grid_size)


def _interp(x: Tensor, xp: Tensor, fp: Tensor) -> Tensor:
    """1D linear interpolation (like ``numpy.interp``) for increasing ``xp``."""
    idx = torch.searchsorted(xp, x).clamp(1, len(xp) - 1)
    x0, x1 = xp[idx - 1], xp[idx]
    y0, y1 = fp[idx - 1], fp[idx]
    w = (x - x0) / (x1 - x0)
    return y0 + w * (y1 - y0)


def _lstsq(a: Tensor, b: Tensor, ridge: float = 1e-10) -> Tensor:
    """Batched least squares ``min ||a c - b||`` with a tiny ridge for empty basis columns.

    ``a (B, N, p)``, ``b (B, N, q)`` -> ``(B, p, q)``. Solved in float64 via normal equations
    with Cholesky, falling back to ``torch.linalg.lstsq``.
    """
    a64, b64 = a.double(), b.double()
    ata = a64.transpose(1, 2) @ a64
    scale = ata.diagonal(dim1=1, dim2=2).mean(-1).clamp_min(1e-30)
    ata = ata + ridge * scale[:, None, None] * torch.eye(ata.shape[-1], dtype=ata.dtype, device=ata.device)
    atb = a64.transpose(1, 2) @ b64
    chol, info = torch.linalg.cholesky_ex(ata)
    if bool((info == 0).all()):
        return torch.cholesky_solve(atb, chol)
    return torch.linalg.lstsq(a64, b64).solution
