"""The problem-file schema: pydantic models for every table of a problem TOML.

A problem file has the top-level keys ``name``, ``type``, ``description`` and the tables
``[system]`` (validated by the model registered for ``type`` in :data:`PROBLEM_TYPES`),
``[data]``, ``[model]``, ``[train]`` and ``[discover]``. Only ``name``, ``type`` and
``[system]`` are required. Unknown keys are errors everywhere, so typos are caught.

Cross-table rules checked here:

* without ``[data].file`` the ground truth (``system.target``/``lagrangian``/``dynamics``)
  is required, and ``[data].ranges`` must give a box for every input the data maker
  samples (``data.ranges.q_dot`` for a Lagrangian); a range for a name that is not an
  input is an error;
* ``model.width`` must start/end with the number of inputs/outputs when the type fixes
  them; when ``width`` is absent it defaults to ``[n_in, 5, n_out]`` (kept ``None`` for
  types with no fixed output count: conservation, metric);
* ``train.refine`` must be increasing and start above ``model.grid``.

Sizes are bounded so that a typo fails at load time instead of allocating terabytes or
training for days: ``n_train``/``n_test`` at most :data:`MAX_SAMPLES`, ``train.steps`` at
most :data:`MAX_STEPS`, at most :data:`MAX_COEFFICIENTS` spline coefficients. Names that
refer to registries (``model.basis``, ``discover.library``) are looked up at load time,
after the plugins have registered theirs.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializeAsAny,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails

from .errors import field_error, format_validation_error, raise_field_errors
from .systems import SystemBase
from .types import PROBLEM_TYPES, register_problem_type

__all__ = [
    "PROBLEM_TYPES",
    "DataSection",
    "DiscoverSection",
    "ModelSection",
    "ProblemSpec",
    "Range",
    "TrainSection",
    "allowed_keys",
    "register_problem_type",
]

#: most samples ``[data].n_train`` / ``n_test`` may ask for (memory and training time).
MAX_SAMPLES = 1_000_000
#: most coefficients a ``[model]`` may have (sum over layers of n_in * n_out * (grid + k)).
MAX_COEFFICIENTS = 10_000_000
#: most optimisation steps ``[train].steps`` may ask for.
MAX_STEPS = 1_000_000
#: largest seed (seeds are unsigned 63-bit integers).
MAX_SEED = 2**63 - 1


def _at_most(limit: int, what: str) -> AfterValidator:
    """A validator refusing ints above ``limit`` with a message that says why."""

    def check(value: int) -> int:
        if value > limit:
            raise ValueError(f"at most {limit:_} {what}, got {value:_}".replace("_", ","))
        return value

    return AfterValidator(check)


def _check_range(value: tuple[float, float]) -> tuple[float, float]:
    low, high = value
    if not (math.isfinite(low) and math.isfinite(high) and math.isfinite(high - low)):
        raise ValueError(f"range ends must be finite numbers, got [{low}, {high}]")
    if not low < high:
        raise ValueError(f"needs low < high, got [{low:g}, {high:g}]")
    return value


#: a sampling box ``[low, high]`` with finite ends and low < high.
Range = Annotated[tuple[float, float], AfterValidator(_check_range)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataSection(_Section):
    """``[data]``: how many samples, from which box or file, with how much noise."""

    n_train: Annotated[int, Field(ge=2), _at_most(MAX_SAMPLES, "training samples")] = 1000
    n_test: Annotated[int, Field(ge=1), _at_most(MAX_SAMPLES, "test samples")] = 1000
    seed: int = Field(0, ge=0, le=MAX_SEED)
    noise: float = Field(0.0, ge=0, le=100)
    ranges: dict[str, Range] = Field(default_factory=dict)
    file: Path | None = None
    columns: dict[str, str] = Field(default_factory=dict)
    derivatives: Literal["spline"] = Field(
        "spline",
        description="how a trajectory file ([data].file of a lagrangian/hamiltonian problem) "
        "is differentiated: noise-aware quintic smoothing splines (docs/physics.md)",
    )


class ModelSection(_Section):
    """``[model]``: the network; ``width`` entries are ints or ``[n_sum, n_mult]`` pairs."""

    width: list[int | list[int]] | None = None
    grid: int = Field(5, ge=1, le=10_000)
    k: int = Field(3, ge=1, le=20)
    basis: str = "bspline"
    kind: Literal["kan", "s2kan"] = "kan"
    mult_arity: int = Field(2, ge=2, le=16)
    grid_range: Range | None = None
    grid_eps: float = Field(1.0, ge=0, le=1)
    base_fun: str = "silu"
    seed: int = Field(0, ge=0, le=MAX_SEED)

    @field_validator("width", mode="before")
    @classmethod
    def _check_width(cls, value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, list) or len(value) < 2:
            raise ValueError("expected a list of at least 2 layer sizes, e.g. [2, 5, 1]")
        if len(value) > 64:
            raise ValueError(f"at most 64 layers, got {len(value)}")
        for i, entry in enumerate(value):
            ok_int = isinstance(entry, int) and not isinstance(entry, bool) and entry >= 1
            ok_pair = (
                isinstance(entry, list)
                and len(entry) == 2
                and all(isinstance(e, int) and not isinstance(e, bool) for e in entry)
                and entry[0] >= 0
                and entry[1] >= 0
                and sum(entry) >= 1
            )
            if (ok_int or ok_pair) and (entry if ok_int else sum(entry)) > 100_000:
                raise ValueError(f"layer {i}: at most 100,000 nodes, got {entry!r}")
            if not (ok_int or ok_pair):
                raise ValueError(
                    f"layer {i}: expected a positive int or [n_sum, n_mult], got {entry!r}"
                )
        return value

    @field_validator("basis")
    @classmethod
    def _check_basis(cls, value: str) -> str:
        from physkan.kan.basis import UnknownBasisError, get_basis_family

        try:
            get_basis_family(value)  # plugins' families are loaded on a miss
        except UnknownBasisError as err:
            raise ValueError(str(err).removeprefix("basis: ")) from None
        return value

    @field_validator("base_fun")
    @classmethod
    def _check_base_fun(cls, value: str) -> str:
        from physkan.kan.layer import BASE_FUNCTIONS

        if value not in BASE_FUNCTIONS:
            raise ValueError(
                f"unknown base function {value!r}; known: {', '.join(sorted(BASE_FUNCTIONS))}"
            )
        return value

    def layer_sizes(self) -> list[int] | None:
        """Total nodes per layer (sum + mult nodes), or None when width is unset."""
        if self.width is None:
            return None
        return [w if isinstance(w, int) else sum(w) for w in self.width]


class TrainSection(_Section):
    """``[train]``: optimiser, regularisation (lamb * (lamb_l1 * L1 + lamb_entropy * H))."""

    steps: Annotated[int, Field(ge=0), _at_most(MAX_STEPS, "steps")] = 200
    optimizer: Literal["lbfgs", "adam"] = "lbfgs"
    lr: float | None = Field(None, gt=0)
    lamb: float = Field(0.0, ge=0)
    lamb_l1: float = Field(1.0, ge=0)
    lamb_entropy: float = Field(1.0, ge=0)
    update_grid: bool = True
    grid_update_every: int = Field(10, ge=1)
    stop_grid_update_step: int = Field(50, ge=0)
    batch: int | None = Field(None, ge=1)
    precision: Literal[32, 64] = 64
    refine: list[Annotated[int, Field(ge=1, le=10_000)]] = Field(default_factory=list, max_length=20)

    @field_validator("optimizer", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("refine")
    @classmethod
    def _check_refine(cls, value: list[int]) -> list[int]:
        if any(b <= a for a, b in zip(value, value[1:], strict=False)):
            raise ValueError(f"grid sizes must increase, got {value}")
        return value

    @property
    def effective_lr(self) -> float:
        """``lr``, or the optimizer's default (1.0 for LBFGS, 1e-2 for Adam)."""
        if self.lr is not None:
            return self.lr
        return 1.0 if self.optimizer == "lbfgs" else 1e-2


class DiscoverSection(_Section):
    """``[discover]``: pruning, symbolic snapping and verification settings."""

    library: list[str] | None = Field(None, min_length=1)
    r2_threshold: float = Field(0.99, gt=0, le=1)
    weight_simple: float = Field(0.8, ge=0, le=1)
    prune: bool = True
    node_th: float = Field(1e-2, ge=0)
    edge_th: float = Field(3e-2, ge=0)
    snap: bool = True
    verify: bool = True
    augment: dict[str, str] = Field(
        default_factory=dict,
        description="auxiliary inputs (name -> expression of the inputs), as KAN 2.0's augment_input",
    )
    time_budget: float = Field(
        60.0, gt=0, le=7 * 24 * 3600,
        description="wall-clock seconds the whole discovery may take (it answers with the best formula so far)",
    )  # fmt: skip


    @field_validator("library")
    @classmethod
    def _check_library(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        from physkan.symbolic.library import get_symbolic

        from .expressions import check_bounded

        for i, name in enumerate(value):
            try:
                check_bounded(name)  # a composite such as 'x**9**9**9' must not hang
                get_symbolic(name)  # aliases, composites and plugins' functions included
            except (ValueError, TypeError, ArithmeticError) as err:
                raise ValueError(f"[{i}]: {err}") from None
        return value

    @field_validator("augment")
    @classmethod
    def _check_augment_names(cls, value: dict[str, str]) -> dict[str, str]:
        from .expressions import check_name

        for name in value:
            check_name(name)
        return value


class ProblemSpec(_Section):
    """A validated problem file. Build one with :func:`physkan.problems.load_problem`."""

    name: str
    type: str
    description: str = ""
    system: SerializeAsAny[SystemBase]
    data: DataSection = Field(default_factory=DataSection)
    model: ModelSection = Field(default_factory=ModelSection)
    train: TrainSection = Field(default_factory=TrainSection)
    discover: DiscoverSection = Field(default_factory=DiscoverSection)

    _source: str | None = PrivateAttr(None)

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,99}", value):
            raise ValueError(
                f"{value!r} is not a usable problem name (letters, digits and '_.+-', no "
                "spaces, at most 100 characters), e.g. 'my-pendulum'"
            )
        return value

    @field_validator("type")
    @classmethod
    def _check_type(cls, value: str) -> str:
        if value not in PROBLEM_TYPES:
            close = difflib.get_close_matches(value, list(PROBLEM_TYPES), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ValueError(
                f"unknown problem type {value!r}; {hint}known types: "
                f"{', '.join(sorted(PROBLEM_TYPES))} (plugins can add more)"
            )
        return value

    @field_validator("system", mode="before")
    @classmethod
    def _dispatch_system(cls, value: Any, info: ValidationInfo) -> Any:
        problem_type = info.data.get("type")
        if problem_type is None:  # the type itself is invalid and reported
            return SystemBase()
        model = PROBLEM_TYPES.get(problem_type)
        if isinstance(value, model):
            return value
        if isinstance(value, BaseModel):
            value = value.model_dump()
        return model.model_validate(value)

    @model_validator(mode="after")
    def _cross_checks(self) -> ProblemSpec:
        if type(self.system) is SystemBase:
            return self
        errors = [*self._check_truth_and_ranges(), *self.system.check_data(self.data)]
        errors += self._check_width()
        errors += self._check_size()
        errors += self._check_augment()
        refine = self.train.refine
        if refine and refine[0] <= self.model.grid:
            errors.append(
                field_error(
                    ("train", "refine"),
                    f"grid sizes must start above model.grid = {self.model.grid}, got {refine}",
                )
            )
        raise_field_errors("ProblemSpec", errors)
        return self

    def _check_truth_and_ranges(self) -> list[InitErrorDetails]:
        system, data = self.system, self.data
        errors = []
        inputs = system.input_names()
        if data.file is not None and not system.reads_data_files:
            errors.append(
                field_error(
                    ("data", "file"),
                    f"a {self.type} problem samples its data from the ground truth; "
                    "reading it from a file is not supported",
                )
            )
        elif data.file is None and not system.has_truth():
            errors.append(
                field_error(
                    ("system", str(system.truth_field)),
                    "required unless [data].file gives the data"
                    if system.reads_data_files
                    else "required (the data are sampled from it)",
                )
            )
        if data.file is None:
            for name in system.required_ranges():
                if name not in data.ranges:
                    errors.append(
                        field_error(
                            ("data", "ranges", name),
                            f"missing sampling range for {name!r}; add e.g. "
                            f"{name} = [-1, 1] to [data].ranges",
                        )
                    )
        for name in data.ranges:
            if name not in inputs:
                errors.append(
                    field_error(
                        ("data", "ranges", name),
                        f"{name!r} is not an input of this problem (inputs: {', '.join(inputs)})",
                    )
                )
        columns_ok = set(inputs) | set(system.output_names() or [])
        for key in data.columns:
            if data.file is None:
                errors.append(field_error(("data", "columns"), "only used together with data.file"))
                break
            if key not in columns_ok:
                errors.append(
                    field_error(
                        ("data", "columns", key),
                        f"{key!r} is not an input or output (known: {', '.join(sorted(columns_ok))})",
                    )
                )
        return errors

    def _check_width(self) -> list[InitErrorDetails]:
        n_in, n_out = self.system.network_shape()
        sizes = self.model.layer_sizes()
        if sizes is None:
            if n_in and n_out:
                self.model.width = [n_in, 5, n_out]
            return []
        errors = []
        if n_in and sizes[0] != n_in:
            names = ", ".join(self.system.input_names())
            errors.append(
                field_error(
                    ("model", "width"),
                    f"first layer has {sizes[0]} nodes but the problem needs {n_in} "
                    f"input(s) ({names})",
                )
            )
        if n_out and sizes[-1] != n_out:
            errors.append(
                field_error(
                    ("model", "width"),
                    f"last layer has {sizes[-1]} nodes but the problem needs {n_out} "
                    f"output(s) ({', '.join(self.system.output_names() or ['scalar'])})",
                )
            )
        return errors

    def _check_augment(self) -> list[InitErrorDetails]:
        """Each ``[discover].augment`` formula must be a formula of the inputs."""
        from physkan.symbolic.parse import parse_expression

        from .expressions import check_bounded

        errors = []
        inputs = self.inputs()
        for name, text in self.discover.augment.items():
            if name in inputs:
                errors.append(
                    field_error(("discover", "augment", name), f"{name!r} is already an input")
                )
                continue
            try:
                check_bounded(text)
                parse_expression(text, inputs)
            except (ValueError, TypeError, ArithmeticError) as err:
                errors.append(field_error(("discover", "augment", name), str(err)))
        return errors

    def _check_size(self) -> list[InitErrorDetails]:
        """Refuse networks whose coefficient tensors would not fit in memory."""
        model = self.model
        if model.width is None:
            return []
        grid = max([model.grid, *self.train.refine])
        sizes = model.layer_sizes() or []
        subnodes = [w if isinstance(w, int) else w[0] + w[1] * model.mult_arity for w in model.width]
        n_coef = sum(a * b for a, b in zip(sizes, subnodes[1:], strict=False)) * (grid + model.k + 1)
        if n_coef <= MAX_COEFFICIENTS:
            return []
        return [
            field_error(
                ("model", "width"),
                f"the network would have about {n_coef:.2g} spline coefficients (width x grid); "
                f"at most {MAX_COEFFICIENTS:.0e} are allowed",
            )
        ]

    @property
    def source(self) -> str | None:
        """Where the spec came from (file path, ``builtin:<name>`` or a plugin), if known."""
        return self._source

    def inputs(self) -> list[str]:
        """Names of the model inputs, in column order."""
        return self.system.input_names()

    def outputs(self) -> list[str] | None:
        """Names of the model outputs (None when the problem type fixes none)."""
        return self.system.output_names()

    def to_dict(self) -> dict[str, Any]:
        """A JSON/TOML-ready dict that validates back to an equal spec."""
        return self.model_dump(mode="json", exclude_none=True)

    def updated(self, overrides: Mapping[str, Any]) -> ProblemSpec:
        """A re-validated copy with dotted-key overrides, e.g. ``{"train.steps": 20}``."""
        data = self.to_dict()
        for dotted, value in overrides.items():
            keys: Sequence[str] = dotted.split(".")
            node = data
            for key in keys[:-1]:
                node = node.setdefault(key, {})
            node[keys[-1]] = value
        try:
            spec = type(self).model_validate(data)
        except ValidationError as err:
            raise format_validation_error(err, self._source) from None
        spec._source = self._source
        return spec


_SECTIONS: dict[str, type[BaseModel]] = {
    "data": DataSection,
    "model": ModelSection,
    "train": TrainSection,
    "discover": DiscoverSection,
}


def allowed_keys(problem_type: str | None, loc: tuple[str | int, ...]) -> list[str] | None:
    """The keys allowed at ``loc`` of a problem file of ``problem_type`` (None if unknown)."""
    if loc == ():
        return list(ProblemSpec.model_fields)
    if len(loc) == 1 and loc[0] == "system":
        model = PROBLEM_TYPES.find(problem_type or "")
        return list(model.model_fields) if model else None
    if len(loc) == 1 and loc[0] in _SECTIONS:
        return list(_SECTIONS[str(loc[0])].model_fields)
    return None
