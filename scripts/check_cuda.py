"""CUDA correctness probe for a GPU machine: the local and dense spline paths agree there.

A ``[3, 5, 1]`` KAN in float64 on the GPU, once per spline path: the output, its input
gradient (``create_graph=True``) and one Hessian row (double backward) must agree to 1e-12,
as the CPU tests require. Prints and writes JSON; exit status 1 on a mismatch, 2 without CUDA.

Usage: ``python scripts/check_cuda.py [--json docs/cuda_check.json]``.
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

from physkan import MultKAN


def path_results(path: str, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Output ``(N, 1)``, input gradient ``(N, 3)`` and Hessian row ``d(dy/dx0)/dx (N, 3)``."""
    model = MultKAN([3, 5, 1], grid=10, k=3, seed=0).double().to(x.device)
    for layer in model.layers:
        layer.spline_path = path
    (grad,) = torch.autograd.grad(model(x).sum(), x, create_graph=True)
    (hess_row,) = torch.autograd.grad(grad[:, 0].sum(), x)
    return model(x).detach(), grad.detach(), hess_row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default=None, help="write the result to this file")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA device is visible to torch", file=sys.stderr)
        return 2
    device = torch.device("cuda")
    torch.manual_seed(0)
    x = (torch.rand(512, 3, dtype=torch.float64) * 2 - 1).to(device).requires_grad_()
    local, dense = path_results("local", x), path_results("dense", x)
    out: dict = {"torch": torch.__version__, "device": torch.cuda.get_device_name(device)}
    for name, a, b in zip(("value", "grad", "hessian_row"), local, dense):
        out[f"max_abs_diff_{name}"] = float((a - b).abs().max())
    out["ok"] = all(out[f"max_abs_diff_{n}"] < 1e-12 for n in ("value", "grad", "hessian_row"))
    print(json.dumps(out, indent=1))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
