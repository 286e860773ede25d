"""Growing a (compiled) KAN without changing its function: new inputs, width, depth; perturb.

KAN 2.0, Sec. 3.1 and 3.3. A network made by the kanpiler is compact and exactly symbolic;
to fine-tune it on data it can be given

* :func:`augment_input`: auxiliary inputs ``a(x)`` (e.g. ``beta = v/c``);
* :func:`expand_width`: extra nodes in a hidden layer;
* :func:`expand_depth`: an extra identity layer at the end;

all of which add *zero* numeric edges (active, spline and base weights 0), so the output is
unchanged. Zero edges feeding zero edges (and products of zeros) get zero gradients;
:func:`perturb` makes them small and non-zero. Every function returns a new model; the
input model is not modified.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import sympy
import torch
from torch import Tensor

from physkan.kan.network import MultKAN
from physkan.symbolic.parse import lambdify_torch, parse_expression

__all__ = ["augment_input", "expand_depth", "expand_width", "perturb"]


def _identity(n: int) -> list[int]:
    return list(range(n))


@torch.no_grad()
def _rebuild(
    model: MultKAN,
    width: Sequence[int | Sequence[int]],
    node_map: Sequence[Sequence[int]],
    sub_map: Sequence[Sequence[int]],
    variables: Sequence[str] | None = None,
    extra_layers: int = 0,
) -> MultKAN:
    """A model of ``width`` holding ``model``'s parameters at mapped positions.

    Old node ``q`` of layer ``l`` becomes node ``node_map[l][q]``; old subnode ``s`` of
    layer ``l >= 1`` becomes ``sub_map[l][s]`` (``sub_map[0]`` is unused). Every new edge of
    the first ``model.depth`` layers is active and numeric with zero weights; new
    nodes/subnodes get the identity affine. ``extra_layers`` layers are appended untouched.
    """
    cfg = model.config()
    names = cfg.pop("symbolic_names")
    cfg["width"] = [list(w) if isinstance(w, Sequence) else w for w in width]
    cfg["grid"] = list(cfg["grid"]) + [cfg["grid"][-1]] * extra_layers
    if variables is not None:
        cfg["variables"] = list(variables)
    new = MultKAN.from_config(cfg).to(model.layers[0].coef)
    for lyr, (old, lay) in enumerate(zip(model.layers, new.layers, strict=False)):
        ii = torch.tensor(node_map[lyr], dtype=torch.long)[:, None]
        jj = torch.tensor(sub_map[lyr + 1], dtype=torch.long)[None, :]
        lay.mask.fill_(1.0)
        lay.symbolic_mask.zero_()
        lay.coef.zero_()
        lay.scale_base.zero_()
        lay.scale_sp.fill_(1.0)
        lay.symbolic_affine.copy_(torch.tensor([1.0, 0.0, 1.0, 0.0]).expand_as(lay.symbolic_affine))
        for attr in ("mask", "symbolic_mask", "scale_base", "scale_sp", "symbolic_affine"):
            getattr(lay, attr)[ii, jj] = getattr(old, attr)
        lay.coef[ii, :, jj] = old.coef.permute(0, 2, 1)
        lay.grid[ii[:, 0]] = old.grid
        lay.symbolic_names = [["0"] * lay.out_dim for _ in range(lay.in_dim)]
        for i, row in zip(node_map[lyr], names[lyr], strict=True):
            for j, name in zip(sub_map[lyr + 1], row, strict=True):
                lay.symbolic_names[i][j] = name
        for plist, mapping in (
            (("subnode_scale", "subnode_bias"), sub_map[lyr + 1]),
            (("node_scale", "node_bias"), node_map[lyr + 1]),
        ):
            for attr in plist:
                getattr(new, attr)[lyr][torch.tensor(mapping, dtype=torch.long)] = getattr(
                    model, attr
                )[lyr]
    return new


def _subnode_identity(model: MultKAN) -> list[list[int]]:
    return [[]] + [_identity(model.n_subnodes(q)) for q in range(1, model.depth + 1)]


def _node_identity(model: MultKAN) -> list[list[int]]:
    return [_identity(model.n_nodes(q)) for q in range(model.depth + 1)]


def augment_input(
    model: MultKAN,
    x: Tensor,
    names: Sequence[str] | None,
    new_names_exprs: Mapping[str, str | sympy.Expr],
    variables: Sequence[str] | None = None,
) -> tuple[MultKAN, Tensor]:
    """Add auxiliary inputs computed from the existing ones.

    Args:
        model: a model with inputs ``names``.
        x: data ``(N, n_in)``, columns in the order of ``names``.
        names: the columns of ``x`` (``None``: ``model.variables``).
        new_names_exprs: ``{new name: formula}``, e.g. ``{"beta": "v/c"}``.
        variables: the names the formulas may use (``None``: ``names``); each must be a
            column of ``x``.

    Returns:
        ``(new_model, new_x)``: the new inputs are appended (in mapping order) with zero
        outgoing edges, so ``new_model(new_x) == model(x)``; ``new_x`` is ``(N, n_in + n_new)``.
        Their grids cover the range of the new columns.
    """
    names = list(model.variables if names is None else names)
    if len(names) != x.shape[1] or names != list(model.variables):
        raise ValueError(
            f"names: expected the model's inputs {model.variables} (the columns of x), got {names}"
        )
    variables = list(names if variables is None else variables)
    missing = [v for v in variables if v not in names]
    if missing:
        raise ValueError(f"variables {missing} are not columns of x ({names})")
    clash = [n for n in new_names_exprs if n in names]
    if clash or not new_names_exprs:
        raise ValueError(f"new_names_exprs: need new, unused names, got {list(new_names_exprs)}")
    cols = []
    cols_x = x[:, [names.index(v) for v in variables]]
    for name, expr in new_names_exprs.items():
        if isinstance(expr, str):
            expr = parse_expression(expr, variables)
        col = lambdify_torch(expr, variables)(cols_x).to(x).reshape(-1)
        if not torch.isfinite(col).all():
            raise ValueError(f"auxiliary input {name} = {expr} is not finite on x")
        cols.append(col)
    new_x = torch.cat([x, torch.stack(cols, dim=1)], dim=1)
    n_old, n_new = x.shape[1], len(cols)
    width = model.width_spec
    width[0] = n_old + n_new
    new = _rebuild(
        model, width, _node_identity(model), _subnode_identity(model),
        variables=names + list(new_names_exprs),
    )  # fmt: skip
    with torch.no_grad():
        lay = new.layers[0]
        new_cols = new_x[:, n_old:].to(lay.grid)
        lo, hi = new_cols.min(0).values, new_cols.max(0).values
        span = (hi - lo).clamp_min(1e-3)
        lay.grid[n_old:] = lay.basis.make_grid(
            lo - 0.01 * span, hi + 0.01 * span, lay.grid_size, lay.k
        )
    return new, new_x


def expand_width(model: MultKAN, layer: int, n_new: int, *, n_mult: int = 0) -> MultKAN:
    """Add ``n_new`` addition (and ``n_mult`` multiplication) nodes to hidden layer ``layer``.

    ``1 <= layer < len(model.width) - 1``. New nodes go after the old addition
    (multiplication) nodes; all their edges are zero, so the function is unchanged.
    """
    if not 1 <= layer < model.depth:
        raise ValueError(f"layer: must be a hidden layer in [1, {model.depth - 1}], got {layer}")
    if n_new < 0 or n_mult < 0 or n_new + n_mult < 1:
        raise ValueError(f"n_new, n_mult: need at least one new node, got {n_new}, {n_mult}")
    n_add, n_mul = model.width[layer]
    width = model.width_spec
    width[layer] = [n_add + n_new, n_mul + n_mult]
    nodes, subs = _node_identity(model), _subnode_identity(model)
    nodes[layer] = _identity(n_add) + [q + n_new for q in range(n_add, n_add + n_mul)]
    subs[layer] = _identity(n_add) + [
        s + n_new for s in range(n_add, n_add + model.mult_arity * n_mul)
    ]
    return _rebuild(model, width, nodes, subs)


@torch.no_grad()
def expand_depth(model: MultKAN, x: Tensor | None = None) -> MultKAN:
    """Append a layer mapping the outputs to themselves (symbolic ``"x"`` edges).

    The other edges of the new layer are zero numeric edges. With ``x`` ``(N, n_in)``, the
    new layer's grid is fitted to the old outputs on ``x``.
    """
    n_out = model.n_nodes(model.depth)
    width = [*model.width_spec, n_out]
    new = _rebuild(model, width, _node_identity(model), _subnode_identity(model), extra_layers=1)
    lay = new.layers[-1]
    lay.mask.fill_(1.0)
    lay.coef.zero_()
    lay.scale_base.zero_()
    lay.symbolic_mask.copy_(torch.eye(n_out))
    lay.symbolic_affine.copy_(torch.tensor([1.0, 0.0, 1.0, 0.0]).expand_as(lay.symbolic_affine))
    lay.symbolic_names = [["x" if i == j else "0" for j in range(n_out)] for i in range(n_out)]
    if x is not None:
        lay.update_grid(model(x.to(lay.grid)))
    return new


@torch.no_grad()
def perturb(
    model: MultKAN,
    magnitude: float = 0.1,
    seed: int = 0,
    *,
    include_masked: bool = True,
    tol: float = 1e-12,
) -> MultKAN:
    """Make zero (and, with ``include_masked``, masked) edges small and non-zero.

    * an active numeric edge whose spline coefficients and base weight are all ``<= tol``
      gets coefficients and base weight ``~ U(-magnitude, magnitude)``;
    * a masked edge is unmasked and made such a small numeric edge;
    * a symbolic edge with ``c = 0`` gets ``c = ±U(magnitude/2, magnitude)``.

    Non-zero edges are untouched, so each changed edge adds ``|phi| ≲ magnitude·(1 + |x|)``.
    """
    new = copy.deepcopy(model)  # (MultKAN.copy rounds float64 models through float32)
    gen = torch.Generator().manual_seed(seed)
    for lay in new.layers:

        def noise(*shape: int, like: Tensor = lay.coef) -> Tensor:
            return ((torch.rand(*shape, generator=gen) * 2 - 1) * magnitude).to(like)

        numeric = (lay.mask > 0) & (lay.symbolic_mask == 0)
        dead = (lay.coef.abs().amax(1) <= tol) & (lay.scale_base.abs() <= tol)
        target = numeric & dead
        if include_masked:
            target = target | (lay.mask == 0)
        c = lay.symbolic_affine[..., 2]
        sym_dead = (lay.mask > 0) & (lay.symbolic_mask > 0) & (c.abs() <= tol)
        n_coef = noise(*lay.coef.shape)
        lay.coef.copy_(torch.where(target[:, None, :], n_coef, lay.coef))
        lay.scale_base.copy_(torch.where(target, noise(*target.shape), lay.scale_base))
        lay.scale_sp.copy_(torch.where(target & (lay.scale_sp == 0), 1.0, lay.scale_sp))
        lay.symbolic_mask.copy_(torch.where(target, 0.0, lay.symbolic_mask))
        lay.mask.copy_(torch.where(target, 1.0, lay.mask))
        sign = torch.where(torch.rand(c.shape, generator=gen) < 0.5, -1.0, 1.0).to(c)
        small = sign * (0.5 + 0.5 * torch.rand(c.shape, generator=gen).to(c)) * magnitude
        lay.symbolic_affine[..., 2] = torch.where(sym_dead, small, c)
        for i, j in target.nonzero().tolist():
            lay.symbolic_names[i][j] = "0"
    return new
