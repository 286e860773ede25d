"""The ``zoo`` click group: output, exit codes, and one-line errors (never a traceback)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from _zoo_cli import assert_user_error, run

from physkan.zoo import LocalZoo, ModelCard
from physkan.zoo.testing import TOKEN, ServerProcess, free_port, make_model_file


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("PHYSKAN_ZOO_URL", "PHYSKAN_ZOO_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PHYSKAN_ZOO_CACHE", str(tmp_path / "cache"))
    zoo_root = tmp_path / "zoo"
    monkeypatch.setenv("PHYSKAN_ZOO", str(zoo_root))
    zoo = LocalZoo(zoo_root)
    state = {"w": np.full(8, 3.25)}
    for i in range(2):
        card = ModelCard(name="pendulum", formula=f"cos(q)+{i}", tags=["lagrangian"], problem="p")
        zoo.add(card, {"kind": "k"}, state)
    zoo.add(ModelCard(name="kepler", formula="1/r", tags=["orbit"]), {"kind": "k"}, state)
    return zoo_root


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path_factory.mktemp("zoo-cli") / "root", light=True) as proc:
        yield proc


def test_list_table_json_and_filters(root: Path) -> None:
    result = run("list")
    assert result.exit_code == 0 and "pendulum" in result.output and "kepler" in result.output
    items = json.loads(run("list", "--json").output)
    assert [(i["name"], i["latest_version"]) for i in items] == [("kepler", 1), ("pendulum", 2)]
    assert [i["name"] for i in json.loads(run("list", "--json", "--tag", "orbit").output)] == [
        "kepler"
    ]
    found = json.loads(run("list", "--json", "--search", "COS(Q)").output)
    assert [i["name"] for i in found] == ["pendulum"]


def test_show_alias_rebuild_and_verify(root: Path) -> None:
    card = json.loads(run("show", "pendulum", "--json").output)
    assert card["version"] == 2 and card["formula"] == "cos(q)+1" and len(card["sha256"]) == 64
    assert run("alias", "pendulum", "1", "prod").exit_code == 0
    shown = run("show", "pendulum@prod")
    assert shown.exit_code == 0 and "pendulum:1" in shown.output and "cos(q)+0" in shown.output
    (root / "index.json").unlink()
    result = run("rebuild-index")
    assert result.exit_code == 0 and "2 models, 3 versions" in result.output
    assert json.loads((root / "index.json").read_text())["models"]["pendulum"]["aliases"] == {
        "prod": 1,
        "latest": 2,
    }
    ok = run("verify")
    assert ok.exit_code == 0 and "3 ok, 0 failed" in ok.output
    assert run("verify", str(root / "kepler" / "1.h5")).exit_code == 0
    path = root / "pendulum" / "1.h5"
    data = bytearray(path.read_bytes())
    data[data.find(np.full(8, 3.25).tobytes()) + 1] ^= 0xFF
    path.write_bytes(bytes(data))
    bad = run("verify", str(root))
    assert bad.exit_code == 1 and "FAIL" in bad.output and "checksum mismatch" in bad.output


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (("show", "nope"), "no model named 'nope'"),
        (("show", "../x"), "invalid model name"),
        (("show", "pendulum:9"), "no version 9"),
        (("show", "pendulum@nope"), "no alias 'nope'"),
        (("alias", "pendulum", "1", "latest"), "reserved"),
        (("alias", "pendulum", "7", "prod"), "no version 7"),
        (("verify", "/no/such/path"), "no such file"),
        (("push", "missing.h5"), "no such file"),
        (("push", "pendulum"), "no zoo server URL"),
        (("pull", "pendulum"), "no zoo server URL"),
        (("serve", "--tokens-file", "/no/such/tokens.toml"), "cannot read tokens file"),
    ],
)
def test_user_errors_are_one_line_exit_2(root: Path, args: tuple[str, ...], text: str) -> None:
    assert_user_error(run(*args), text)


def test_push_pull_list_against_server(server: ServerProcess, root: Path, tmp_path: Path) -> None:
    result = run("push", "pendulum", "--url", server.url, "--token", TOKEN)
    assert result.exit_code == 0 and "pushed pendulum:" in result.output
    make_model_file(tmp_path / "m.h5", "cli-file")
    assert run("push", str(tmp_path / "m.h5"), "--url", server.url, "--token", TOKEN).exit_code == 0
    items = json.loads(run("list", "--json", "--url", server.url).output)
    assert {"pendulum", "cli-file"} <= {i["name"] for i in items}
    pulled = run("pull", "cli-file", "--url", server.url, "--dest", str(tmp_path))
    assert pulled.exit_code == 0 and Path(pulled.output.strip()) == tmp_path / "cli-file-1.h5"
    shown = json.loads(run("show", "cli-file:1", "--json", "--url", server.url).output)
    assert shown["name"] == "cli-file"
    assert (
        run("alias", "cli-file", "1", "prod", "--url", server.url, "--token", TOKEN).exit_code == 0
    )
    assert_user_error(
        run("push", str(tmp_path / "m.h5"), "--url", server.url, "--token", "bad"), "403"
    )
    assert_user_error(run("pull", "cli-file@nope", "--url", server.url), "404")
    dead = f"http://127.0.0.1:{free_port()}"
    assert_user_error(run("list", "--url", dead), "cannot reach zoo server")
