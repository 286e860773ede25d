"""physkan.zoo.load/push/pull against a real server: lookup order and ETag cache revalidation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from physkan import zoo
from physkan.zoo import LocalZoo, ZooError, store
from physkan.zoo.client import Download, ZooClient
from physkan.zoo.testing import (
    TOKEN,
    ServerProcess,
    free_port,
    linear_from_payload,
    linear_to_payload,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path_factory.mktemp("zoo-client") / "root", light=True) as proc:
        yield proc


@pytest.fixture(autouse=True)
def _hooks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(store, "_to_payload", linear_to_payload)
    monkeypatch.setattr(store, "_from_payload", linear_from_payload)
    for var in ("PHYSKAN_ZOO_URL", "PHYSKAN_ZOO_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PHYSKAN_ZOO", str(tmp_path / "default-zoo"))
    monkeypatch.setenv("PHYSKAN_ZOO_CACHE", str(tmp_path / "default-cache"))


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Statuses of every ZooClient.download call."""
    statuses: list[int] = []
    original = ZooClient.download

    def wrapped(self: ZooClient, *args: object, **kwargs: object) -> Download:
        res = original(self, *args, **kwargs)  # type: ignore[arg-type]
        statuses.append(res.status)
        return res

    monkeypatch.setattr(ZooClient, "download", wrapped)
    return statuses


def _publish(tmp_path: Path, server: ServerProcess, name: str, seed: int) -> tuple[dict, object]:
    torch.manual_seed(seed)
    model = torch.nn.Linear(3, 2)
    ref = zoo.register_model(model, name=name, formula=f"x*{seed}", zoo=tmp_path / f"src-{seed}")
    return zoo.push(ref, server.url, TOKEN), model


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_load_from_server_then_revalidate_cache(
    server: ServerProcess, tmp_path: Path, spy: list[int]
) -> None:
    res1, model1 = _publish(tmp_path, server, "client-rev", 1)
    cache = tmp_path / "cache"
    kw = {"zoo": tmp_path / "empty-zoo", "url": server.url, "cache_dir": cache}
    got = zoo.load("client-rev", **kw)
    assert _same(got, model1) and got.card.version == res1["version"] == 1
    assert got.card.formula == "x*1" and spy == [200]
    assert zoo.load("client-rev", **kw).card.version == 1 and spy == [200, 304]
    res2, model2 = _publish(tmp_path, server, "client-rev", 2)
    got = zoo.load("client-rev", **kw)
    assert _same(got, model2) and got.card.version == res2["version"] == 2 and spy[-1] == 200
    n = len(spy)
    # version 1 was cached when "latest" pointed to it; pinned versions are immutable
    assert _same(zoo.load("client-rev:1", **kw), model1) and len(spy) == n
    assert _same(zoo.load("client-rev:2", **kw), model2) and len(spy) == n
    # offline: the cached copy is used with a warning
    offline = {**kw, "url": f"http://127.0.0.1:{free_port()}"}
    with pytest.warns(UserWarning, match="using cached"):
        assert zoo.load("client-rev", **offline).card.version == 2
    # no server configured at all: straight from the cache
    assert zoo.load("client-rev", zoo=kw["zoo"], cache_dir=cache).card.version == 2


def test_alias_via_client_and_damaged_cache_recovers(
    server: ServerProcess, tmp_path: Path, spy: list[int]
) -> None:
    _publish(tmp_path, server, "client-alias", 1)
    _, model2 = _publish(tmp_path, server, "client-alias", 2)
    with ZooClient(server.url, TOKEN) as client:
        client.set_alias("client-alias", "prod", 1)
        assert client.get_model("client-alias")["aliases"]["prod"] == 1
    kw = {"zoo": tmp_path / "none", "url": server.url, "cache_dir": tmp_path / "c"}
    assert zoo.load("client-alias@prod", **kw).card.version == 1
    entry = zoo.load_entry("client-alias", **kw)
    assert _same(entry.model, model2)
    data = bytearray(entry.path.read_bytes())
    needle = model2.weight.detach().numpy().tobytes()
    data[data.find(needle) + 2] ^= 0xFF
    entry.path.write_bytes(bytes(data))
    assert _same(zoo.load("client-alias", **kw), model2)  # re-downloaded after verify failed


def test_local_zoo_comes_first(server: ServerProcess, tmp_path: Path, spy: list[int]) -> None:
    model = torch.nn.Linear(2, 2)
    zoo.register_model(model, name="client-local")  # default zoo: $PHYSKAN_ZOO
    got = zoo.load("client-local", url=server.url)
    assert _same(got, model) and spy == []
    assert LocalZoo(tmp_path / "default-zoo").versions("client-local") == [1]


def test_pull_push_and_errors(server: ServerProcess, tmp_path: Path) -> None:
    res, model = _publish(tmp_path, server, "client-pull", 7)
    dest = tmp_path / "out"
    dest.mkdir()
    path = zoo.pull("client-pull", server.url, dest)
    assert path == dest / "client-pull-1.h5" and zoo.verify_file(path) == res["sha256"]
    assert zoo.pull("client-pull:1", server.url, tmp_path / "x.h5") == tmp_path / "x.h5"
    assert zoo.pull("client-pull", server.url).is_file()  # into the default cache
    with pytest.raises(ZooError, match="not in the cache"):
        zoo.load("nothing-here", zoo=tmp_path / "z", cache_dir=tmp_path / "c")
    with pytest.raises(ZooError, match="404"):
        zoo.load("nothing-here", zoo=tmp_path / "z", url=server.url, cache_dir=tmp_path / "c")
    with pytest.raises(ZooError, match="cannot reach"):
        zoo.load("x", zoo=tmp_path / "z", url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ZooError, match="403"):
        zoo.push(path, server.url, "wrong-token")
    with pytest.raises(ZooError, match="no zoo server URL"):
        zoo.push(path)
    with pytest.raises(ZooError, match="invalid model"):
        zoo.register_model(model, name="Bad Name", zoo=tmp_path / "z")
