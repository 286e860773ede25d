"""Reliability tests against a real uvicorn zoo server on 127.0.0.1 (subprocess)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import h5py
import httpx
import numpy as np
import pytest

from physkan.zoo import LocalZoo, ModelCard, read_model_file, store, write_model_file
from physkan.zoo.testing import TOKEN, ServerProcess, make_model_file

AUTH = {"Authorization": f"Bearer {TOKEN}"}
LIMIT = 512 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp("zoo-server")
    with ServerProcess(base / "root", max_upload_bytes=LIMIT, light=True) as proc:
        yield proc


@pytest.fixture(scope="module")
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def _upload(client: httpx.Client, data: bytes, headers: dict | None = None) -> httpx.Response:
    return client.post("/api/models", content=data, headers=AUTH if headers is None else headers)


def _assert_nothing_stored(server: ServerProcess, before: dict) -> None:
    zoo = LocalZoo(server.root)
    assert {n: zoo.versions(n) for n in zoo.names()} == before
    assert not [p for p in zoo.uploads_dir.iterdir()]


def _snapshot(server: ServerProcess) -> dict:
    zoo = LocalZoo(server.root)
    return {n: zoo.versions(n) for n in zoo.names()}


def test_health_and_openapi(http: httpx.Client) -> None:
    assert http.get("/healthz").json()["status"] == "ok"
    spec = http.get("/openapi.json").json()
    assert "/api/models/{name}/{ref}/file" in spec["paths"]
    assert http.get("/docs").status_code == 200
    r = http.get("/no/such/route")
    assert r.status_code == 404 and r.json()["error"] == "not_found"


def test_50_concurrent_uploads(server: ServerProcess, http: httpx.Client, tmp_path: Path) -> None:
    files = []
    for i in range(50):
        name = "same" if i % 2 == 0 else f"name-{i:02d}"
        path = tmp_path / f"{i}.h5"
        sha, state = make_model_file(path, name, seed=i, tags=["bulk"])
        files.append((name, path, sha, state))

    def send(item: tuple) -> tuple:
        name, path, sha, state = item
        with httpx.Client(base_url=server.url, timeout=60) as c:
            r = _upload(c, path.read_bytes())
        return r, item

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(send, files))
    failed = [(i, r.status_code, r.text) for i, (r, _) in enumerate(results) if r.status_code != 201]
    assert [r.status_code for r, _ in results] == [201] * 50, failed  # only the failures, in full
    same = sorted(r.json()["version"] for r, it in results if it[0] == "same")
    assert same == list(range(1, 26))
    for r, (name, _, sent_sha, state) in results:
        body = r.json()
        assert body["name"] == name and body["source_sha256"] == sent_sha
        dl = http.get(f"/api/models/{name}/{body['version']}/file")
        assert dl.status_code == 200 and dl.headers["etag"] == f'"{body["sha256"]}"'
        out = Path(server.root.parent / "dl.h5")
        out.write_bytes(dl.content)
        got = read_model_file(out)
        assert got.sha256 == body["sha256"] and got.card.version == body["version"]
        assert all(np.array_equal(got.state[k], v) for k, v in state.items())
    listing = http.get("/api/models", params={"tag": "bulk", "per_page": 500}).json()
    assert listing["total"] == 26


def test_200_concurrent_downloads(
    server: ServerProcess, http: httpx.Client, tmp_path: Path
) -> None:
    for i in range(4):
        make_model_file(tmp_path / f"d{i}.h5", f"dl-{i}", seed=100 + i, n=2048)
        assert _upload(http, (tmp_path / f"d{i}.h5").read_bytes()).status_code == 201
    zoo = LocalZoo(server.root)
    expected = {i: zoo.resolve(f"dl-{i}").path.read_bytes() for i in range(4)}
    clients = [httpx.Client(base_url=server.url, timeout=60) for _ in range(32)]

    def get(k: int) -> bool:
        r = clients[k % 32].get(f"/api/models/dl-{k % 4}/latest/file")
        return r.status_code == 200 and r.content == expected[k % 4]

    try:
        with ThreadPoolExecutor(max_workers=32) as pool:
            ok = list(pool.map(get, range(200)))
    finally:
        for c in clients:
            c.close()
    assert all(ok)


def test_bad_uploads_are_rejected_and_nothing_lands(
    server: ServerProcess, http: httpx.Client, tmp_path: Path
) -> None:
    good = tmp_path / "good.h5"
    marker = np.full(64, 4321.125)
    write_model_file(good, ModelCard(name="victim"), {"kind": "k"}, {"w": marker})
    data = good.read_bytes()
    corrupt = bytearray(data)
    corrupt[corrupt.find(marker.tobytes()) + 5] ^= 0xFF
    future = tmp_path / "future.h5"
    make_model_file(future, "victim")
    with h5py.File(future, "r+") as f:
        f.attrs["format_version"] = store.FORMAT_VERSION + 1
    evil = tmp_path / "evil.h5"
    bad_card = ModelCard(name="x").model_copy(update={"name": "../x"})  # skips validation
    write_model_file(evil, bad_card, {"kind": "k"}, {"w": np.ones(2)})
    before = _snapshot(server)
    cases = {
        "truncated": (data[: len(data) // 2], 400, "corrupt"),
        "corrupt": (bytes(corrupt), 400, "checksum mismatch"),
        "not hdf5": (b"definitely not an HDF5 file" * 10, 400, "not a readable HDF5"),
        "empty": (b"", 400, "empty upload"),
        "future": (future.read_bytes(), 400, "upgrade physkan"),
        "traversal": (evil.read_bytes(), 400, "invalid model name"),
        "oversized": (b"\0" * (LIMIT + 1), 413, "limit"),
    }
    for label, (body, status, text) in cases.items():
        r = _upload(http, body)
        assert r.status_code == status, (label, r.text)
        assert text in r.json()["detail"] and r.json()["error"], label

    def chunks() -> Iterator[bytes]:  # no Content-Length: the streaming limit applies
        for _ in range(LIMIT // 65536 + 2):
            yield b"\0" * 65536

    r = _upload(http, chunks())  # type: ignore[arg-type]
    assert r.status_code == 413 and r.json()["error"] == "payload_too_large"
    _assert_nothing_stored(server, before)


def test_auth_required(server: ServerProcess, http: httpx.Client, tmp_path: Path) -> None:
    make_model_file(tmp_path / "m.h5", "authy")
    data = (tmp_path / "m.h5").read_bytes()
    before = _snapshot(server)
    r = _upload(http, data, headers={})
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert _upload(http, data, headers={"Authorization": "Bearer nope"}).status_code == 403
    assert _upload(http, data, headers={"Authorization": "Basic abc"}).status_code == 401
    r = http.put("/api/models/authy/aliases/prod", json={"version": 1})
    assert r.status_code == 401
    _assert_nothing_stored(server, before)


def test_path_traversal_names_rejected(http: httpx.Client) -> None:
    for path in [
        "/api/models/%2E%2E",
        "/api/models/%2E%2E/latest/file",
        "/api/models/..%2Fx/1/file",
        "/api/models/a%2Fb",
        "/api/models/Bad/1/file",
    ]:
        r = http.get(path)
        assert 400 <= r.status_code < 500 and "error" in r.json(), path
    r = http.put("/api/models/x/aliases/..", json={"version": 1}, headers=AUTH)
    assert 400 <= r.status_code < 500


def test_etag_304_aliases_and_listing(http: httpx.Client, tmp_path: Path) -> None:
    for i in range(3):
        make_model_file(tmp_path / f"{i}.h5", "etag-model", seed=i, formula="sin(x)*q")
        assert _upload(http, (tmp_path / f"{i}.h5").read_bytes()).status_code == 201
    r = http.get("/api/models/etag-model/latest/file")
    etag = r.headers["etag"]
    assert r.headers["x-zoo-version"] == "3" and r.headers["cache-control"] == "no-cache"
    r304 = http.get("/api/models/etag-model/3/file", headers={"If-None-Match": etag})
    assert r304.status_code == 304 and r304.content == b"" and r304.headers["etag"] == etag
    weak = http.get("/api/models/etag-model/3/file", headers={"If-None-Match": f'"x", W/{etag}'})
    assert weak.status_code == 304
    other = http.get("/api/models/etag-model/1/file", headers={"If-None-Match": etag})
    assert other.status_code == 200 and other.headers["etag"] != etag
    r = http.put("/api/models/etag-model/aliases/prod", json={"version": 2}, headers=AUTH)
    assert r.status_code == 200
    assert http.get("/api/models/etag-model/prod/file").headers["x-zoo-version"] == "2"
    bad = http.put("/api/models/etag-model/aliases/prod", json={"version": 9}, headers=AUTH)
    assert bad.status_code == 404
    info = http.get("/api/models/etag-model").json()
    assert info["aliases"] == {"prod": 2, "latest": 3}
    assert [v["version"] for v in info["versions"]] == [1, 2, 3]
    assert http.get("/api/models/unknown-model").status_code == 404
    assert http.get("/api/models", params={"search": "SIN(X)"}).json()["total"] >= 1
    page = http.get("/api/models", params={"per_page": 2, "page": 2}).json()
    assert page["page"] == 2 and len(page["items"]) <= 2
    assert http.get("/api/models", params={"page": 0}).status_code == 422


def test_sigkill_mid_upload_leaves_no_partial_model(tmp_path: Path) -> None:
    root = tmp_path / "root"
    seed_file = tmp_path / "seed.h5"
    make_model_file(seed_file, "kept")
    big = tmp_path / "big.h5"
    make_model_file(big, "partial", n=32768)  # ~1.5 MB
    with ServerProcess(root) as srv:
        with httpx.Client(base_url=srv.url) as c:
            assert _upload(c, seed_file.read_bytes()).status_code == 201
        started = threading.Event()
        errors: list[BaseException] = []

        def slow_body() -> Iterator[bytes]:
            data = big.read_bytes()
            for i in range(0, len(data), 32768):
                if i == 4 * 32768:
                    started.set()
                yield data[i : i + 32768]
                time.sleep(0.05)

        def send() -> None:
            try:
                with httpx.Client(base_url=srv.url, timeout=30) as c:
                    _upload(c, slow_body())  # type: ignore[arg-type]
            except BaseException as exc:  # the connection dies with the server
                errors.append(exc)

        t = threading.Thread(target=send)
        t.start()
        assert started.wait(30)
        uploads = LocalZoo(root).uploads_dir
        deadline = time.monotonic() + 15
        while not (partial := list(uploads.iterdir())) and time.monotonic() < deadline:
            time.sleep(0.05)
        srv.kill()
        t.join(30)
        assert errors and partial  # the upload was in flight when the server died
        zoo = LocalZoo(root)
        assert zoo.names() == ["kept"] and not (root / "partial").exists()
        with ServerProcess(root, light=True) as srv2:
            assert list(zoo.uploads_dir.iterdir()) == []
            with httpx.Client(base_url=srv2.url) as c:
                assert [m["name"] for m in c.get("/api/models").json()["items"]] == ["kept"]
                assert _upload(c, big.read_bytes()).json()["version"] == 1
