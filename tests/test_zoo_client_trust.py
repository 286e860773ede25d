"""The zoo client does not trust the server.

A real, deliberately misbehaving HTTP server on 127.0.0.1 (``http.server`` in
a thread) answers each case; the client must refuse what it did not ask for,
turn every malformed answer into one ``Error:`` line (exit 2) at the CLI,
cap downloads, and clean temp files that killed downloads left in the cache.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import h5py
import pytest
from _zoo_cli import assert_user_error, run

import physkan
from physkan._fs import temp_path
from physkan.zoo import ModelCard, ZooError, verify_file, write_model_file
from physkan.zoo.cache import fetch_to_cache
from physkan.zoo.client import (
    DEFAULT_MAX_DOWNLOAD_BYTES,
    MAX_DOWNLOAD_ENV,
    ZooClient,
    remove_stale_temps,
)

Answer = tuple[int, dict[str, str], bytes]
Route = Answer | Callable[[BaseHTTPRequestHandler], None]


class Hostile:
    """A zoo 'server' that answers each (method, path) with whatever a test sets."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Route] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.hostile = self  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:  # keep the test output clean
        pass

    def _answer(self, method: str) -> None:
        path = self.path.split("?", 1)[0]
        hostile: Hostile = self.server.hostile  # type: ignore[attr-defined]
        hostile.requests.append((method, path, dict(self.headers)))
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        route = hostile.routes.get((method, path))
        if route is None:
            route = (404, {}, json.dumps({"error": "not_found", "detail": path}).encode())
        if callable(route):
            route(self)
            return
        status, headers, body = route
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if "Content-Length" not in headers and status != 304:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and status != 304:
            self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._answer("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._answer("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._answer("PUT")


@pytest.fixture
def hostile() -> Iterator[Hostile]:
    server = Hostile()
    yield server
    server.close()


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("PHYSKAN_ZOO_URL", "PHYSKAN_ZOO_TOKEN", MAX_DOWNLOAD_ENV):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PHYSKAN_ZOO", str(tmp_path / "zoo"))
    monkeypatch.setenv("PHYSKAN_ZOO_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def model_file(tmp_path: Path, name: str, version: int = 1, **kw: Any) -> tuple[bytes, str]:
    """The bytes and sha256 of a valid zoo file holding card ``name:version``."""
    path = tmp_path / "src" / f"{name}-{version}-{len(kw)}.h5"
    card = ModelCard(name=name, version=version, formula="x**2", **kw)
    sha = write_model_file(path, card, {"kind": "stand-in"}, {"w": [1.0, 2.0, 3.0]})
    return path.read_bytes(), sha


def file_answer(data: bytes, sha: str, version: str = "1", **extra: str) -> Answer:
    headers = {"ETag": f'"{sha}"', "X-Zoo-Version": version, **extra}
    return 200, {k: v for k, v in headers.items() if v != "<drop>"}, data


def cache_files(cache: Path) -> list[str]:
    """Every model file or temp file in the cache (refs.json and locks excluded)."""
    if not cache.exists():
        return []
    return sorted(
        str(p.relative_to(cache))
        for p in cache.rglob("*")
        if p.is_file() and (p.suffix == ".h5" or p.name.startswith(".tmp-"))
    )


# -- 1. the client refuses what it did not ask for ------------------------------


def test_well_behaved_answer_is_accepted(hostile: Hostile, cache: Path, tmp_path: Path) -> None:
    data, sha = model_file(tmp_path, "good")
    hostile.routes[("GET", "/api/models/good/latest/file")] = file_answer(data, sha)
    result = run("pull", "good", "--url", hostile.url)
    assert result.exit_code == 0, result.output
    assert cache_files(cache) == ["good/1.h5"]
    assert verify_file(cache / "good" / "1.h5") == sha


@pytest.mark.parametrize(
    ("spec", "served", "headers", "message"),
    [
        ("swap", ("other", 1), {}, "asked for model 'swap', the file holds 'other'"),
        ("swap", ("other", 1), {"X-Zoo-Name": "other"}, "asked for model 'swap', got 'other'"),
        ("verskew", ("verskew", 1), {"X-Zoo-Version": "5"}, "X-Zoo-Version says 5"),
        ("negver", ("negver", 1), {"X-Zoo-Version": "-7"}, "'-7' is not a positive integer"),
        ("zero", ("zero", 1), {"X-Zoo-Version": "0"}, "'0' is not a positive integer"),
        ("udigit", ("udigit", 1), {"X-Zoo-Version": "\u00b2"}, "is not a positive integer"),
        ("pin:2", ("pin", 1), {}, "asked for version 2, got version 1"),
        ("pin:2", ("pin", 1), {"X-Zoo-Version": "2"}, "X-Zoo-Version says 2"),
    ],
)
def test_refuses_other_name_or_version(
    hostile: Hostile,
    cache: Path,
    tmp_path: Path,
    spec: str,
    served: tuple[str, int],
    headers: dict[str, str],
    message: str,
) -> None:
    data, sha = model_file(tmp_path, *served)
    name, _, ver = spec.partition(":")
    path = f"/api/models/{name}/{ver or 'latest'}/file"
    hostile.routes[("GET", path)] = file_answer(data, sha, **headers)
    assert_user_error(run("pull", spec, "--url", hostile.url), message)
    assert cache_files(cache) == []  # nothing installed, no temp file left
    with pytest.raises(ZooError, match="sent an invalid answer"):
        fetch_to_cache(spec, hostile.url, cache)


# -- 2. malformed answers: one clear error, never a traceback -------------------


def _hostile_config(tmp_path: Path, config: object) -> tuple[bytes, str]:
    data, sha = model_file(tmp_path, "bad")
    path = tmp_path / "hostile.h5"
    path.write_bytes(data)
    with h5py.File(path, "a") as f:
        del f["model/config"]
        f["model/config"] = json.dumps(config)
    return path.read_bytes(), sha


def _external_link(tmp_path: Path) -> tuple[bytes, str]:
    data, sha = model_file(tmp_path, "bad")
    path = tmp_path / "linked.h5"
    path.write_bytes(data)
    with h5py.File(path, "a") as f:
        f["leak"] = h5py.ExternalLink("/etc/passwd", "/")
    return path.read_bytes(), sha


FILE_CASES: dict[str, tuple[Callable[[bytes, str, Path], Answer], str]] = {
    "no etag": (lambda d, s, _: file_answer(d, s, ETag="<drop>"), "missing ETag header"),
    "etag not a sha": (lambda d, s, _: file_answer(d, s, ETag='"abc"'), "is not a quoted sha256"),
    "etag of other content": (
        lambda d, s, _: file_answer(d, "0" * 64),
        "the file's sha256 does not match the ETag",
    ),
    "no version": (
        lambda d, s, _: file_answer(d, s, **{"X-Zoo-Version": "<drop>"}),
        "missing X-Zoo-Version header",
    ),
    "version not numeric": (
        lambda d, s, _: file_answer(d, s, "one"),
        "X-Zoo-Version header 'one' is not a positive integer",
    ),
    "unrequested 304": (lambda d, s, _: (304, {"ETag": f'"{s}"'}, b""), "304 Not Modified"),
    "redirect": (lambda d, s, _: (302, {"Location": "/elsewhere"}, b""), "HTTP status 302"),
    "error body is a list": (lambda d, s, _: (500, {}, b"[1, 2]"), "answered 500 ([1, 2])"),
    "not hdf5": (
        lambda d, s, _: file_answer(b"<html>hello</html>", s),
        "the download of bad from",
    ),
    "config is a string": (
        lambda d, s, t: file_answer(*_hostile_config(t, "kind")),
        "the download of bad from",
    ),
    "config is a list": (
        lambda d, s, t: file_answer(*_hostile_config(t, ["kind"])),
        "the download of bad from",
    ),
    "config is a number": (
        lambda d, s, t: file_answer(*_hostile_config(t, 7)),
        "the download of bad from",
    ),
    "external link": (lambda d, s, t: file_answer(*_external_link(t)), "an external link"),
}


@pytest.mark.parametrize("case", sorted(FILE_CASES))
def test_malformed_download_is_one_error(
    hostile: Hostile, cache: Path, tmp_path: Path, case: str
) -> None:
    make, message = FILE_CASES[case]
    data, sha = model_file(tmp_path, "bad")
    hostile.routes[("GET", "/api/models/bad/latest/file")] = make(data, sha, tmp_path)
    result = run("pull", "bad", "--url", hostile.url)
    assert_user_error(result, message)
    assert cache_files(cache) == []
    with pytest.raises(ZooError, match=re.escape(message)):
        fetch_to_cache("bad", hostile.url, cache)


def test_not_modified_must_match_the_cached_copy(
    hostile: Hostile, cache: Path, tmp_path: Path
) -> None:
    data, sha = model_file(tmp_path, "m")
    path = ("GET", "/api/models/m/latest/file")
    hostile.routes[path] = file_answer(data, sha)
    assert fetch_to_cache("m", hostile.url, cache).version == 1
    hostile.routes[path] = (304, {"ETag": f'"{sha}"', "X-Zoo-Version": "1"}, b"")
    assert fetch_to_cache("m", hostile.url, cache).sha256 == sha
    assert hostile.requests[-1][2]["If-None-Match"] == f'"{sha}"'
    hostile.routes[path] = (304, {"ETag": f'"{sha}"', "X-Zoo-Version": "2"}, b"")
    with pytest.raises(ZooError, match="cached copy is version 1"):
        fetch_to_cache("m", hostile.url, cache)
    hostile.routes[path] = (304, {"ETag": f'"{"0" * 64}"'}, b"")
    with pytest.raises(ZooError, match="ETag other than the cached one"):
        fetch_to_cache("m", hostile.url, cache)


def _card(name: str, version: int) -> dict[str, Any]:
    return ModelCard(name=name, version=version).model_dump(mode="json")


SHA = "ab" * 32
GOOD_INFO = {
    "name": "m",
    "aliases": {"latest": 1},
    "versions": [{"version": 1, "sha256": SHA, "card": _card("m", 1)}],
}
SHOW_CASES: dict[str, tuple[Answer, str]] = {
    "empty object": ((200, {}, b"{}"), "name: Field required"),
    "not json": ((200, {}, b"<html>oops</html>"), "the answer is not JSON"),
    "a list": ((200, {}, b"[]"), "sent an invalid answer"),
    "other model": (
        (200, {}, json.dumps({**GOOD_INFO, "name": "n"}).encode()),
        "it describes model 'n'",
    ),
    "card of another model": (
        (
            200,
            {},
            json.dumps(
                {**GOOD_INFO, "versions": [{"version": 1, "sha256": SHA, "card": _card("n", 1)}]}
            ).encode(),
        ),
        "version 1 has the card of n:1",
    ),
    "card version a unicode digit": (
        (
            200,
            {},
            json.dumps(
                {
                    **GOOD_INFO,
                    "versions": [
                        {
                            "version": 1,
                            "sha256": SHA,
                            "card": {**_card("m", 1), "version": "\u00b2"},
                        }
                    ],
                }
            ).encode(),
        ),
        "versions.0.card: version",
    ),
    "version as a string": (
        (
            200,
            {},
            json.dumps(
                {**GOOD_INFO, "versions": [{"version": "1", "sha256": SHA, "card": _card("m", 1)}]}
            ).encode(),
        ),
        "versions.0.version",
    ),
    "error with control characters": (
        (404, {}, b'{"error": "x\\u001b[2J", "detail": "gone"}'),
        "answered 404 (x [2J: gone)",
    ),
}


@pytest.mark.parametrize("case", sorted(SHOW_CASES))
def test_malformed_show_is_one_error(hostile: Hostile, cache: Path, case: str) -> None:
    answer, message = SHOW_CASES[case]
    hostile.routes[("GET", "/api/models/m")] = answer
    assert_user_error(run("show", "m", "--url", hostile.url), message)
    with ZooClient(hostile.url) as client, pytest.raises(ZooError, match=re.escape(message)):
        client.get_model("m")


def test_good_show_still_works(hostile: Hostile, cache: Path) -> None:
    hostile.routes[("GET", "/api/models/m")] = (200, {}, json.dumps(GOOD_INFO).encode())
    result = run("show", "m", "--url", hostile.url, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["sha256"] == SHA


LIST_CASES: dict[str, tuple[Answer, str]] = {
    "not json": ((200, {}, b"items: none"), "the answer is not JSON"),
    "a list": ((200, {}, b"[1, 2, 3]"), "sent an invalid answer"),
    "item without fields": (
        (200, {}, b'{"items": [{"name": "m"}], "total": 1, "page": 1, "per_page": 50}'),
        "items.0.latest_version: Field required",
    ),
    "too large": ((200, {}, b"[" + b"0," * (1 << 20) + b"0]"), "larger than 1048576 bytes"),
}


@pytest.mark.parametrize("case", sorted(LIST_CASES))
def test_malformed_list_is_one_error(
    hostile: Hostile, cache: Path, case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import physkan.zoo.client as client

    monkeypatch.setattr(client, "MAX_JSON_BYTES", 1 << 20)
    answer, message = LIST_CASES[case]
    hostile.routes[("GET", "/api/models")] = answer
    assert_user_error(run("list", "--url", hostile.url), message)
    with ZooClient(hostile.url) as client, pytest.raises(ZooError, match=re.escape(message)):
        client.list_models()


def test_push_checks_the_file_and_the_answer(hostile: Hostile, cache: Path, tmp_path: Path) -> None:
    data, _ = _hostile_config(tmp_path, "kind")
    bad = tmp_path / "bad.h5"
    bad.write_bytes(data)
    assert_user_error(run("push", str(bad), "--url", hostile.url), "bad.h5: ")
    assert not [r for r in hostile.requests if r[0] == "POST"]  # refused before sending

    good_bytes, _ = model_file(tmp_path, "good")
    good = tmp_path / "good.h5"
    good.write_bytes(good_bytes)
    hostile.routes[("POST", "/api/models")] = (201, {}, b"{}")
    assert_user_error(run("push", str(good), "--url", hostile.url), "name: Field required")
    answer = {"name": "other", "version": 1, "sha256": SHA}
    hostile.routes[("POST", "/api/models")] = (201, {}, json.dumps(answer).encode())
    assert_user_error(run("push", str(good), "--url", hostile.url), "stored it as 'other'")
    answer["name"] = "good"
    hostile.routes[("POST", "/api/models")] = (201, {}, json.dumps(answer).encode())
    assert run("push", str(good), "--url", hostile.url).exit_code == 0


def test_unicode_digit_spec_is_one_error(hostile: Hostile, cache: Path) -> None:
    for command in ("pull", "show"):
        assert_user_error(run(command, "m:\u00b2", "--url", hostile.url), "m:\u00b2")
    assert hostile.requests == []


# -- 3. downloads are capped ------------------------------------------------------


def test_default_cap_and_env_override(
    hostile: Hostile, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ZooClient(hostile.url) as client:
        assert client.max_download_bytes == DEFAULT_MAX_DOWNLOAD_BYTES == 512 << 20
    monkeypatch.setenv(MAX_DOWNLOAD_ENV, "1000")
    with ZooClient(hostile.url) as client:
        assert client.max_download_bytes == 1000
    monkeypatch.setenv(MAX_DOWNLOAD_ENV, "lots")
    assert_user_error(run("pull", "m", "--url", hostile.url), MAX_DOWNLOAD_ENV)
    with pytest.raises(ZooError, match="max_download_bytes"):
        ZooClient(hostile.url, max_download_bytes=0)


def test_announced_size_over_cap_is_refused_unread(
    hostile: Hostile, cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, sha = model_file(tmp_path, "big")
    hostile.routes[("GET", "/api/models/big/latest/file")] = file_answer(data, sha)
    monkeypatch.setenv(MAX_DOWNLOAD_ENV, str(len(data) - 1))
    assert_user_error(run("pull", "big", "--url", hostile.url), f"is {len(data)} bytes")
    assert cache_files(cache) == []
    monkeypatch.setenv(MAX_DOWNLOAD_ENV, str(len(data)))  # exactly at the cap is fine
    assert run("pull", "big", "--url", hostile.url).exit_code == 0
    assert cache_files(cache) == ["big/1.h5"]


def test_endless_stream_is_aborted_at_the_cap(
    hostile: Hostile, cache: Path, tmp_path: Path
) -> None:
    sent = [0]
    _, sha = model_file(tmp_path, "endless")

    def endless(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("ETag", f'"{sha}"')
        handler.send_header("X-Zoo-Version", "1")
        handler.end_headers()  # no Content-Length: the body runs until the connection closes
        chunk = b"\0" * 65536
        try:
            while sent[0] < 2 << 30:
                handler.wfile.write(chunk)
                sent[0] += len(chunk)
        except OSError:
            pass

    hostile.routes[("GET", "/api/models/endless/latest/file")] = endless
    start = time.monotonic()
    with pytest.raises(ZooError, match="more than the limit of 1048576 bytes"):
        fetch_to_cache("endless", hostile.url, cache, max_download_bytes=1 << 20)
    assert time.monotonic() - start < 30
    assert cache_files(cache) == []  # the partial temp file was removed
    deadline = time.monotonic() + 10
    while sent[0] < 2 << 30 and time.monotonic() < deadline:
        before = sent[0]
        time.sleep(0.2)
        if sent[0] == before:
            break
    assert sent[0] < 256 << 20  # the client hung up; it did not drain the stream


def test_slow_drip_download_hits_the_deadline(
    hostile: Hostile, cache: Path, tmp_path: Path
) -> None:
    data, sha = model_file(tmp_path, "slow")

    def drip(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("ETag", f'"{sha}"')
        handler.send_header("X-Zoo-Version", "1")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        try:
            for i in range(0, len(data), 64):  # each read is quick; the whole is not
                handler.wfile.write(data[i : i + 64])
                handler.wfile.flush()
                time.sleep(0.05)
        except OSError:
            pass

    hostile.routes[("GET", "/api/models/slow/latest/file")] = drip
    start = time.monotonic()
    client = ZooClient(hostile.url, download_timeout=0.5)
    with client, pytest.raises(ZooError, match="took longer than 0.5 s"):
        client.download("slow", cache / "slow")
    assert time.monotonic() - start < 10
    assert cache_files(cache) == []


# -- 4. stale temp files of killed downloads are cleaned -------------------------


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_remove_stale_temps_rules(tmp_path: Path) -> None:
    dead = tmp_path / f".tmp-{_dead_pid()}-abc.h5"
    old_live = temp_path(tmp_path)  # this process's pid: alive, but far too old
    fresh_live = temp_path(tmp_path)
    keep = tmp_path / "1.h5"
    for p in (dead, old_live, fresh_live, keep):
        p.write_bytes(b"x")
    two_hours_ago = time.time() - 7200
    os.utime(old_live, (two_hours_ago, two_hours_ago))
    os.utime(keep, (two_hours_ago, two_hours_ago))
    removed = remove_stale_temps(tmp_path, max_age_s=3600)
    assert sorted(removed) == sorted([dead, old_live])
    assert fresh_live.exists() and keep.exists() and not dead.exists()


_PULL_SCRIPT = """
import sys, types
pkg = types.ModuleType("physkan"); pkg.__path__ = [sys.argv[1]]; sys.modules["physkan"] = pkg
from physkan.zoo.cache import fetch_to_cache
fetch_to_cache("killed", sys.argv[2], sys.argv[3])
"""


def test_killed_pull_leaves_temp_that_next_pull_cleans(
    hostile: Hostile, cache: Path, tmp_path: Path
) -> None:
    data, sha = model_file(tmp_path, "killed")
    release = threading.Event()

    def stall(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("ETag", f'"{sha}"')
        handler.send_header("X-Zoo-Version", "1")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data[:1000])
        handler.wfile.flush()
        release.wait(60)

    path = ("GET", "/api/models/killed/latest/file")
    hostile.routes[path] = stall
    pkg_dir = str(Path(physkan.__file__).parent)
    proc = subprocess.Popen([sys.executable, "-c", _PULL_SCRIPT, pkg_dir, hostile.url, str(cache)])
    try:
        deadline = time.monotonic() + 60
        while not list((cache / "killed").glob(".tmp-*")) and time.monotonic() < deadline:
            assert proc.poll() is None, "the pull ended early"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        release.set()
        if proc.poll() is None:
            proc.kill()
    leftover = list((cache / "killed").glob(".tmp-*"))
    assert len(leftover) == 1 and str(proc.pid) in leftover[0].name

    other, other_sha = model_file(tmp_path, "other")
    hostile.routes[("GET", "/api/models/other/latest/file")] = file_answer(other, other_sha)
    assert fetch_to_cache("other", hostile.url, cache).sha256 == other_sha
    assert cache_files(cache) == ["other/1.h5"]  # the next pull removed the killed one's temp
    hostile.routes[path] = file_answer(data, sha)
    assert fetch_to_cache("killed", hostile.url, cache).sha256 == sha
