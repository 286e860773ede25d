"""discover -> register -> serve -> pull elsewhere -> same outputs (bitwise) and formula."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from click.testing import CliRunner

from physkan.cli import cli
from physkan.zoo import load_entry, pull
from physkan.zoo.testing import ServerProcess


def test_discover_register_serve_pull_round_trip(tmp_path: Path) -> None:
    root = tmp_path / "zoo"
    result = CliRunner().invoke(
        cli, ["discover", "--problem", "tutorial", "--json", "--zoo", str(root), "--out", str(tmp_path / "out")],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    name, version = payload["zoo_id"].split(":")
    local = load_entry(f"{name}:{version}", zoo=root)

    elsewhere = tmp_path / "elsewhere"
    with ServerProcess(root, light=True) as server:
        path = pull(f"{name}:{version}", url=server.url, cache_dir=elsewhere)
    assert path.is_relative_to(elsewhere)
    empty_zoo = tmp_path / "empty-zoo"
    remote = load_entry(f"{name}:{version}", zoo=empty_zoo, cache_dir=elsewhere)
    assert remote.card.formula == local.card.formula == payload["formula"]
    x = torch.rand(257, 2, dtype=torch.float64) * 2 - 1
    with torch.no_grad():
        assert torch.equal(local.model(x), remote.model(x))
