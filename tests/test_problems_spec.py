"""Problem-file schema and loader: built-ins, the DESIGN.md contract, and error messages."""

from __future__ import annotations

import filecmp
from pathlib import Path

import pytest
import sympy

from physkan.problems import (
    BUILTIN_DIR,
    EXTRA_SOURCES,
    PROBLEM_TYPES,
    ConservationSystem,
    LagrangianSystem,
    ProblemError,
    ProblemSpec,
    SystemBase,
    builtin_names,
    list_problems,
    load_problem,
    problem_from_dict,
    register_problem,
    register_problem_type,
)

REPO = Path(__file__).resolve().parents[1]

# Verbatim from /work/shared/DESIGN.md ("Problem spec"): the schema contract.
DESIGN_PENDULUM = """\
name = "pendulum"
type = "lagrangian"            # regression | lagrangian | conservation | metric | … (plugins add more)
description = "Simple pendulum, m=l=g=1"

[system]
coordinates = ["q"]            # velocities are named q_dot
lagrangian = "q_dot**2/2 + cos(q)"   # ground truth, used to make data and to check recovery
# regression:   variables = ["x", "y"], target = "exp(sin(pi*x) + y**2)"
# conservation: state = ["x","y","px","py"], dynamics = ["px","py","-x","-y"], n_quantities = 3
# metric:       coordinates = ["t","r","theta","phi"], metric = "schwarzschild", mass = 0.5

[data]
n_train = 1000
n_test = 1000
seed = 0
noise = 0.0                    # relative Gaussian noise on targets
ranges = {q = [-3.14, 3.14], q_dot = [-2, 2]}   # sampling box, one entry per input
# file = "my_data.h5"          # or the user's own data (HDF5 or CSV) instead of a ground truth

[model]
width = [2, 5, 1]
grid = 5
k = 3
basis = "bspline"

[train]
steps = 200
optimizer = "lbfgs"

[discover]
library = ["x", "x^2", "sin", "cos", "exp"]   # symbolic library names
"""

EXPECTED_TYPES = {
    "tutorial": "regression",
    "pendulum": "lagrangian",
    "relativistic-particle": "lagrangian",
    "oscillator-2d": "conservation",
    "schwarzschild": "metric",
    "neo-hookean": "regression",
}


def write(tmp_path: Path, text: str, name: str = "problem.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def pendulum_dict(**system: object) -> dict:
    return {
        "name": "p",
        "type": "lagrangian",
        "system": {"coordinates": ["q"], "lagrangian": "q_dot**2/2 + cos(q)", **system},
        "data": {"ranges": {"q": [-1, 1], "q_dot": [-1, 1]}},
    }


def error_of(data: dict) -> str:
    with pytest.raises(ProblemError) as info:
        problem_from_dict(data, source="p.toml")
    message = str(info.value)
    assert "\n" not in message and "pydantic" not in message.lower()
    assert message.startswith("p.toml: ")
    return message


# ---------------------------------------------------------------- built-ins


@pytest.mark.parametrize("name", builtin_names())
def test_builtin_loads(name: str) -> None:
    spec = load_problem(name)
    assert spec.name == name
    assert spec.source == f"builtin:{name}"
    assert spec.description
    assert problem_from_dict(spec.to_dict()).to_dict() == spec.to_dict()  # round trip


def test_builtin_set_and_types() -> None:
    names = builtin_names()
    for name, kind in EXPECTED_TYPES.items():
        assert load_problem(name).type == kind
    feynman = [n for n in names if n.startswith("feynman-")]
    assert len(feynman) >= 3
    assert {s.name for s in list_problems()} >= set(names)


def test_repo_problems_dir_mirrors_builtins() -> None:
    shipped = sorted(p.name for p in BUILTIN_DIR.glob("*.toml"))
    mirrored = sorted(p.name for p in (REPO / "problems").glob("*.toml"))
    assert shipped == mirrored
    _, mismatch, errors = filecmp.cmpfiles(BUILTIN_DIR, REPO / "problems", shipped, shallow=False)
    assert mismatch == [] and errors == []


def test_design_example_loads_unchanged(tmp_path: Path) -> None:
    spec = load_problem(write(tmp_path, DESIGN_PENDULUM, "pendulum.toml"))
    assert isinstance(spec.system, LagrangianSystem)
    assert spec.inputs() == ["q", "q_dot"]
    q, qd = sympy.symbols("q q_dot")
    assert sympy.simplify(spec.system.lagrangian_expr() - (qd**2 / 2 + sympy.cos(q))) == 0
    assert spec.data.ranges == {"q": (-3.14, 3.14), "q_dot": (-2.0, 2.0)}
    assert spec.model.width == [2, 5, 1] and spec.train.optimizer == "lbfgs"
    assert spec.discover.library == ["x", "x^2", "sin", "cos", "exp"]
    assert load_problem("pendulum").to_dict() == spec.to_dict()


def test_builtin_details() -> None:
    rel = load_problem("relativistic-particle").system
    assert rel.lagrangian_expr() == -sympy.sqrt(1 - sympy.Symbol("q_dot") ** 2) - sympy.Symbol("q")
    osc = load_problem("oscillator-2d")
    assert isinstance(osc.system, ConservationSystem)
    assert osc.system.n_quantities == 3 and len(osc.system.quantity_exprs()) == 3
    bh = load_problem("schwarzschild")
    assert bh.system.mass == 0.5 and bh.data.ranges["r"] == (1.2, 3.0)
    assert load_problem("neo-hookean").system.output_names() == ["P11", "P12"]


# ---------------------------------------------------------------- errors


def test_typo_key_names_field_and_suggests(tmp_path: Path) -> None:
    text = DESIGN_PENDULUM.replace("width = [2, 5, 1]", "widht = [2, 5, 1]")
    with pytest.raises(ProblemError, match=r"model\.widht: unknown key; did you mean 'width'"):
        load_problem(write(tmp_path, text))


def test_lagrangian_without_velocity() -> None:
    msg = error_of(pendulum_dict(lagrangian="cos(q)"))
    assert "system.lagrangian: does not depend on any velocity (q_dot)" in msg


def test_unknown_symbol_lists_allowed_names() -> None:
    msg = error_of(pendulum_dict(lagrangian="q_dot**2/2 + cos(theta)"))
    assert "system.lagrangian: unknown symbol 'theta'" in msg and "allowed names: q, q_dot" in msg
    assert "unknown function 'foo'" in error_of(pendulum_dict(lagrangian="q_dot**2 + foo(q)"))
    assert "unexpected '__'" in error_of(pendulum_dict(lagrangian="q_dot.__class__"))


def test_bad_and_missing_ranges() -> None:
    data = pendulum_dict()
    data["data"]["ranges"] = {"q": [1, 1], "q_dot": [-1, 1]}
    assert "data.ranges.q: needs low < high, got [1, 1]" in error_of(data)
    data["data"]["ranges"] = {"q": [-1, 1]}
    assert "data.ranges.q_dot: missing sampling range for 'q_dot'" in error_of(data)
    data["data"]["ranges"] = {"q": [-1, 1], "q_dot": [-1, 1], "p": [0, 1]}
    assert "data.ranges.p: 'p' is not an input" in error_of(data)


def test_malformed_toml_reports_line(tmp_path: Path) -> None:
    path = write(tmp_path, 'name = "x"\ntype = "regression"\n[system\nvariables = ["x"]\n')
    with pytest.raises(ProblemError, match=r"problem\.toml: malformed TOML: .*line 3"):
        load_problem(path)


def test_unknown_problem_suggests() -> None:
    with pytest.raises(ProblemError) as info:
        load_problem("pendulm")
    msg = str(info.value)
    assert "unknown problem 'pendulm'" in msg and "did you mean 'pendulum'" in msg
    assert "built-in problems:" in msg and "tutorial" in msg
    with pytest.raises(ProblemError, match="no such problem file"):
        load_problem("nowhere/missing.toml")


def test_unknown_type() -> None:
    data = pendulum_dict()
    data["type"] = "lagrangain"
    msg = error_of(data)
    assert "type: unknown problem type 'lagrangain'; did you mean 'lagrangian'?" in msg
    assert "system." not in msg  # no follow-on noise from the [system] table


def test_other_field_errors() -> None:
    data = pendulum_dict()
    data["model"] = {"width": [3, 5, 1]}
    assert "model.width: first layer has 3 nodes but the problem needs 2" in error_of(data)
    data["model"] = {"width": [2, "a", 1]}
    assert "model.width: layer 1" in error_of(data)
    data["model"] = {}
    data["train"] = {"optimizer": "sgd", "refine": [3, 10]}
    msg = error_of(data)
    assert "train.optimizer:" in msg and "'sgd'" in msg
    data["train"] = {"refine": [3, 10]}
    assert "train.refine: grid sizes must start above model.grid = 5" in error_of(data)
    del data["train"]
    data["system"].pop("lagrangian")
    assert "system.lagrangian: required unless [data].file gives the data" in error_of(data)
    assert "system: required but missing" in error_of({"name": "p", "type": "lagrangian"})
    assert "name: 'a b' is not a usable problem name" in error_of(
        {**pendulum_dict(), "name": "a b"}
    )


def test_conservation_and_metric_checks() -> None:
    osc = {
        "name": "o",
        "type": "conservation",
        "system": {"state": ["x", "p"], "dynamics": ["p", "-x"], "quantities": ["x*p"]},
        "data": {"ranges": {"x": [-1, 1], "p": [-1, 1]}},
    }
    assert "system.quantities: [0]: 'x*p' is not conserved" in error_of(osc)
    osc["system"]["dynamics"] = ["p"]
    assert "system.dynamics: 1 equations for 2 state variables" in error_of(osc)
    bh = {
        "name": "b",
        "type": "metric",
        "system": {"mass": 1.0},
        "data": {"ranges": {"r": [1.5, 3]}},
    }
    assert "data.ranges.r: low end 1.5 is at or inside the horizon" in error_of(bh)


# ---------------------------------------------------------------- behaviour


def test_defaults_and_helpers() -> None:
    spec = problem_from_dict(
        {
            "name": "t",
            "type": "regression",
            "system": {"variables": ["x"], "target": "x**2"},
            "data": {"ranges": {"x": [0, 1]}},
        }
    )
    assert spec.model.width == [1, 5, 1]  # filled from the problem's shape
    assert spec.train.effective_lr == 1.0 and spec.train.precision == 64
    adam = spec.updated({"train.optimizer": "adam", "train.steps": 7})
    assert adam.train.effective_lr == 1e-2 and adam.train.steps == 7
    assert spec.outputs() == ["y"]
    consts = problem_from_dict(
        {
            "name": "c",
            "type": "regression",
            "system": {"variables": ["x"], "constants": {"a": "5/12"}, "target": "a*x"},
            "data": {"ranges": {"x": [0, 1]}},
        }
    )
    assert consts.system.target_exprs()[0] == sympy.Rational(5, 12) * sympy.Symbol("x")


def test_relative_data_file_resolves_next_to_toml(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    text = (
        'name = "f"\ntype = "regression"\n[system]\nvariables = ["x"]\n[data]\nfile = "table.csv"\n'
    )
    spec = load_problem(write(tmp_path / "sub", text))
    assert spec.data.file == (tmp_path / "sub" / "table.csv").resolve()
    assert spec.system.has_truth() is False and spec.outputs() == ["y"]


def test_plugin_registration(tmp_path: Path) -> None:
    class KeplerSystem(SystemBase):
        eccentricity: float

        def input_names(self) -> list[str]:
            return ["r"]

    register_problem_type("kepler-test", KeplerSystem)
    try:
        data = {
            "name": "k",
            "type": "kepler-test",
            "system": {"eccentricity": 0.1},
            "data": {"ranges": {"r": [1, 2]}},
        }
        spec = ProblemSpec.model_validate(data)
        assert isinstance(spec.system, KeplerSystem)
        assert spec.to_dict()["system"] == {"eccentricity": 0.1}
        register_problem("test-kepler-orbit", spec)
        register_problem("test-kepler-file", write(tmp_path, DESIGN_PENDULUM))
        assert load_problem("test-kepler-orbit").system.eccentricity == 0.1
        assert load_problem("test-kepler-file").name == "pendulum"
        assert {"test-kepler-orbit", "test-kepler-file"} <= {s.name for s in list_problems()}
        assert "system.eccentricity: required but missing" in error_of({**data, "system": {}})
        with pytest.raises(ValueError, match="taken by a built-in"):
            register_problem("pendulum", spec)
        with pytest.raises(TypeError):
            register_problem_type("bad", dict)  # type: ignore[arg-type]
    finally:
        PROBLEM_TYPES.pop("kepler-test", None)
        EXTRA_SOURCES.pop("test-kepler-orbit", None)
        EXTRA_SOURCES.pop("test-kepler-file", None)


def test_expression_parser_is_closed() -> None:
    from physkan.problems import ExpressionError, parse_expression

    x = sympy.Symbol("x")
    assert parse_expression("x^2 + ln(x) + arcsin(x)", ["x"]) == x**2 + sympy.log(x) + sympy.asin(x)
    for text in ("x.subs(x, 1)", "open('f')", "x; 1", "__import__('os')", "x ="):
        with pytest.raises(ExpressionError):
            parse_expression(text, ["x"])
