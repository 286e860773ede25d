"""``physkan train``: train a problem's network (no symbolic stage) on the Lightning engine.

Works for every problem type with a training objective: the built-in types and plugin
types whose :class:`~physkan.plugins.ProblemTypeRecord` gives an ``objective``. A plugin
type's batch keys come from its record's ``dataset_keys`` and its network's outputs from
``[model].width`` or its system's ``network_shape()``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

__all__ = ["model_outputs", "train_command", "training_batch"]

BUILTIN_TYPES = ("regression", "lagrangian", "conservation", "metric")


@click.command("train")
@click.option("--problem", "-p", required=True, help="Built-in problem name or path to a problem TOML.")
@click.option("--devices", type=int, default=1, show_default=True)
@click.option("--accelerator", type=click.Choice(["cpu", "gpu", "auto"]), default="cpu", show_default=True)
@click.option("--strategy", type=click.Choice(["auto", "ddp", "ddp_spawn"]), default="auto", show_default=True)
@click.option("--max-steps", type=click.IntRange(min=1), default=None, help="Override [train].steps.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None)
def train_command(problem: str, devices: int, accelerator: str, strategy: str, max_steps: int | None,
                  out: Path | None) -> None:  # fmt: skip
    """Train the problem's network (no symbolic stage) on the Lightning engine."""
    from physkan.cli import UserError, user_errors
    from physkan.problems import load_problem, make_dataset
    from physkan.strategies.common import build_model
    from physkan.train import fit
    from physkan.train.objectives import OBJECTIVES, make_objective

    with user_errors():
        spec = load_problem(problem)
        if spec.type not in OBJECTIVES:
            raise UserError(
                f"type: problem type {spec.type!r} has no training objective (its plugin gives "
                "no ProblemTypeRecord.objective), so physkan train cannot train it"
            )
        data = make_dataset(spec)
        batch = training_batch(spec.type, data)
        outputs = model_outputs(spec, data)
        options = {"accelerator": accelerator, "devices": devices, "strategy": strategy}
        if spec.model.kind == "s2kan":
            model = _train_s2kan(spec, data, batch, outputs, max_steps, options)
        else:
            model = build_model(spec, data.inputs, outputs)
            result = fit(model, make_objective(spec.type), batch, steps=max_steps or spec.train.steps,
                         optimizer=spec.train.optimizer, lr=spec.train.lr, lamb=spec.train.lamb,
                         progress=sys.stderr.isatty(), **options)  # fmt: skip
            click.echo(f"final loss {result.final_loss:.3e} after {len(result.history)} steps "
                       f"({result.seconds:.1f} s)")  # fmt: skip
    if out is not None:
        from physkan.io import save_model

        click.echo(f"saved {save_model(model, Path(out) / 'model.h5')}")


def model_outputs(spec: Any, data: Any) -> list[str]:
    """Output names of the trained network.

    Lagrangian: ``["L"]``; other built-in types: the dataset's outputs. A plugin type: as
    many outputs as ``[model].width`` (or else the system's ``network_shape()``) asks for,
    named after the dataset's or the system's outputs when the counts agree, else
    ``y`` / ``y1, y2 ...``.
    """
    if spec.type == "lagrangian":
        return ["L"]
    if spec.type in BUILTIN_TYPES:
        return list(data.outputs)
    sizes = spec.model.layer_sizes()
    n_out = sizes[-1] if sizes else spec.system.network_shape()[1]
    if n_out is None:
        return list(data.outputs)
    for names in (list(data.outputs), spec.system.output_names() or []):
        if len(names) == n_out:
            return names
    return ["y"] if n_out == 1 else [f"y{i + 1}" for i in range(n_out)]


def training_batch(problem_type: str, data: Any) -> dict[str, Any]:
    """The objective's batch: built-in types by their extras, others by ``dataset_keys``."""
    if problem_type == "lagrangian":
        return {"state": data.x_train, "qddot": data.extras["qddot_train"]}
    if problem_type == "conservation":
        return {"z": data.x_train, "f": data.extras["f_train"]}
    if problem_type == "metric":
        return {"r": data.x_train}
    if problem_type == "regression":
        return {"x": data.x_train, "y": data.y_train}
    from physkan.train.objectives import dataset_batch

    return dataset_batch(data, "train", problem_type)


def _train_s2kan(spec, data, batch: dict[str, Any], outputs: list[str], max_steps: int | None,
                 fit_options: dict[str, Any]):  # fmt: skip
    """``[model] kind = "s2kan"``: the whole S2KAN schedule on the problem's loss (every phase
    on the engine with the given devices); prints the description length and open terms."""
    from physkan.s2kan import train_s2kan
    from physkan.strategies.s2kan_fit import kinetic_teacher, s2kan_config, s2kan_model
    from physkan.train.objectives import make_objective

    if spec.type == "conservation":
        outputs = [f"H{i + 1}" for i in range(spec.system.n_quantities)]
    sizes = spec.model.layer_sizes()
    fits = sizes is not None and sizes[0] == len(data.inputs) and sizes[-1] == len(outputs)
    width = spec.model.width if fits else [len(data.inputs), len(outputs)]  # else additive
    model = s2kan_model(spec, width, data.inputs, outputs)
    cfg = s2kan_config(spec) if max_steps is None else s2kan_config(spec, steps=max_steps)
    cfg.fit_options = fit_options
    teacher = kinetic_teacher(batch["state"]) if spec.type == "lagrangian" else None
    dl = train_s2kan(model, batch, objective=make_objective(spec.type), teacher=teacher, cfg=cfg)
    click.echo(f"S2KAN {model.width_spec}: loss {dl.mse:.3e}, description length {dl.total_bits:.1f} bits "
               f"(data {dl.data_bits:.1f} + model {dl.model_bits:.1f})")  # fmt: skip
    for lyr, i, j, name in model.open_terms():
        click.echo(f"  edge ({lyr},{i},{j}): {name}")
    return model
