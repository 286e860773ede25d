"""A trained (and symbolified) candidate of the regression search, and how the answer is
picked among them: closed forms first, then the smaller held-out error; the simplest formula
of the Pareto front within the exactness tolerance; on noisy data, the answer simplified as
far as the noise allows (:mod:`physkan.strategies.noisy`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy
import torch
from torch import Tensor

from physkan.kan.network import MultKAN
from physkan.problems import Dataset, ProblemSpec
from physkan.strategies.base import Reporter
from physkan.strategies.common import formula_rmse, sample_ranges
from physkan.strategies.noisy import denoised_answer
from physkan.strategies.s2kan_fit import S2KANReport
from physkan.symbolic.edges import AutoSymbolicReport
from physkan.symbolic.pareto import complexity, current_front, offer

__all__ = ["Trial", "better", "choose_simplest", "compiled_formula", "denoise_answer", "formula_test_rmse",
           "offer_trial", "rel_error"]


@dataclass
class Trial:
    """A trained (and, if promising, symbolified) candidate."""

    label: str
    model: torch.nn.Module | None
    formulas: list[sympy.Expr] = field(default_factory=list)
    numeric_edges: list[tuple[int, int, int]] = field(default_factory=list)
    report: AutoSymbolicReport | S2KANReport | None = None
    rel_error: float = float("inf")  # relative test RMSE of the formula (or of the network)
    model_test_rmse: float = float("inf")
    test_rmse: float = float("inf")
    mdl: dict[str, float] = field(default_factory=dict)  # S2KAN description length metrics (bits)
    log_sign: int = 0  # a log-space network of log|y| (y = log_sign·exp(network)); 0: y itself

    @property
    def complete(self) -> bool:
        return self.report is not None and self.report.complete and not self.numeric_edges


def rel_error(err: float, y: Tensor) -> float:
    """``err`` (an RMSE in the output's units) relative to ``std(y)`` (``y``: ``(N, 1)``)."""
    return err / (float(y.std()) or 1.0)


def formula_test_rmse(formulas: list[sympy.Expr], data: Dataset) -> float:
    """Test RMSE of closed-form formulas; ``inf`` when one leaves its domain (NaN)."""
    err = formula_rmse(formulas, data.inputs, data.x_test, data.y_test)
    return float("inf") if err != err else err


def compiled_formula(spec: ProblemSpec, data: Dataset, expr: sympy.Expr) -> MultKAN | None:
    """The found formula as a KAN (kanpiler), so the result has a model; ``None`` if it fails."""
    from physkan.symbolic.compile import kanpiler

    try:
        return kanpiler(data.inputs, expr, ranges=sample_ranges(spec, data.inputs), output=data.outputs[0],
                        dtype=torch.float64)  # fmt: skip
    except Exception:  # noqa: BLE001 - the formula stands without a compiled model
        return None


def better(a: Trial, b: Trial | None) -> bool:
    """Is ``a`` preferable to ``b``? Closed-form formulas first, then the smaller error."""
    if b is None:
        return True
    if a.complete != b.complete and (a.complete and a.rel_error < 1e-3 or b.complete and b.rel_error < 1e-3):
        return a.complete
    return a.rel_error < b.rel_error


def offer_trial(trial: Trial) -> None:
    """Offer a closed-form single-output trial to the Pareto front in force."""
    if len(trial.formulas) == 1 and trial.complete:
        offer(trial.formulas[0], trial.test_rmse, trial.label)


def choose_simplest(best: Trial, spec: ProblemSpec, data: Dataset, tolerance: float, say: Reporter) -> None:
    """Replace ``best``'s formula by the simplest one of the front within ``tolerance``
    (absolute RMSE) of the front's best, when that is at least as accurate as ``best``."""
    front = current_front()
    chosen = front.choose(tolerance) if front is not None else None
    if chosen is None or len(best.formulas) > 1 or chosen.test_rmse > best.test_rmse + tolerance:
        return
    if best.formulas and best.complete and chosen.complexity >= complexity(best.formulas[0]):
        return
    say(f"choosing the simpler formula {chosen.formula} ({chosen.source})")
    best.label, best.formulas, best.numeric_edges = f"{best.label} -> {chosen.source}", [chosen.formula], []
    best.test_rmse, best.rel_error = chosen.test_rmse, rel_error(chosen.test_rmse, data.y_test)
    best.model = compiled_formula(spec, data, chosen.formula) or best.model
    best.report = best.report if best.report is not None and best.report.complete else AutoSymbolicReport()


def denoise_answer(best: Trial, spec: ProblemSpec, data: Dataset, tolerance: float, say: Reporter) -> None:
    """On noisy data, the answer with its constants snapped as far as the noise allows
    (:mod:`physkan.strategies.noisy`); offered to the front, and kept unless its test RMSE
    is worse than ``best``'s by more than ``tolerance`` (absolute RMSE)."""
    if len(best.formulas) != 1 or not best.complete:
        return
    expr = denoised_answer(best.formulas[0], spec, data)
    if expr is None:
        return
    rmse = formula_test_rmse([expr], data)
    offer(expr, rmse, f"{best.label} (snapped to the noise)")
    if not rmse <= best.test_rmse + tolerance:
        return
    say(f"simplified within the noise: {expr}")
    best.label, best.formulas = f"{best.label} (snapped to the noise)", [expr]
    best.test_rmse, best.rel_error = rmse, rel_error(rmse, data.y_test)
    best.model = compiled_formula(spec, data, expr) or best.model
