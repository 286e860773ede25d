"""A plugin's symbolic function works everywhere in fresh processes (issue 14).

The physkan-special example plugin contributes ``sinc`` (sympy, torch and numpy versions).
Nothing here imports the plugin system by hand: every step is a new interpreter that only
uses the public entry points, so the registries must be filled at their first lookup.

1. ``physkan discover`` on a user problem file whose target uses ``sinc`` (problem file
   parsing, data making in numpy/torch, discovery, verification) registers the result in a
   zoo and writes the model file.
2. Another process loads the saved model and the zoo entry and evaluates the found formula
   with the torch and the numpy evaluators: all agree with the true function.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("physkan_special")

PROBLEM = """\
name = "sinc-user"
type = "regression"
[system]
variables = ["x", "y"]
target = "sinc(2*x) + y"
[data]
n_train = 200
n_test = 100
ranges = {x = [-3, 3], y = [-1, 1]}
[model]
width = [2, 1]
[train]
steps = 20
[discover]
library = ["x", "x^2", "sinc"]
"""

CHECK = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import torch
    from physkan import load_model
    from physkan.symbolic import lambdify_numpy, lambdify_torch, parse_expression
    from physkan.zoo import load

    formula = parse_expression(sys.argv[1], ["x", "y"])
    X = np.random.default_rng(0).uniform([-3, -1], [3, 1], size=(64, 2))
    truth = np.sinc(2 * X[:, 0] / np.pi) + X[:, 1]
    via_numpy = lambdify_numpy(formula, ["x", "y"])(X)
    via_torch = lambdify_torch(formula, ["x", "y"])(torch.tensor(X)).numpy()
    saved = load_model(sys.argv[2]).double()
    zoo_model = load(sys.argv[3], zoo=sys.argv[4]).double()
    with torch.no_grad():
        via_model = saved(torch.tensor(X)).reshape(-1).numpy()
        via_zoo = zoo_model(torch.tensor(X)).reshape(-1).numpy()
    print(json.dumps({k: float(np.max(np.abs(v - truth))) for k, v in
                      {"numpy": via_numpy, "torch": via_torch, "model": via_model,
                       "zoo": via_zoo}.items()}))
    """
)


def _run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=300)


@pytest.mark.recovery
def test_plugin_sinc_in_problem_file_discovery_evaluation_and_zoo(tmp_path: Path) -> None:
    problem = tmp_path / "sinc.toml"
    problem.write_text(PROBLEM)
    zoo, out = tmp_path / "zoo", tmp_path / "out"
    found = _run([sys.executable, "-m", "physkan.cli", "discover", "--problem", str(problem),
                  "--json", "--zoo", str(zoo), "--out", str(out)])  # fmt: skip
    assert found.returncode == 0, found.stderr[-3000:]
    payload = json.loads(found.stdout)
    assert payload["recovered"] is True, payload
    assert "sinc" in payload["formula"]
    assert payload["zoo_id"], payload

    checked = _run([sys.executable, "-c", CHECK, payload["formula"], str(out / "model.h5"),
                    payload["zoo_id"], str(zoo)])  # fmt: skip
    assert checked.returncode == 0, checked.stderr[-3000:]
    errors = json.loads(checked.stdout)
    assert errors["numpy"] < 1e-9 and errors["torch"] < 1e-9, errors
    assert errors["model"] < 1e-6 and errors["zoo"] < 1e-6, errors
