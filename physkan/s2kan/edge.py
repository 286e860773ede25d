"""S2KAN edges: a vectorised layer of gated symbolic-plus-spline activations.

Every edge ``(i, j)`` of a layer (input ``i``, output subnode ``j``) computes

    φ_ij(x) = Σ_s z_ijs · c_ijs · f_s(a_ijs · x + b_ijs) + z_ij,spl · spline_ij(x) + d_ij

over the ``S`` functions ``f_s`` of a symbolic library (the term index ``S`` is the spline).
Parameters are tensors over ``(in, n_sub, S)`` so the whole layer is a handful of tensor ops
(one Python loop over the ``S`` library functions, never over edges). Gates ``z`` are
hard-concrete samples while training and deterministic at evaluation; ``mask`` removes pruned
terms for good and, once :attr:`hard` is set, the gates are exactly ``mask``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from physkan.kan.basis import get_basis_family
from physkan.s2kan.gates import deterministic_gate, prob_open, sample_gate
from physkan.symbolic.library import SymbolicFunction, resolve_library

__all__ = ["S2Layer", "term_params"]


def term_params(fn: SymbolicFunction) -> int:
    """Free parameters a symbolic term adds: 0 for ``"0"``, 1 for ``"x"`` (a·c, b·c fold
    into the slope and the edge bias), else 3 (``a``, ``b``, ``c``)."""
    if fn.name == "0":
        return 0
    return 1 if fn.name == "x" else 3


class S2Layer(nn.Module):
    """One S2KAN layer mapping ``(N, n_in) -> (N, n_sub)`` (subnodes, before products).

    Args:
        n_in, n_sub: number of inputs and of output subnodes.
        library: symbolic function names (``None`` → default library; plugin functions join
            through :func:`~physkan.symbolic.library.resolve_library`).
        grid, k: spline grid intervals and order; the spline has ``grid + k`` coefficients
            (B-splines; other families say how many through ``num_basis``).
        grid_range: initial input range of every spline.
        use_spline: whether each edge has a spline term at all.
        basis: basis family of the spline term (``[model].basis``: ``"bspline"``,
            ``"rbf"`` or a plugin family), see :mod:`physkan.kan.basis`.
    """

    def __init__(
        self,
        n_in: int,
        n_sub: int,
        library: Sequence[str] | None = None,
        *,
        grid: int = 5,
        k: int = 3,
        grid_range: tuple[float, float] = (-1.0, 1.0),
        use_spline: bool = True,
        basis: str = "bspline",
    ) -> None:
        super().__init__()
        self.n_in, self.n_sub, self.grid_size, self.k = n_in, n_sub, grid, k
        self.functions: list[SymbolicFunction] = list(resolve_library(library).values())
        self.library = [f.name for f in self.functions]
        self.use_spline = use_spline
        s = len(self.functions)
        self.basis = get_basis_family(basis)
        self.basis_name = self.basis.name
        low = torch.full((n_in,), float(grid_range[0]))
        high = torch.full((n_in,), float(grid_range[1]))
        self.register_buffer("grid", self.basis.make_grid(low, high, grid, k))
        shape = (n_in, n_sub, s)
        self.a = nn.Parameter(torch.ones(shape))
        self.b = nn.Parameter(torch.zeros(shape))
        self.c = nn.Parameter(torch.zeros(shape))
        self.d = nn.Parameter(torch.zeros(n_in, n_sub))
        self.coef = nn.Parameter(torch.zeros(n_in, n_sub, self.n_basis))
        with torch.no_grad():  # start as random linear functions w·x, w ~ U(-1, 1)/sqrt(in)
            slope = (2 * torch.rand(n_in, n_sub) - 1) / n_in**0.5
            self.coef.copy_(slope[..., None] * self.greville()[:, None, :])
        self.log_alpha = nn.Parameter(torch.zeros(n_in, n_sub, s + 1))
        mask = torch.ones(n_in, n_sub, s + 1)
        if not use_spline:
            mask[..., s] = 0.0
        self.register_buffer("mask", mask)
        self.register_buffer("hard", torch.zeros(()))
        # edges whose spline and offset get no gradient (warm-up schedules); a buffer, not a
        # tensor hook, so it travels with the module into ddp_spawn workers
        self.register_buffer("frozen", torch.zeros(n_in, n_sub), persistent=False)

    # ------------------------------------------------------------------ pickling
    def __getstate__(self) -> dict:
        """Library functions travel by name (their sympy builders may be lambdas), so a
        layer pickles, e.g. into ``ddp_spawn`` workers."""
        state = self.__dict__.copy()
        state.pop("functions", None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.functions = list(resolve_library(self.library).values())

    # ------------------------------------------------------------------ structure
    @property
    def n_terms(self) -> int:
        """``S + 1``: library functions plus the spline."""
        return len(self.functions) + 1

    @property
    def n_basis(self) -> int:
        return self.basis.num_basis(self.grid_size, self.k)

    def extra_repr(self) -> str:
        return (f"in={self.n_in}, sub={self.n_sub}, S={len(self.functions)}, grid={self.grid_size}, "
                f"k={self.k}, basis={self.basis_name}")  # fmt: skip

    def gates(self) -> Tensor:
        """Gate values ``(in, n_sub, S + 1)``: samples in training, deterministic in eval."""
        if bool(self.hard):
            return self.mask
        z = sample_gate(self.log_alpha) if self.training else deterministic_gate(self.log_alpha)
        return z * self.mask

    def open_probability(self) -> Tensor:
        """``P(gate open)`` per term ``(in, n_sub, S + 1)``; exactly ``mask`` once hard."""
        if bool(self.hard):
            return self.mask
        return prob_open(self.log_alpha) * self.mask

    def open_terms(self) -> Tensor:
        """Bool ``(in, n_sub, S + 1)``: terms whose evaluation gate is non-zero."""
        if bool(self.hard):
            return self.mask > 0
        return (deterministic_gate(self.log_alpha) * self.mask) > 0

    def greville(self) -> Tensor:
        """Coefficients ``(in, n_basis)`` of the identity spline ``spline(x) = x``.

        For B-splines these are the Greville abscissae (exact); for other basis families a
        least-squares fit of ``x`` on the fitted range of each input's grid.
        """
        g = self.grid
        if self.basis_name == "bspline":
            return torch.stack([g[:, b + 1 : b + self.k + 1].mean(1) for b in range(self.n_basis)], 1)
        from physkan.kan.layer import _lstsq

        interior = self.basis.interior(g, self.k)
        lo, hi = interior[:, 0], interior[:, -1]
        t = torch.linspace(0.0, 1.0, 4 * self.n_basis + 8, dtype=g.dtype, device=g.device)
        xs = lo[:, None] + (hi - lo)[:, None] * t  # (in, M)
        values = self.basis.evaluate(xs.T, g, self.k).permute(1, 0, 2)  # (in, M, nb)
        return _lstsq(values, xs[..., None], ridge=1e-10)[..., 0]

    # ------------------------------------------------------------------ evaluation
    def spline_basis(self, x: Tensor) -> Tensor:
        """``(N, in) -> (N, in, n_basis)`` values of the layer's basis family on each input's grid."""
        return self.basis.evaluate(x, self.grid, self.k)

    def spline_values(self, x: Tensor) -> Tensor:
        """Ungated spline of every edge, ``(N, in) -> (N, in, n_sub)``."""
        coef = self.coef
        if bool(self.frozen.any()):
            coef = torch.where(self.frozen[..., None] > 0, coef.detach(), coef)
        return torch.einsum("nib,ijb->nij", self.spline_basis(x), coef)

    def live_functions(self) -> list[int]:
        """Indices of library functions with at least one unmasked term."""
        live = self.mask[..., :-1].flatten(0, 1).amax(0) > 0
        return live.nonzero().flatten().tolist()

    def term_values(self, x: Tensor, live: list[int] | None = None) -> Tensor:
        """Ungated ``c · f(a x + b)`` per term, ``(N, in) -> (N, in, n_sub, L)`` for the ``L``
        library functions in ``live`` (default: all)."""
        live = list(range(len(self.functions))) if live is None else live
        idx = torch.tensor(live, dtype=torch.long, device=x.device)
        u = self.a[..., idx] * x[:, :, None, None] + self.b[..., idx]
        cols = [self.functions[s].torch_fn(u[..., n]) for n, s in enumerate(live)]
        if not cols:
            return u
        return torch.stack(cols, -1) * self.c[..., idx]

    def edge_values(self, x: Tensor) -> Tensor:
        """Gated edge activations φ, ``(N, in) -> (N, in, n_sub)``.

        Only library functions with an unmasked term are evaluated.
        """
        z = self.gates()
        live = self.live_functions()
        d = torch.where(self.frozen > 0, self.d.detach(), self.d) if bool(self.frozen.any()) else self.d
        out = d.expand(x.shape[0], -1, -1)
        if live:
            idx = torch.tensor(live, dtype=torch.long, device=x.device)
            out = out + (self.term_values(x, live) * z[..., idx]).sum(-1)
        if self.use_spline and bool(self.mask[..., -1].any()):
            out = out + self.spline_values(x) * z[..., -1]
        return out

    def forward(self, x: Tensor) -> Tensor:
        """``(N, in) -> (N, n_sub)``: sum of the edges into each subnode."""
        return self.edge_values(x).sum(1)

    # ------------------------------------------------------------------ spline grid
    def set_grid(self, x: Tensor, margin: float = 0.1) -> None:
        """Move every spline's grid to the range of ``x (N, in)`` (plus a relative margin)
        and refit its coefficients by least squares so the spline keeps its shape."""
        with torch.no_grad():
            old = self.spline_values(x)  # (N, in, n_sub)
            lo, hi = x.amin(0), x.amax(0)
            span = (hi - lo).clamp_min(1e-3)
            lo, hi = lo - margin * span, hi + margin * span
            self.grid.copy_(self.basis.make_grid(lo, hi, self.grid_size, self.k).to(self.grid))
            self.fit_spline(x, old)

    def fit_spline(self, x: Tensor, target: Tensor, ridge: float = 1e-8) -> None:
        """Least-squares spline coefficients so that ``spline(x) ≈ target (N, in, n_sub)``."""
        from physkan.kan.layer import _lstsq

        with torch.no_grad():
            basis = self.spline_basis(x).permute(1, 0, 2)  # (in, N, nb)
            sol = _lstsq(basis, target.permute(1, 0, 2), ridge=ridge)  # (in, nb, n_sub)
            self.coef.copy_(sol.permute(0, 2, 1).to(self.coef))
