"""HDF5 model files and the local zoo: round trip, atomicity, corruption, index, aliases."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import threading
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from physkan.zoo import (
    LocalZoo,
    ModelCard,
    ZooError,
    load,
    load_entry,
    parse_spec,
    read_model_file,
    register_model,
    store,
    verify_file,
    write_model_file,
)
from physkan.zoo.testing import linear_from_payload, linear_to_payload, make_model_file


@pytest.fixture
def linear_hooks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Use the nn.Linear stand-in instead of physkan.io."""
    monkeypatch.setattr(store, "_to_payload", linear_to_payload)
    monkeypatch.setattr(store, "_from_payload", linear_from_payload)


def _card(name: str = "demo", **kw: object) -> ModelCard:
    return ModelCard(name=name, **kw)


STATE = {"w": np.arange(12, dtype=np.float32).reshape(3, 4), "b": np.zeros(3)}


def test_round_trip_is_bitwise(tmp_path: Path, linear_hooks: None) -> None:
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    ref = register_model(
        model,
        name="pendulum-lagrangian",
        problem="pendulum",
        formula="q_dot**2/2 + cos(q)",
        formula_latex=r"\frac{\dot q^2}{2} + \cos q",
        formula_srepr="Add(...)",
        metrics={"test_mse": 1.5e-7, "r2": 0.999},
        tags=["lagrangian", "demo"],
        training_config={"steps": 200, "optimizer": "lbfgs"},
        provenance={"sampler": "analytic", "seed": 0},
        zoo=tmp_path,
    )
    assert (ref.name, ref.version) == ("pendulum-lagrangian", 1)
    assert ref.path == tmp_path / "pendulum-lagrangian" / "1.h5"
    entry = load_entry("pendulum-lagrangian", zoo=tmp_path)
    for key, value in model.state_dict().items():
        assert torch.equal(entry.model.state_dict()[key], value)
    assert entry.card == read_model_file(ref.path).card
    assert entry.card.formula == "q_dot**2/2 + cos(q)" and entry.card.version == 1
    assert entry.sha256 == ref.sha256 == verify_file(ref.path)
    loaded = load("pendulum-lagrangian:1", zoo=tmp_path)
    assert loaded.card == entry.card


def test_real_kan_round_trip_through_physkan_io(tmp_path: Path) -> None:
    """The default hooks (physkan.io) with a real KAN, once the model layer exists."""
    kan = pytest.importorskip("physkan.kan")
    pytest.importorskip("physkan.io")
    model = kan.KAN([2, 3, 1])
    ref = register_model(model, name="kan-demo", formula="x1*x2", zoo=tmp_path)
    got = load("kan-demo", zoo=tmp_path)
    assert type(got) is type(model) and got.card.formula == "x1*x2"
    assert got.config() == model.config()
    for key, value in model.state_dict().items():
        assert torch.equal(got.state_dict()[key], value), key
    x = torch.rand(5, 2) * 2 - 1
    assert torch.equal(got(x), model(x)) and ref.version == 1


def test_unstorable_model_is_a_zoo_error(tmp_path: Path) -> None:
    pytest.importorskip("physkan.io")
    with pytest.raises(ZooError, match="cannot store"):
        register_model(torch.nn.Linear(2, 2), name="plain", zoo=tmp_path)
    path = tmp_path / "m.h5"
    make_model_file(path)  # config kind "stand-in" is unknown to physkan.io
    with pytest.raises(ZooError, match="cannot rebuild"):
        store.build_model(read_model_file(path))


def test_tensor_names_dtypes_and_shapes(tmp_path: Path) -> None:
    state = {
        "a/b": np.array(2.5),
        "x%2Fy": np.ones((0, 3), np.int64),
        "half": np.arange(4, dtype=np.float16),
        "mask": np.array([True, False]),
        "t": np.arange(12.0).reshape(3, 4).T,
    }
    card = _card(metrics={"nan": float("nan")})
    sha = write_model_file(tmp_path / "m.h5", card, {"kind": "k"}, state)
    got = read_model_file(tmp_path / "m.h5")
    assert got.sha256 == sha and list(got.state) == list(state)
    for name, arr in state.items():
        assert got.state[name].dtype == arr.dtype and got.state[name].shape == arr.shape
        assert np.array_equal(got.state[name], arr)
    assert np.isnan(got.card.metrics["nan"])


def test_hash_is_independent_of_hdf5_layout(tmp_path: Path) -> None:
    card = _card()
    a = write_model_file(tmp_path / "a.h5", card, {"kind": "k"}, STATE)
    b = write_model_file(tmp_path / "b.h5", card, {"kind": "k"}, dict(reversed(STATE.items())))
    assert a == b == store.payload_sha256(card, {"kind": "k"}, STATE)


def test_no_pickle_and_config_needs_kind(tmp_path: Path) -> None:
    with pytest.raises(ZooError, match="kind"):
        write_model_file(tmp_path / "m.h5", _card(), {}, STATE)
    with pytest.raises(ZooError, match="dtype"):
        write_model_file(tmp_path / "m.h5", _card(), {"kind": "k"}, {"o": np.array([object()])})
    assert not list(tmp_path.iterdir())


def test_write_error_mid_write_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    def boom(group: object, name: str, arr: np.ndarray) -> None:
        calls.append(name)
        raise OSError("disk full")

    monkeypatch.setattr(store, "_write_tensor", boom)
    with pytest.raises(OSError, match="disk full"):
        write_model_file(tmp_path / "m.h5", _card(), {"kind": "k"}, STATE)
    assert calls and list(tmp_path.iterdir()) == []


CRASH_SCRIPT = """
import os, sys, numpy as np
from physkan.zoo import store, LocalZoo, ModelCard
def die(group, name, arr):
    os._exit(3)
store._write_tensor = die
LocalZoo(sys.argv[1]).add(ModelCard(name="crash"), {"kind": "k"}, {"w": np.ones(3)})
"""


def test_process_crash_mid_write_leaves_no_model(tmp_path: Path) -> None:
    root = tmp_path / "zoo"
    proc = subprocess.run([sys.executable, "-c", CRASH_SCRIPT, str(root)], timeout=120)
    assert proc.returncode == 3
    zoo = LocalZoo(root)
    leftovers = sorted(p.name for p in (root / "crash").iterdir())
    assert not [n for n in leftovers if n.endswith(".h5") and not n.startswith(".")]
    assert any(n.startswith(".tmp-") for n in leftovers)  # the crashed writer's temp file
    assert zoo.versions("crash") == [] and zoo.names() == []
    removed = zoo.cleanup()
    assert removed and not [p for p in (root / "crash").iterdir() if p.name != ".lock"]
    assert zoo.add(_card("crash"), {"kind": "k"}, STATE).version == 1


def test_truncated_file_rejected(tmp_path: Path) -> None:
    path = tmp_path / "m.h5"
    make_model_file(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ZooError, match="truncated or corrupt|corrupt zoo file"):
        read_model_file(path)


def test_corrupt_tensor_bytes_fail_the_checksum(tmp_path: Path) -> None:
    path = tmp_path / "m.h5"
    marker = np.full(32, 1234.5678)
    write_model_file(path, _card(), {"kind": "k"}, {"w": marker})
    data = bytearray(path.read_bytes())
    at = data.find(marker.tobytes())
    assert at > 0
    data[at + 3] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ZooError, match="checksum mismatch"):
        read_model_file(path)
    read_model_file(path, verify=False)  # still readable when asked not to verify


def test_tampered_card_fails_the_checksum(tmp_path: Path) -> None:
    path = tmp_path / "m.h5"
    make_model_file(path)
    with h5py.File(path, "r+") as f:
        card = json.loads(f["card"][()])
        card["formula"] = "42"
        del f["card"]
        f.create_dataset("card", data=json.dumps(card), dtype=h5py.string_dtype())
    with pytest.raises(ZooError, match="checksum mismatch"):
        verify_file(path)


def test_future_and_foreign_files_rejected(tmp_path: Path) -> None:
    path = tmp_path / "m.h5"
    make_model_file(path)
    with h5py.File(path, "r+") as f:
        f.attrs["format_version"] = store.FORMAT_VERSION + 1
    with pytest.raises(ZooError, match="upgrade physkan"):
        read_model_file(path)
    foreign = tmp_path / "f.h5"
    with h5py.File(foreign, "w") as f:
        f.create_dataset("x", data=np.ones(3))
    with pytest.raises(ZooError, match="not a physkan zoo file"):
        read_model_file(foreign)
    with pytest.raises(ZooError, match="no such zoo file"):
        read_model_file(tmp_path / "missing.h5")
    (tmp_path / "text.h5").write_text("hello")
    with pytest.raises(ZooError, match="not a readable HDF5 file"):
        read_model_file(tmp_path / "text.h5")


def test_names_and_specs() -> None:
    assert parse_spec("a").ref == parse_spec("a@latest").ref == "latest"
    assert parse_spec("pend:3").version == 3 and parse_spec("pend@prod").alias == "prod"
    for bad in ["", "../x", "a/b", "A", "-a", "a..b", "a:0", "a:x", "a:1@b", "x" * 65, ".a"]:
        with pytest.raises(ZooError):
            parse_spec(bad)
    with pytest.raises(ValueError):
        ModelCard(name="../x")


def test_aliases_and_index_rebuild(tmp_path: Path) -> None:
    zoo = LocalZoo(tmp_path)
    for _ in range(3):
        zoo.add(_card("a", tags=["t1"]), {"kind": "k"}, STATE)
    zoo.add(_card("b", formula="sin(x)"), {"kind": "k"}, STATE)
    zoo.set_alias("a", "prod", 2)
    assert zoo.aliases("a") == {"prod": 2, "latest": 3}
    assert zoo.resolve("a@prod").version == 2 and zoo.resolve("a").version == 3
    for bad in ["latest", "7", "../x"]:
        with pytest.raises(ZooError):
            zoo.set_alias("a", bad, 1)
    with pytest.raises(ZooError, match="no version 9"):
        zoo.set_alias("a", "x", 9)
    with pytest.raises(ZooError, match="no alias 'nope'"):
        zoo.resolve("a@nope")
    with pytest.raises(ZooError, match="no model named 'zz'"):
        zoo.resolve("zz")
    before = zoo.index()
    (tmp_path / "index.json").unlink()
    assert LocalZoo(tmp_path).index() == before
    (tmp_path / "index.json").write_text("{not json")
    assert LocalZoo(tmp_path).index()["models"].keys() == {"a", "b"}
    (tmp_path / "a" / "3.h5").unlink()
    index = zoo.rebuild_index()
    assert sorted(index["models"]["a"]["versions"]) == ["1", "2"]
    assert index["models"]["a"]["aliases"] == {"prod": 2, "latest": 2}


def test_verify_reports_corrupt_files(tmp_path: Path) -> None:
    zoo = LocalZoo(tmp_path)
    ref = zoo.add(_card("a"), {"kind": "k"}, {"w": np.full(16, 777.0)})
    zoo.add(_card("a"), {"kind": "k"}, STATE)
    data = bytearray(ref.path.read_bytes())
    data[data.find(np.full(16, 777.0).tobytes()) + 1] ^= 1
    ref.path.write_bytes(bytes(data))
    results = dict(zoo.verify())
    assert results[ref.path] and "checksum" in results[ref.path]
    assert results[tmp_path / "a" / "2.h5"] is None


def test_concurrent_threads_get_distinct_versions(tmp_path: Path) -> None:
    zoo = LocalZoo(tmp_path)
    refs: list = []
    lock = threading.Lock()

    def work() -> None:
        ref = LocalZoo(tmp_path).add(_card("same"), {"kind": "k"}, STATE)
        with lock:
            refs.append(ref)

    threads = [threading.Thread(target=work) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.version for r in refs) == list(range(1, 17))
    assert zoo.versions("same") == list(range(1, 17))
    assert len(zoo.index()["models"]["same"]["versions"]) == 16


def _add_in_process(root: str) -> list[int]:
    return [LocalZoo(root).add(_card("proc"), {"kind": "k"}, STATE).version for _ in range(4)]


def test_concurrent_processes_get_distinct_versions(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(4) as pool:
        versions = sum(pool.map(_add_in_process, [str(tmp_path)] * 4), [])
    assert sorted(versions) == list(range(1, 17))
    assert len(LocalZoo(tmp_path).index()["models"]["proc"]["versions"]) == 16
    assert all(r[1] is None for r in LocalZoo(tmp_path).verify())


def test_stale_temp_cleanup_spares_live_writers(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    d = tmp_path / "m"
    d.mkdir()
    stale = d / f".tmp-{dead.pid}-abc.h5"
    live = d / f".tmp-{os.getpid()}-def.h5"
    reservation = d / ".5.reserved"
    for p in (stale, live):
        p.write_bytes(b"partial")
    reservation.write_text(str(dead.pid))
    removed = LocalZoo(tmp_path).cleanup()
    assert set(removed) == {stale, reservation} and live.exists()
