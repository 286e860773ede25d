"""physkan.linalg.lstsq: the minimum-norm solution, whatever the buffers' alignment."""

from __future__ import annotations

import torch

from physkan.linalg import lstsq


def _misaligned_copy(a: torch.Tensor, offset: int) -> torch.Tensor:
    """``a`` copied into a buffer that starts ``offset`` elements into a fresh allocation."""
    buf = torch.empty(a.numel() + offset, dtype=a.dtype)[offset:]
    out = buf.view_as(a)
    out.copy_(a)
    return out


def test_rank_deficient_fit_is_the_minimum_norm_solution_at_every_alignment() -> None:
    """An ALS sweep whose factors are all still 1 asks for ``[B, B] c ≈ y``: duplicate
    columns. The answer must split the weight evenly and not depend on where the buffer lies
    (LAPACK's default gelsy returned different solutions for different offsets)."""
    g = torch.Generator().manual_seed(10)
    x = 1 + 4 * torch.rand(500, dtype=torch.float64, generator=g)
    basis = torch.stack([torch.cos(k * torch.acos((x - 3) / 2)) for k in range(13)], 1)
    y = (x * (1 + 2 * torch.rand(500, dtype=torch.float64, generator=g)))[:, None]
    a = torch.cat([basis, basis], 1)
    reference = torch.linalg.pinv(a) @ y
    for offset in range(8):
        sol = lstsq(_misaligned_copy(a, offset), y)
        assert sol.shape == (26, 1)
        torch.testing.assert_close(sol, reference, rtol=0, atol=1e-9)
        torch.testing.assert_close(sol[:13], sol[13:], rtol=0, atol=1e-9)


def test_full_rank_fit_matches_the_exact_solution_in_batches() -> None:
    g = torch.Generator().manual_seed(1)
    a = torch.randn(3, 40, 4, dtype=torch.float64, generator=g)
    truth = torch.randn(3, 4, 2, dtype=torch.float64, generator=g)
    torch.testing.assert_close(lstsq(a, a @ truth), truth, rtol=0, atol=1e-12)
