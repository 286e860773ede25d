"""The fast zoo server (issue 18): light processes, in-memory index, file responses, workers."""

from __future__ import annotations

import gzip
import json
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from physkan.zoo import LocalZoo
from physkan.zoo.live_index import LiveIndex
from physkan.zoo.store import read_model_file
from physkan.zoo.testing import TOKEN, ServerProcess, make_model_file


def _rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024


def _upload(http: httpx.Client, path: Path) -> httpx.Response:
    return http.post(
        "/api/models", content=path.read_bytes(), headers={"Authorization": f"Bearer {TOKEN}"}
    )


def test_served_by_a_light_process_without_torch(tmp_path: Path) -> None:
    """`python -m physkan.zoo serve` (the real CLI, not the test launcher): no torch, small RSS."""
    make_model_file(tmp_path / "a.h5", "alpha")
    with ServerProcess(tmp_path / "root") as server, httpx.Client(base_url=server.url) as http:
        assert _upload(http, tmp_path / "a.h5").status_code == 201
        assert http.get("/api/models/alpha/latest/file").status_code == 200
        health = http.get("/healthz").json()
        assert health["torch_loaded"] is False
        time.sleep(0.5)
        rss = _rss_mb(health["pid"])
    assert rss < 120, f"idle server RSS {rss:.0f} MB"


def test_download_headers_head_range_and_304(tmp_path: Path) -> None:
    sha, _ = make_model_file(tmp_path / "a.h5", "alpha")
    data = (tmp_path / "a.h5").read_bytes()
    with ServerProcess(tmp_path / "root") as server, httpx.Client(base_url=server.url) as http:
        assert _upload(http, tmp_path / "a.h5").status_code == 201
        url = "/api/models/alpha/1/file"
        full = http.get(url)
        assert full.status_code == 200 and full.headers["content-type"] == "application/x-hdf5"
        etag, last_modified = full.headers["etag"], full.headers["last-modified"]
        assert re.fullmatch(r'"[0-9a-f]{64}"', etag) and "GMT" in last_modified
        assert "content-encoding" not in full.headers  # no gzip for HDF5
        again = http.get(url, headers={"Accept-Encoding": "gzip"})
        assert "content-encoding" not in again.headers and again.content == full.content
        head = http.head(url)
        assert head.status_code == 200 and head.content == b""
        assert int(head.headers["content-length"]) == len(full.content)
        assert head.headers["etag"] == etag
        part = http.get(url, headers={"Range": "bytes=10-109"})
        assert part.status_code == 206 and part.content == full.content[10:110]
        assert part.headers["content-range"] == f"bytes 10-109/{len(full.content)}"
        assert http.get(url, headers={"If-None-Match": etag}).status_code == 304
        assert len(data) > 0


def test_json_is_gzipped_and_list_follows_the_disk(tmp_path: Path) -> None:
    root = tmp_path / "root"
    zoo = LocalZoo(root)
    for i in range(6):
        make_model_file(tmp_path / f"m{i}.h5", f"m{i}", seed=i, tags=["t" * 40])
    with ServerProcess(root) as server, httpx.Client(base_url=server.url) as http:
        for i in range(5):
            assert _upload(http, tmp_path / f"m{i}.h5").status_code == 201
        with http.stream("GET", "/api/models", headers={"Accept-Encoding": "gzip"}) as raw:
            assert raw.headers["content-encoding"] == "gzip"
            packed = b"".join(raw.iter_raw())
        plain = http.get("/api/models", headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers
        assert json.loads(gzip.decompress(packed)) == plain.json()
        assert plain.json()["total"] == 5 and len(packed) < len(plain.content)
        # a model added by another writer (not the server) shows up at once
        stored = read_model_file(tmp_path / "m5.h5")
        zoo.add(stored.card, stored.config, stored.state)
        assert http.get("/api/models").json()["total"] == 6
        assert http.get("/api/models/m5").json()["aliases"]["latest"] == 1
        # a version removed by hand disappears at once
        os.unlink(root / "m5" / "1.h5")
        assert http.get("/api/models").json()["total"] == 5
        assert http.get("/api/models/m5").status_code == 404
    assert zoo.names() == [f"m{i}" for i in range(5)]


def test_live_index_sees_in_place_damage_within_the_ttl(tmp_path: Path) -> None:
    zoo = LocalZoo(tmp_path / "zoo")
    make_model_file(tmp_path / "src.h5", "m")
    stored = read_model_file(tmp_path / "src.h5")
    for _ in range(2):
        zoo.add(stored.card, stored.config, stored.state)
    (zoo.root / "index.json").unlink()
    live = LiveIndex(zoo, ttl=0.2)
    assert live.entry("m")["aliases"]["latest"] == 2
    generation = live.generation
    assert live.entry("m") is live.entry("m") and live.generation == generation  # cached
    with open(zoo.root / "m" / "2.h5", "r+b") as fh:  # in place: the directory is unchanged
        fh.write(b"garbage!" * 64)
    time.sleep(0.3)
    entry = live.entry("m")
    assert entry["aliases"]["latest"] == 1 and "2" in entry["damaged"]
    assert live.generation > generation
    assert not (zoo.root / "index.json").exists()  # reads never write
    with pytest.raises(ValueError, match="ttl"):
        LiveIndex(zoo, ttl=0)


def test_two_workers_take_concurrent_uploads_safely(tmp_path: Path) -> None:
    for i in range(12):
        make_model_file(tmp_path / f"u{i}.h5", "shared", seed=i)
    root = tmp_path / "root"
    with ServerProcess(root, workers=2) as server, httpx.Client(base_url=server.url) as http:

        def push(i: int) -> httpx.Response:
            with httpx.Client(base_url=server.url, timeout=60) as c:  # new connection each
                return _upload(c, tmp_path / f"u{i}.h5")

        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(push, range(12)))
        assert [r.status_code for r in answers] == [201] * 12
        assert sorted(r.json()["version"] for r in answers) == list(range(1, 13))
        pids = set()
        for _ in range(10):
            with httpx.Client(base_url=server.url) as c:
                pids.add(c.get("/healthz").json()["pid"])
        supervisor = server.proc.pid
        children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
        info = http.get("/api/models/shared").json()
        assert [v["version"] for v in info["versions"]] == list(range(1, 13))
    assert pids and supervisor not in pids and pids <= {int(c) for c in children}
    assert LocalZoo(root).versions("shared") == list(range(1, 13))
