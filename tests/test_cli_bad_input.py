"""Bad input at the command line: one ``Error:`` line, exit code 2, no traceback, quickly.

``physkan discover`` on malformed problem files (one test per reported item, then a
Hypothesis test mutating the built-in problem files) and ``physkan plot`` on malformed
model files.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from physkan.cli import cli
from physkan.io import save_model
from physkan.kan import MultKAN
from physkan.problems import BUILTIN_DIR, ProblemError, load_problem, make_dataset
from physkan.problems.loader import read_toml

BUILTINS = {p.stem: read_toml(p) for p in sorted(BUILTIN_DIR.glob("*.toml"))}
#: a discover run on bad input must fail within this many seconds.
TIME_LIMIT = 10.0


# --------------------------------------------------------------------------- helpers


def toml_value(value: Any) -> str:
    """``value`` as a TOML value (inline tables for dicts)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are valid TOML basic-string escapes
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value))


def to_toml(data: dict[str, Any]) -> str:
    """A TOML document: top-level scalars first, then one table per dict."""
    lines = [f"{json.dumps(k)} = {toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for key, table in data.items():
        if isinstance(table, dict):
            lines.append(f"[{json.dumps(key)}]")
            lines += [f"{json.dumps(k)} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def run_discover(path: Path) -> tuple[int, str, float]:
    """``physkan discover --problem PATH --no-register`` in-process: (exit code, output, s)."""
    start = time.perf_counter()
    result = CliRunner().invoke(cli, ["discover", "--problem", str(path), "--no-register"])
    seconds = time.perf_counter() - start
    output = result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        import traceback

        output += "".join(traceback.format_exception(result.exception))
    return result.exit_code, output, seconds


def assert_one_error(code: int, output: str, seconds: float) -> str:
    """Exactly one ``Error:`` line, exit 2, no traceback, within the time limit."""
    errors = [line for line in output.splitlines() if line.startswith("Error:")]
    assert "Traceback" not in output, output
    assert code == 2, output
    assert len(errors) == 1, output
    assert seconds < TIME_LIMIT, f"took {seconds:.1f} s: {output}"
    return errors[0]


def write(tmp_path: Path, text: str, name: str = "p.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def tutorial(**tables: dict[str, Any]) -> dict[str, Any]:
    data = json.loads(json.dumps(BUILTINS["tutorial"]))
    for key, table in tables.items():
        data.setdefault(key, {}).update(table)
    return data


# --------------------------------------------------------------------------- one per item


@pytest.mark.parametrize(
    ("tables", "expected"),
    [
        ({"data": {"n_train": 1_000_000_000_000}}, "data.n_train: at most 1,000,000"),
        ({"system": {"target": "1/(x - x)"}}, "system.target: '1/(x - x)' is not finite"),
        ({"system": {"target": "9**9**9**9"}}, "system.target: '9**9**9**9'"),
        ({"system": {"target": "x + 10**10**8"}}, "system.target: 'x + 10**10**8'"),
        ({"discover": {"library": ["x", "nosuchfn"]}}, "discover.library: [1]: unknown symbolic"),
        ({"model": {"basis": "nosuchbasis"}}, "model.basis: unknown basis family 'nosuchbasis'"),
    ],
)
def test_discover_reported_items(tmp_path: Path, tables: dict[str, Any], expected: str) -> None:
    path = write(tmp_path, to_toml(tutorial(**tables)))
    line = assert_one_error(*run_discover(path))
    assert line.startswith(f"Error: {path}: ") and expected in line


def test_discover_csv_with_one_row(tmp_path: Path) -> None:
    write(tmp_path, "x,y,f\n0.5,0.5,1.0\n", "one.csv")
    data = tutorial(data={"file": "one.csv"})
    del data["system"]["target"]
    line = assert_one_error(*run_discover(write(tmp_path, to_toml(data))))
    assert "one.csv: only 1 data row(s); need at least 3" in line


def test_discover_hdf5_string_column(tmp_path: Path) -> None:
    with h5py.File(tmp_path / "d.h5", "w") as fh:
        fh["x"] = np.linspace(-1, 1, 20)
        fh["y"] = np.linspace(-1, 1, 20)
        fh["f"] = np.array([b"oops"] * 20)
    data = tutorial(data={"file": "d.h5"})
    del data["system"]["target"]
    line = assert_one_error(*run_discover(write(tmp_path, to_toml(data))))
    assert "d.h5: column 'f' is not numeric" in line


def test_discover_steps_override_too_large() -> None:
    code, output, seconds = run_discover_args(["--problem", "tutorial", "--steps", str(10**9)])
    assert "train.steps: at most 1,000,000 steps" in assert_one_error(code, output, seconds)


def run_discover_args(args: list[str]) -> tuple[int, str, float]:
    start = time.perf_counter()
    result = CliRunner().invoke(cli, ["discover", *args, "--no-register"])
    return result.exit_code, result.output, time.perf_counter() - start


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (to_toml(tutorial(system={"target": "x + 10**10**8"})), "beyond what a formula can use"),
        ('name = "t"\ntype = "regression"\n[system\x00\xff', "malformed TOML"),
    ],
    ids=["sympy-hang", "garbage"],
)
def test_discover_subprocess(tmp_path: Path, text: str, expected: str) -> None:
    """The real console script: one ``Error:`` line on stderr, nothing on stdout."""
    path = tmp_path / "p.toml"
    path.write_bytes(text.encode("utf-8", errors="surrogateescape"))
    exe = Path(sys.executable).with_name("physkan")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "physkan.cli"]
    start = time.perf_counter()
    proc = subprocess.run([*command, "discover", "--problem", str(path), "--no-register"],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "NO_COLOR": "1"})  # fmt: skip
    seconds = time.perf_counter() - start
    # a fresh interpreter spends most of this importing torch & co. (~8 s on 2 busy cores)
    line = assert_one_error(proc.returncode, proc.stdout + proc.stderr, 0.0)
    assert seconds < 45, f"took {seconds:.1f} s"
    assert expected in line and proc.stdout == ""


# --------------------------------------------------------------------------- fuzzing

KEY = st.sampled_from(sorted(BUILTINS))
WRONG_VALUES = st.one_of(
    st.text(max_size=8),
    st.booleans(),
    st.lists(st.integers(-3, 3), max_size=3),
    st.dictionaries(st.sampled_from(["a", "x", "bad key"]), st.integers(), max_size=2),
    st.sampled_from([-1, 0, 10**18, -(10**18), 1e308, -1e308, math.inf, -math.inf, math.nan]),
)
BAD_FORMULAS = st.one_of(
    st.sampled_from([
        "9**9**9**9", "x + 10**10**8", "1/(x - x)", "sqrt(-1)", "exp(1e5)", "log(0)", "(x",
        "x +", "", "   ", "__import__('os')", "x.real", "lambda: 1", "nosuch(x)", "undefined_var",
        "x; y", "1e999999", "x**-(10**8)", "0**-1", "2^2^2^2^2^2", "[x]", "x" * 5000,
    ]),
    st.builds(lambda a, b, c: f"{a}**{b}**{c}", st.integers(10, 99), st.integers(10, 99),
              st.integers(10, 99)),
    st.text(alphabet="xyz0123456789+-*/^() .,e", min_size=1, max_size=12).filter(
        lambda t: not t.strip().isidentifier()
    ),
)  # fmt: skip
UNKNOWN_NAMES = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=3, max_size=10).map(
    lambda s: "zz" + s
)
SIZE_FIELDS = [("data", "n_train"), ("data", "n_test"), ("model", "grid"), ("model", "k"),
               ("train", "steps"), ("model", "mult_arity"), ("data", "seed"), ("model", "seed")]  # fmt: skip


def formula_paths(data: dict[str, Any]) -> list[tuple[str, ...]]:
    """Locations of the formula strings of a problem (``system.target``, ``dynamics[i]``...)."""
    system = data.get("system", {})
    paths: list[tuple[str, ...]] = []
    for key in ("target", "lagrangian"):
        if isinstance(system.get(key), str):
            paths.append(("system", key))
    for key in ("dynamics", "quantities"):
        for i, _ in enumerate(system.get(key) or []):
            paths.append(("system", key, str(i)))
    for name in data.get("discover", {}).get("augment", {}):
        paths.append(("discover", "augment", name))
    return paths


def set_path(data: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node: Any = data
    for key in path[:-1]:
        node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
    if isinstance(node, list):
        node[int(path[-1])] = value
    else:
        node[path[-1]] = value


def leaf_paths(data: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for key, value in data.items():
        if isinstance(value, dict) and len(prefix) < 2:
            out += leaf_paths(value, (*prefix, key))
        else:
            out.append((*prefix, key))
    return out


@st.composite
def malformed_problem(draw: st.DrawFn) -> str:
    """The text of a mutated built-in problem file (almost always invalid)."""
    data = json.loads(json.dumps(BUILTINS[draw(KEY)]))
    kind = draw(st.sampled_from(["wrong_type", "missing", "formula", "huge", "unknown_name",
                                 "unknown_key", "range", "data_file", "garbage",
                                 "truncate"]))  # fmt: skip
    if kind == "wrong_type":
        set_path(data, draw(st.sampled_from(leaf_paths(data))), draw(WRONG_VALUES))
    elif kind == "missing":
        path = draw(st.sampled_from([("name",), ("type",), ("system",)]
                                    + [("system", k) for k in data["system"]]))  # fmt: skip
        node = data if len(path) == 1 else data["system"]
        node.pop(path[-1], None)
    elif kind == "formula":
        paths = formula_paths(data) or [("system", "constants", "c")]
        set_path(data, draw(st.sampled_from(paths)), draw(BAD_FORMULAS))
    elif kind == "huge":
        value = draw(st.sampled_from([10**12, 2**63 - 1, -(2**63), -5, 0]))
        set_path(data, draw(st.sampled_from(SIZE_FIELDS)), value)
    elif kind == "unknown_name":
        where = draw(st.sampled_from(["library", "basis", "type", "base_fun"]))
        name = draw(UNKNOWN_NAMES)
        if where == "library":
            data.setdefault("discover", {})["library"] = ["x", name]
        elif where == "type":
            data["type"] = name
        else:
            data.setdefault("model", {})[where] = name
    elif kind == "unknown_key":
        table = draw(st.sampled_from(["", "system", "data", "model", "train", "discover"]))
        node = data if not table else data.setdefault(table, {})
        node[draw(UNKNOWN_NAMES)] = 1
    elif kind == "range":
        ranges = data.setdefault("data", {}).setdefault("ranges", {})
        name = draw(st.sampled_from(sorted(ranges) or ["x"]))
        ranges[name] = draw(st.sampled_from([[1, -1], [0, 0], [1], [], [math.nan, 1],
                                             [-1e308, 1e308], ["a", "b"], [1, 2, 3]]))  # fmt: skip
    elif kind == "data_file":
        data.setdefault("data", {})["file"] = draw(st.sampled_from(
            ["", ".", "/", "missing.csv", "p.toml", "junk.csv", "junk.h5", "empty.csv"]))
        if draw(st.booleans()):
            data["data"]["columns"] = {draw(st.sampled_from(["x", "zz", "y"])): "nosuch"}
    text = to_toml(data)
    if kind == "garbage":
        at = draw(st.integers(0, len(text)))
        junk = draw(st.binary(min_size=1, max_size=6)).decode("latin-1")
        text = text[:at] + junk + text[at:]
    elif kind == "truncate":
        text = text[: draw(st.integers(0, max(len(text) - 1, 0)))]
    return text


def is_usable(path: Path) -> bool:
    """True when the file loads and its data can be made (then discover would train)."""
    try:
        make_dataset(load_problem(path))
    except ProblemError:
        return False
    except Exception:  # any other failure: the CLI run below must still report it cleanly
        return False
    return True


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_discover_args(["--problem", "no-such-problem"])  # warm up imports and plugins
    folder = tmp_path_factory.mktemp("fuzz")
    (folder / "junk.csv").write_bytes(b"x,y\n1,\xff\x00\n\"2\n")
    (folder / "junk.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 64)
    (folder / "empty.csv").write_text("")
    return folder


@settings(max_examples=int(os.environ.get("PHYSKAN_FUZZ_EXAMPLES", "100")), deadline=None,
          derandomize=os.environ.get("PHYSKAN_FUZZ_RANDOM") != "1",
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much])  # fmt: skip
@given(text=malformed_problem())
def test_discover_malformed_problem_files(fuzz_dir: Path, text: str) -> None:
    path = fuzz_dir / "p.toml"
    path.write_bytes(text.encode("utf-8", errors="surrogateescape"))
    assume(not is_usable(path))
    assert_one_error(*run_discover(path))


# --------------------------------------------------------------------------- plot


def model_file(path: Path, config: Any = None, state: dict[str, Any] | None = None) -> Path:
    """A saved [2, 3, 1] model whose /config or /state entries are replaced."""
    save_model(MultKAN([2, 3, 1], seed=0), path)
    with h5py.File(path, "a") as fh:
        if config is not None:
            del fh["config"]
            fh["config"] = config if isinstance(config, str) else json.dumps(config)
        for name, value in (state or {}).items():
            del fh["state"][name]
            fh["state"][name] = value
    return path


def run_plot(path: Path, tmp_path: Path) -> str:
    result = CliRunner().invoke(cli, ["plot", str(path), "-o", str(tmp_path / "o.png")])
    return assert_one_error(result.exit_code, result.output, 0.0)


def test_plot_config_json_list(tmp_path: Path) -> None:
    line = run_plot(model_file(tmp_path / "m.h5", config=[1, 2, 3]), tmp_path)
    assert "m.h5: config: expected a JSON object with a 'kind', got a list" in line


def test_plot_config_not_json(tmp_path: Path) -> None:
    line = run_plot(model_file(tmp_path / "m.h5", config="{not json"), tmp_path)
    assert "config: not valid JSON" in line


def test_plot_config_rejected_by_model(tmp_path: Path) -> None:
    line = run_plot(model_file(tmp_path / "m.h5", config={"kind": "multkan", "width": "x"}), tmp_path)
    assert "config: cannot rebuild a 'multkan' model" in line


def test_plot_string_tensor(tmp_path: Path) -> None:
    with h5py.File(model_file(tmp_path / "probe.h5"), "r") as fh:
        name = sorted(fh["state"])[0]
    line = run_plot(model_file(tmp_path / "m.h5", state={name: "hello"}), tmp_path)
    assert f"state.{name.replace('|', '/')}: expected a numeric array" in line


def test_plot_state_mismatch_full_message(tmp_path: Path) -> None:
    save_model(MultKAN([2, 4, 1], seed=0), tmp_path / "big.h5")
    with h5py.File(tmp_path / "big.h5", "r") as fh:
        config = fh["config"][()]
    path = model_file(tmp_path / "m.h5", config=json.loads(config))  # [2, 3, 1] tensors
    line = run_plot(path, tmp_path)
    assert "state: does not fit the config: Error(s) in loading state_dict" in line
    assert line.count("size mismatch") >= 2  # every mismatch, not just the first line


def test_plot_nan_tensor(tmp_path: Path) -> None:
    with h5py.File(model_file(tmp_path / "probe.h5"), "r") as fh:
        name = next(n for n in sorted(fh["state"]) if "coef" in n)
        value = np.array(fh["state"][name])
    value.flat[0] = np.nan
    line = run_plot(model_file(tmp_path / "m.h5", state={name: value}), tmp_path)
    assert "has NaN or infinite values" in line


def test_discover_bad_out_dir_before_training(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    code, output, seconds = run_discover_args(
        ["--problem", "tutorial", "--out", str(tmp_path / "file" / "sub")]
    )
    assert "--out" in assert_one_error(code, output, seconds) and "cannot create" in output
