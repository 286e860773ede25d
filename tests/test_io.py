"""Model files (physkan.io) on the shared atomic-file primitives and the model-kind registry."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import pytest
import torch

from physkan import _fs
from physkan.io import (
    MODEL_KINDS,
    ModelFileError,
    get_model_kind,
    load_model,
    model_from_payload,
    register_model_kind,
    save_model,
)
from physkan.kan import MultKAN

ZOO = Path(__file__).resolve().parents[1] / "zoo"


def _model() -> MultKAN:
    return MultKAN([2, 3, 1], grid=4, k=3, seed=0).double()


def test_save_load_roundtrip_keeps_the_file_format(tmp_path: Path) -> None:
    model = _model()
    path = save_model(model, tmp_path / "sub" / "m.h5")
    assert sorted(p.name for p in path.parent.iterdir()) == ["m.h5"]  # no temp file left
    with h5py.File(path, "r") as fh:
        assert fh.attrs["format"] == "physkan-model" and int(fh.attrs["format_version"]) == 1
        assert json.loads(fh["config"][()])["kind"] == "multkan"
        assert set(fh["state"]) == set(model.state_dict())
    loaded = load_model(path)
    assert isinstance(loaded, MultKAN)
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor)


def test_save_goes_through_the_atomic_file_primitive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed publish leaves neither the target nor a temp file (one code path with the zoo)."""

    def refuse(tmp: Path, final: Path, *, overwrite: bool) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(_fs, "publish", refuse)
    with pytest.raises(OSError, match="disk full"):
        save_model(_model(), tmp_path / "m.h5")
    assert list(tmp_path.iterdir()) == []


def test_atomic_file(tmp_path: Path) -> None:
    target = tmp_path / "a" / "x.bin"
    with _fs.atomic_file(target) as tmp:
        assert tmp.parent == target.parent and tmp.name.startswith(_fs.TEMP_PREFIX)
        tmp.write_bytes(b"one")
    assert target.read_bytes() == b"one"
    with pytest.raises(FileExistsError), _fs.atomic_file(target, overwrite=False) as tmp:
        tmp.write_bytes(b"two")
    with pytest.raises(RuntimeError), _fs.atomic_file(target) as tmp:
        tmp.write_bytes(b"three")
        raise RuntimeError("writer failed")
    assert target.read_bytes() == b"one"
    assert sorted(p.name for p in target.parent.iterdir()) == ["x.bin"]


def test_model_kinds_register_themselves() -> None:
    assert {"multkan", "s2kan"} <= set(MODEL_KINDS.names())
    assert get_model_kind("multkan") == MultKAN.from_config
    with pytest.raises(ModelFileError, match="unknown model kind 'nope'"):
        get_model_kind("nope")


def test_unknown_kind_message_is_unchanged() -> None:
    with pytest.raises(ModelFileError, match=r"config.kind: unknown model kind 'nope'; known: .*multkan"):
        model_from_payload({"kind": "nope"}, {})


def test_register_model_kind_takes_a_class_or_a_factory() -> None:
    class Tiny(torch.nn.Linear):
        @classmethod
        def from_config(cls, config):
            return cls(config["n"], 1)

        def config(self):
            return {"kind": "tiny-test", "n": self.in_features}

    try:
        register_model_kind("tiny-test", Tiny)
        model = model_from_payload({"kind": "tiny-test", "n": 3}, Tiny(3, 1).state_dict())
        assert isinstance(model, Tiny) and model.in_features == 3
        register_model_kind("tiny-test", lambda config: Tiny(config["n"] + 1, 1))
        assert model_from_payload({"kind": "tiny-test", "n": 1}, Tiny(2, 1).state_dict()).in_features == 2
    finally:
        MODEL_KINDS.unregister("tiny-test")


@pytest.mark.parametrize("name", ["tutorial-regression"])
def test_load_model_in_a_fresh_process(tmp_path: Path, name: str) -> None:
    """``physkan.io.load_model`` knows the built-in kinds without importing them by hand."""
    from physkan.zoo import read_model_file

    stored = read_model_file(ZOO / name / "1.h5")
    model = model_from_payload(stored.config, stored.state)
    path = save_model(model, tmp_path / "m.h5")
    code = (
        "import sys; from physkan.io import load_model; "
        "print(type(load_model(sys.argv[1])).__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                         check=True, timeout=120)  # fmt: skip
    assert out.stdout.strip() == type(model).__name__
