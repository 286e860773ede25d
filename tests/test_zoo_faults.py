"""Zoo store faults: damaged files, reads that write, stale temp files, CLI tracebacks."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import h5py
import httpx
import numpy as np
import pytest
from _zoo_cli import assert_user_error, run

from physkan import _fs
from physkan.zoo import LocalZoo, ModelCard, ZooError, write_model_file
from physkan.zoo.testing import ServerProcess, free_port

STATE = {"w": np.arange(6.0), "b": np.ones(2, dtype=np.float32)}

# A writer killed mid-write (os._exit skips every finally): leaves its temp file and reservation.
KILLED_WRITER = """
import os, sys, numpy as np
from physkan.zoo import store, LocalZoo, ModelCard
def die(group, name, arr):
    os._exit(3)
store._write_tensor = die
LocalZoo(sys.argv[1]).add(ModelCard(name=sys.argv[2]), {"kind": "k"}, {"w": np.ones(3)})
"""


def _add(zoo: LocalZoo, name: str, n: int = 1, **card: object) -> None:
    for _ in range(n):
        zoo.add(ModelCard(name=name, **card), {"kind": "k"}, STATE)  # type: ignore[arg-type]


def _tree(root: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every path under ``root`` with its mtime, size and (for files) content."""
    out = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        data = path.read_bytes() if path.is_file() else b""
        out[str(path.relative_to(root))] = (st.st_mtime_ns, st.st_size, data)
    return out


def _killed_write(root: Path, name: str) -> None:
    proc = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(root), name], timeout=120)
    assert proc.returncode == 3


def _leftovers(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir() if p.name.startswith(".tmp-") or "reserved" in p.name)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("PHYSKAN_ZOO_URL", "PHYSKAN_ZOO_TOKEN", "PHYSKAN_ZOO"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PHYSKAN_ZOO_CACHE", str(tmp_path / "cache"))
    return tmp_path


# -- damaged files do not hide healthy models ----------------------------------


def test_damaged_versions_are_skipped_and_reported_against_a_server(env: Path) -> None:
    root = env / "root"
    zoo = LocalZoo(root)
    for i in range(10):
        _add(zoo, f"m{i}", 2, formula=f"x+{i}")
    healthy_sha = zoo.resolve("m0:2").sha256
    with ServerProcess(root, light=True) as server, httpx.Client(base_url=server.url) as http:
        (root / "m0" / "3.h5").write_bytes(b"garbage, not HDF5" * 100)
        shutil.copyfile(root / "m2" / "1.h5", root / "m1" / "3.h5")  # another model's file
        listing = http.get("/api/models").json()
        assert listing["total"] == 10
        latest = {it["name"]: (it["latest_version"], it["versions"]) for it in listing["items"]}
        assert latest["m0"] == (2, 2) and latest["m1"] == (2, 2)
        r = http.get("/api/models/m0/latest/file")
        assert r.status_code == 200 and r.headers["X-Zoo-Version"] == "2"
        assert r.headers["ETag"] == f'"{healthy_sha}"'
        r = http.get("/api/models/m1/latest/file")
        assert r.status_code == 200 and r.headers["X-Zoo-Version"] == "2"
        assert http.get("/api/models/m1/3/file").status_code == 404
        info = http.get("/api/models/m1").json()
        assert [v["version"] for v in info["versions"]] == [1, 2]
        assert info["aliases"]["latest"] == 2
        server.stop()
        log = server.log_path.read_text()
    assert f"skipping damaged model file {root / 'm0' / '3.h5'}" in log
    assert f"{root / 'm1' / '3.h5'}: its card says m2:1" in log

    result = run("verify", str(root))
    assert result.exit_code == 1 and "Traceback" not in result.output
    fails = [ln for ln in result.output.splitlines() if ln.startswith("FAIL")]
    assert len(fails) == 2
    assert str(root / "m0" / "3.h5") in fails[0] and str(root / "m1" / "3.h5") in fails[1]
    assert "card says m2:1" in fails[1]
    assert "20 ok, 2 failed" in result.output


def test_latest_is_the_newest_healthy_version_and_damage_is_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    zoo = LocalZoo(tmp_path)
    _add(zoo, "a", 3)
    _add(zoo, "b", 1)
    zoo.set_alias("a", "prod", 3)
    shutil.copyfile(tmp_path / "b" / "1.h5", tmp_path / "a" / "3.h5")  # overwrite a healthy file
    with caplog.at_level(logging.WARNING, logger="physkan.zoo"):
        assert zoo.resolve("a").version == 2
        assert zoo.aliases("a") == {"latest": 2}  # prod pointed at the damaged version
        assert zoo.healthy_versions("a") == [1, 2] and zoo.versions("a") == [1, 2, 3]
        with pytest.raises(ZooError, match="version 3 of model 'a' is damaged.*card says b:1"):
            zoo.resolve("a:3")
        with pytest.raises(ZooError, match="damaged"):
            zoo.set_alias("a", "x", 3)
        zoo.index()
    why = "its card says b:1, not a:3 (a file of another model or version copied here?)"
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == [f"zoo: skipping damaged model file {tmp_path / 'a' / '3.h5'}: {why}"]
    assert zoo.damaged() == [(tmp_path / "a" / "3.h5", why)]
    result = run("list", "--root", str(tmp_path))
    assert result.exit_code == 0 and "(2 models)" in result.stdout
    assert result.stderr.splitlines() == [
        f"warning: zoo: skipping damaged model file {tmp_path / 'a' / '3.h5'}: {why}"
    ]
    assert_user_error(run("show", "a@prod", "--root", str(tmp_path)), "version 3, which is damaged")
    # a model whose only file is damaged is not listed and does not resolve
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "1.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    from physkan.zoo.local import summaries

    assert [s["name"] for s in summaries(zoo.index())] == ["a", "b"]
    with pytest.raises(ZooError, match="no readable version"):
        zoo.resolve("junk")
    # replacing the damaged file brings the version back, no index rebuild needed
    (tmp_path / "a" / "3.h5").unlink()
    _add(zoo, "a")
    assert zoo.resolve("a").version == 3
    assert [path for path, _ in zoo.damaged()] == [tmp_path / "junk" / "1.h5"]
    # a dangling symlink is a damaged version too, and its number is not handed out again
    os.symlink(tmp_path / "nowhere.h5", tmp_path / "b" / "2.h5")
    assert zoo.versions("b") == [1, 2] and zoo.healthy_versions("b") == [1]
    _add(zoo, "b")
    assert zoo.resolve("b").version == 3


# -- reads never write ----------------------------------------------------------


def test_reads_never_write_even_with_a_stale_or_missing_index(env: Path) -> None:
    root = env / "root"
    zoo = LocalZoo(root)
    _add(zoo, "m", 2)
    _add(zoo, "k", 1)
    with ServerProcess(root, light=True) as server, httpx.Client(base_url=server.url) as http:
        (root / "index.json").unlink()
        # a version added behind the zoo's back: the index (had there been one) is stale
        write_model_file(root / "m" / "3.h5", ModelCard(name="m", version=3), {"kind": "k"}, STATE)
        before = _tree(root)
        for _ in range(3):
            assert http.get("/api/models").json()["total"] == 2
            info = http.get("/api/models/m").json()
            assert [v["version"] for v in info["versions"]] == [1, 2, 3]
            assert http.get("/api/models/m/latest/file").headers["X-Zoo-Version"] == "3"
            assert http.get("/api/models/m/1/file").status_code == 200
            assert http.get("/api/models/nope").status_code == 404
        reader = LocalZoo(root)
        assert reader.resolve("m").version == 3 and reader.aliases("k") == {"latest": 1}
        assert sorted(reader.index()["models"]) == ["k", "m"]
        assert run("list", "--json", "--root", str(root)).exit_code == 0
        assert run("show", "m", "--root", str(root)).exit_code == 0
        assert run("verify", str(root)).exit_code == 0
        assert _tree(root) == before
        assert not (root / "index.json").exists()
    assert LocalZoo(env / "absent").index() == {"format": 1, "models": {}}
    assert not (env / "absent").exists()


@pytest.mark.parametrize(
    "content",
    [
        "[]",
        "5",
        '"index"',
        "null",
        '{"format": 1, "models": []}',
        '{"format": 1, "models": {"a": 5}}',
        '{"format": 1, "models": {"a": {"versions": [], "aliases": 5}}}',
        '{"format": 1, "models": {"a": {"versions": {"1": {"card": 5, "sha256": 1}},'
        ' "aliases": {"latest": "x"}, "damaged": {}, "stamp": {"files": {"1": [1, 2, 3]}}}}}',
        "[" * 100_000 + "]" * 100_000,
    ],
    ids=["list", "number", "string", "null", "models-list", "entry-number", "entry-shape",
         "bad-cached-card", "deep"],
)
def test_wrong_shaped_index_is_rebuilt_without_traceback(env: Path, content: str) -> None:
    root = env / "zoo"
    zoo = LocalZoo(root)
    _add(zoo, "a", 2, tags=["t"])
    _add(zoo, "b", 1)
    (root / "index.json").write_text(content)
    result = run("list", "--json", "--root", str(root))
    assert result.exit_code == 0, result.output
    items = json.loads(result.stdout)
    assert [(i["name"], i["latest_version"], i["tags"]) for i in items] == [
        ("a", 2, ["t"]),
        ("b", 1, []),
    ]
    assert run("list", "--root", str(root)).exit_code == 0
    assert (root / "index.json").read_text() == content  # a read does not write
    _add(zoo, "b", 1)  # the next write persists a good index
    stored = json.loads((root / "index.json").read_text())
    assert stored["format"] == 1 and sorted(stored["models"]["b"]["versions"]) == ["1", "2"]


# -- stale temp files and reservations -----------------------------------------


def test_killed_writer_leftovers_are_cleaned_by_the_next_write(tmp_path: Path) -> None:
    zoo = LocalZoo(tmp_path)
    _add(zoo, "w", 1)
    _killed_write(tmp_path, "w")
    left = _leftovers(tmp_path / "w")
    assert ".2.reserved" in left and any(n.startswith(".tmp-") for n in left)
    live = tmp_path / "w" / f".tmp-{os.getpid()}-live.h5"  # a live writer's file is spared
    live.write_bytes(b"partial")
    assert zoo.versions("w") == [1] and zoo.resolve("w").version == 1
    _add(zoo, "w", 1)  # no explicit cleanup: the write itself removes what the dead left
    assert zoo.versions("w") == [1, 2]  # version 2 was not skipped for good
    assert _leftovers(tmp_path / "w") == [live.name]


def test_staleness_rules(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    old = time.time() - _fs.MAX_WRITER_AGE_S - 60
    files = {
        "dead-tmp": (f".tmp-{dead.pid}-x.h5", b"", None),
        "live-tmp": (f".tmp-{os.getpid()}-y.h5", b"", None),
        "recycled-pid": (f".tmp-{os.getpid()}-z.h5", b"", old),  # far older than any writer
        "dead-reservation": (".4.reserved", str(dead.pid).encode(), None),
        "live-reservation": (".5.reserved", str(os.getpid()).encode(), None),
        "fresh-empty-reservation": (".6.reserved", b"", None),  # owner pid not written yet
        "old-empty-reservation": (".7.reserved", b"", time.time() - _fs.GRACE_S - 5),
        "garbage-pid": (".8.reserved", "٣99999999999".encode(), time.time() - _fs.GRACE_S - 5),
        "not-a-temp": ("notes.txt", b"keep", old),
    }
    sub = tmp_path / "sub"
    sub.mkdir()
    for name, data, mtime in files.values():
        for d in (tmp_path, sub):
            (d / name).write_bytes(data)
            if mtime is not None:
                os.utime(d / name, (mtime, mtime))
    stale = {"dead-tmp", "recycled-pid", "dead-reservation", "old-empty-reservation",
             "garbage-pid"}  # fmt: skip
    expected = {tmp_path / files[k][0] for k in stale}
    assert set(_fs.find_stale(tmp_path, reservations=True)) == expected
    temps_only = {tmp_path / files[k][0] for k in ("dead-tmp", "recycled-pid")}
    assert set(_fs.clean_stale_temps(tmp_path)) == temps_only
    assert set(_fs.remove_stale(tmp_path)) == expected - temps_only
    assert set(_fs.clean_stale_temps(sub, recursive=True)) == {sub / files["dead-tmp"][0],
                                                              sub / files["recycled-pid"][0]}  # fmt: skip
    kept = {p.name for p in tmp_path.iterdir() if p.is_file()}
    assert kept == {files[k][0] for k in files} - {files[k][0] for k in stale}
    assert _fs.find_stale(tmp_path / "missing") == []


def test_verify_reports_and_repair_removes_stale_files(env: Path) -> None:
    root = env / "zoo"
    zoo = LocalZoo(root)
    _add(zoo, "r", 2)
    _killed_write(root, "r")
    (root / "r" / "9.h5").write_bytes(b"truncated")
    stale = [root / "r" / n for n in _leftovers(root / "r")]
    assert len(stale) == 2

    result = run("verify", str(root))
    assert result.exit_code == 1 and "Traceback" not in result.output
    for path in stale:
        assert f"stale {path}" in result.output and path.exists()
    assert f"FAIL {root / 'r' / '9.h5'}: " in result.output and "2 ok, 1 failed" in result.output

    result = run("verify", "--repair", str(root))
    assert result.exit_code == 1, result.output  # the damaged file is reported, never deleted
    for path in stale:
        assert f"removed {path}" in result.output and not path.exists()
    assert (root / "r" / "9.h5").exists()
    assert json.loads((root / "index.json").read_text())["models"]["r"]["damaged"].keys() == {"9"}
    assert run("verify", str(root)).output.count("stale") == 0
    _add(zoo, "r", 1)
    assert zoo.versions("r") == [1, 2, 9, 10]  # numbering goes on after the damaged file

    result = run("verify", "--repair", str(root / "r" / "1.h5"))
    assert_user_error(result, "--repair works on a zoo directory")


# -- no traceback from the zoo CLI ----------------------------------------------


def _hostile_config_file(path: Path, name: str, config: object, version: int = 0) -> Path:
    """A zoo file whose card and header are fine but whose /model/config is not an object."""
    write_model_file(path, ModelCard(name=name, version=version), {"kind": "k"}, STATE)
    with h5py.File(path, "r+") as f:
        del f["model/config"]
        f["model"].create_dataset("config", data=json.dumps(config), dtype=h5py.string_dtype())
    return path


@pytest.mark.parametrize("config", ["kind", [1, 2], 7], ids=["string", "list", "number"])
def test_cli_one_line_for_hostile_config(env: Path, config: object) -> None:
    path = _hostile_config_file(env / "evil.h5", "evil", config)
    result = run("verify", str(path))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.startswith(f"FAIL {path}: ") and "0 ok, 1 failed" in result.output
    unused = f"http://127.0.0.1:{free_port()}"
    assert_user_error(run("push", str(path), "--url", unused, "--token", "t"))


@pytest.mark.parametrize("version", ["³", "٣", "0"])
def test_cli_one_line_for_unicode_digit_versions(env: Path, version: str) -> None:
    root = env / "zoo"
    _add(LocalZoo(root), "probe", 3)
    unused = f"http://127.0.0.1:{free_port()}"
    for args in (
        ["show", f"probe:{version}", "--root", str(root)],
        ["show", f"probe@{version}", "--root", str(root)],
        ["pull", f"probe:{version}", "--url", unused],
        ["push", f"probe:{version}", "--root", str(root), "--url", unused],
    ):
        assert_user_error(run(*args), "invalid")


@pytest.fixture
def hostile_server(env: Path) -> Iterator[ServerProcess]:
    root = env / "root"
    zoo = LocalZoo(root)
    _add(zoo, "good", 1)
    _hostile_config_file(root / "evil" / "1.h5", "evil", "kind", version=1)
    (root / "junk").mkdir()
    (root / "junk" / "1.h5").write_bytes(b"not hdf5")
    with ServerProcess(root, light=True) as server:
        yield server


def test_cli_one_line_for_hostile_files_from_a_server(
    env: Path, hostile_server: ServerProcess
) -> None:
    url = hostile_server.url
    root = hostile_server.root
    assert_user_error(run("pull", "evil", "--url", url))
    assert_user_error(run("pull", "junk", "--url", url), "junk")
    assert_user_error(run("show", "junk", "--url", url), "junk")
    assert_user_error(run("show", "junk", "--root", str(root)), "no readable version")
    assert run("pull", "good", "--url", url, "--dest", str(env)).exit_code == 0
    assert (env / "good-1.h5").is_file() and not list(env.glob(".tmp-*"))
    result = run("list", "--json", "--root", str(root))
    assert result.exit_code == 0 and [i["name"] for i in json.loads(result.stdout)] == [
        "evil",
        "good",
    ]
    result = run("verify", str(root))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "1 ok, 2 failed" in result.output
