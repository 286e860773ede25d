"""Zoo server security against hostile uploads and requests (real server on 127.0.0.1).

Uploads that would make the server read its own disk (external links, external
storage, virtual datasets, soft links), declare more data than they hold
(sparse/compressed bombs), or stall mid-body are refused; no malformed request
gets a 500; bad server configuration is refused with one line.
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import h5py
import httpx
import numpy as np
import pytest
from click.testing import CliRunner

from physkan.zoo import LocalZoo, ModelCard, ZooError, read_model_file, write_model_file
from physkan.zoo.cli import zoo_group
from physkan.zoo.hdf5_guard import DeclaredSizeError, UnsafeHDF5Error, check_hdf5_safe
from physkan.zoo.server import create_app, load_tokens
from physkan.zoo.store import payload_sha256, read_header
from physkan.zoo.testing import TOKEN, ServerProcess, make_model_file

AUTH = {"Authorization": f"Bearer {TOKEN}"}
LIMIT = 512 * 1024
READ_TIMEOUT_S = 1
KNOWN = np.arange(256, dtype=np.float64) * 3.25  # "server-side secret" content
HEX_RUN = re.compile(r"[0-9a-f]{12}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp("zoo-security")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PHYSKAN_ZOO_READ_TIMEOUT", str(READ_TIMEOUT_S))
        srv = ServerProcess(base / "root", max_upload_bytes=LIMIT, light=True).start()
    try:
        yield srv
    finally:
        srv.stop()
    assert "Traceback" not in srv.log_path.read_text(), srv.log_path.read_text()


@pytest.fixture(scope="module")
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def _upload(http: httpx.Client, path: Path) -> httpx.Response:
    return http.post("/api/models", content=path.read_bytes(), headers=AUTH)


def _stored(server: ServerProcess) -> dict[str, list[int]]:
    zoo = LocalZoo(server.root)
    return {n: zoo.versions(n) for n in zoo.names()}


def _assert_refused(server: ServerProcess, r: httpx.Response, status: int, text: str) -> None:
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    assert text in detail, detail
    assert not HEX_RUN.search(detail), detail  # no hash of anything is echoed
    assert "victim" not in _stored(server)
    assert list(LocalZoo(server.root).uploads_dir.iterdir()) == []


def _zoo_file(path: Path, mutate: Callable[[h5py.File], None]) -> Path:
    """A zoo file whose tensor ``w`` is KNOWN (sha recorded for it), then ``mutate``d."""
    write_model_file(path, ModelCard(name="victim"), {"kind": "k"}, {"w": KNOWN})
    with h5py.File(path, "r+") as f:
        mutate(f)
    return path


def _replace_w(f: h5py.File, make: Callable[[h5py.Group], None]) -> None:
    state = f["model/state"]
    del state["w"]
    make(state)


def _secret_files(tmp_path: Path) -> tuple[Path, Path]:
    raw = tmp_path / "secret.bin"
    raw.write_bytes(KNOWN.tobytes())
    h5 = tmp_path / "secret.h5"
    with h5py.File(h5, "w") as f:
        f["w"] = KNOWN
        f["w"].attrs["name"] = "w"
    return raw, h5


def _attacks(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Upload files that, if followed, read files of the server's disk."""
    raw, h5 = _secret_files(tmp_path)

    def ext_storage(g: h5py.Group) -> None:
        g.create_dataset(
            "w", shape=KNOWN.shape, dtype="<f8", external=[(str(raw), 0, raw.stat().st_size)]
        )

    def ext_link(g: h5py.Group) -> None:
        g["w"] = h5py.ExternalLink(str(h5), "/w")

    def virtual(g: h5py.Group) -> None:
        layout = h5py.VirtualLayout(shape=KNOWN.shape, dtype="<f8")
        layout[:] = h5py.VirtualSource(str(h5), "w", shape=KNOWN.shape)
        g.create_virtual_dataset("w", layout)

    def soft_to_external(g: h5py.Group) -> None:
        g.file["elsewhere"] = h5py.ExternalLink(str(h5), "/w")
        g["w"] = h5py.SoftLink("/elsewhere")

    def dangling_soft(g: h5py.Group) -> None:
        g.create_dataset("real", data=KNOWN)
        g["w"] = h5py.SoftLink("/nowhere")

    cases = {
        "external storage": (ext_storage, "external storage"),
        "external link": (ext_link, "external link"),
        "virtual dataset": (virtual, "virtual dataset"),
        "soft link to an external link": (soft_to_external, "external link"),
        "dangling soft link": (dangling_soft, "soft link"),
    }
    out = {}
    for label, (make, text) in cases.items():
        path = tmp_path / f"{label.replace(' ', '_')}.h5"
        _zoo_file(path, lambda f, make=make: _replace_w(f, make))
        out[label] = (path, text)
    return out


def test_attack_files_really_read_the_secret(tmp_path: Path) -> None:
    """Sanity: plain h5py follows these files to the secret (so a naive server would too)."""
    attacks = _attacks(tmp_path)
    for label in ("external storage", "external link", "virtual dataset"):
        with h5py.File(attacks[label][0], "r") as f:
            assert np.array_equal(f["model/state/w"][()], KNOWN), label


def test_uploads_reaching_outside_the_file_are_refused(
    server: ServerProcess, http: httpx.Client, tmp_path: Path
) -> None:
    for label, (path, text) in _attacks(tmp_path).items():
        r = _upload(http, path)
        _assert_refused(server, r, 400, text)
        assert r.json()["error"] == "invalid_model", label
        with pytest.raises(UnsafeHDF5Error, match=text):
            read_model_file(path)  # local reads (verify, pull, load) refuse them too


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_external_files_are_not_even_opened(
    server: ServerProcess, http: httpx.Client, tmp_path: Path
) -> None:
    """Point external storage and an external link at a FIFO with no writer: opening it
    would block the server, so a prompt 400 proves the server never touched it."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)

    def ext_storage(g: h5py.Group) -> None:
        g.create_dataset("w", shape=KNOWN.shape, dtype="<f8", external=[(str(fifo), 0, 2048)])

    def ext_link(g: h5py.Group) -> None:
        g["w"] = h5py.ExternalLink(str(fifo), "/w")

    for make, text in [(ext_storage, "external storage"), (ext_link, "external link")]:
        path = _zoo_file(tmp_path / "f.h5", lambda f, make=make: _replace_w(f, make))
        r = http.post("/api/models", content=path.read_bytes(), headers=AUTH, timeout=10)
        _assert_refused(server, r, 400, text)


def test_sparse_bomb_refused_413_before_reading(
    server: ServerProcess, http: httpx.Client, tmp_path: Path
) -> None:
    n = 8 * 1024 * 1024  # 64 MiB of float64 in a ~10 KB file, with the right sha256
    card, config = ModelCard(name="victim"), {"kind": "k"}
    bomb = tmp_path / "bomb.h5"
    write_model_file(bomb, card, config, {"w": np.zeros(1)})
    sha = payload_sha256(card, config, {"w": np.zeros(n)})
    with h5py.File(bomb, "r+") as f:
        f.attrs["sha256"] = sha
        del f["model/state/w"]
        f["model/state"].create_dataset("w", shape=(n,), dtype="<f8", chunks=(65536,))
        f["model/state/w"].attrs["name"] = "w"
    assert bomb.stat().st_size < 64 * 1024
    peak = _peak_rss(server)
    r = _upload(http, bomb)
    _assert_refused(server, r, 413, "declares")
    assert r.json()["error"] == "payload_too_large"
    if peak is not None:  # the data was never materialised
        assert _peak_rss(server) - peak < 32 * 1024 * 1024
    with pytest.raises(DeclaredSizeError):
        read_model_file(bomb)  # without a limit, the file's own size bounds it


def _peak_rss(server: ServerProcess) -> int | None:
    status = Path(f"/proc/{server.proc.pid}/status")
    if not status.exists():
        return None
    m = re.search(r"VmHWM:\s+(\d+) kB", status.read_text())
    return int(m.group(1)) * 1024 if m else None


def test_guard_counts_declared_sizes_and_refuses_compression(tmp_path: Path) -> None:
    ok = tmp_path / "ok.h5"
    make_model_file(ok, n=64)
    summary = check_hdf5_safe(ok, max_bytes=ok.stat().st_size)
    assert 64 * 8 * 4 < summary.declared_bytes <= ok.stat().st_size
    with pytest.raises(DeclaredSizeError) as info:
        check_hdf5_safe(ok, max_bytes=1000)
    assert info.value.declared == summary.declared_bytes and info.value.limit == 1000
    sparse = tmp_path / "sparse.h5"  # under any limit, but more than the file holds
    with h5py.File(sparse, "w") as f:
        f.create_dataset("w", shape=(100_000,), dtype="<f8", chunks=(1000,))
    with pytest.raises(DeclaredSizeError, match="holds only"):
        check_hdf5_safe(sparse, max_bytes=10**9)
    packed = tmp_path / "packed.h5"
    with h5py.File(packed, "w") as f:
        f.create_dataset("w", data=np.zeros(1000), compression="gzip")
    with pytest.raises(UnsafeHDF5Error, match="filter 1"):
        check_hdf5_safe(packed)
    linked = tmp_path / "linked.h5"  # one dataset behind many links is read once per link
    with h5py.File(linked, "w") as f:
        f["w"] = np.zeros(1000)
        for i in range(20):
            f[f"w{i}"] = f["w"]
    with pytest.raises(DeclaredSizeError, match="holds only") as info:
        check_hdf5_safe(linked, max_bytes=10**9)
    assert info.value.declared == 21 * 8000
    strings = tmp_path / "strings.h5"  # many vlen elements could share one heap object
    with h5py.File(strings, "w") as f:
        f.create_dataset("s", data=["a", "b"], dtype=h5py.string_dtype())
    with pytest.raises(UnsafeHDF5Error, match="variable-length"):
        check_hdf5_safe(strings)


def test_checksum_mismatch_does_not_echo_the_computed_hash(
    server: ServerProcess, http: httpx.Client, tmp_path: Path
) -> None:
    path = _zoo_file(tmp_path / "tampered.h5", lambda f: f["model/state/w"].write_direct(KNOWN + 1))
    r = _upload(http, path)
    _assert_refused(server, r, 400, "checksum mismatch")
    with pytest.raises(ZooError) as info:
        read_model_file(path)
    computed = payload_sha256(ModelCard(name="victim"), {"kind": "k"}, {"w": KNOWN + 1})
    assert computed[:8] not in str(info.value) and not HEX_RUN.search(str(info.value))


@pytest.mark.parametrize("config", ['"kind"', "[1, 2]", "5", "null", '{"no": "kind"}'])
def test_config_that_is_not_an_object_is_a_clear_400(
    server: ServerProcess, http: httpx.Client, tmp_path: Path, config: str
) -> None:
    def mutate(f: h5py.File) -> None:
        del f["model/config"]
        f["model"].create_dataset("config", data=config, dtype=h5py.string_dtype())

    path = _zoo_file(tmp_path / "config.h5", mutate)
    r = _upload(http, path)
    _assert_refused(server, r, 400, "config")
    with pytest.raises(ZooError, match="config"):
        read_model_file(path)
    result = CliRunner().invoke(zoo_group, ["verify", str(path)])
    assert result.exit_code == 1 and "FAIL" in result.output and "config" in result.output


def test_version_must_be_ascii_digits(
    server: ServerProcess, http: httpx.Client, tmp_path: Path
) -> None:
    for i in range(3):
        make_model_file(tmp_path / f"p{i}.h5", "probe", seed=i)
        assert _upload(http, tmp_path / f"p{i}.h5").status_code == 201
    assert http.get("/api/models/probe/3/file").headers["x-zoo-version"] == "3"
    for ref in ["³", "٣", "３", "3\u0660", "9" * 5000, "-1", "+3", " 3", "0x3", "3.0"]:
        r = http.get(f"/api/models/probe/{ref}/file")
        assert r.status_code in (400, 404), (ref, r.status_code, r.text)
        assert r.json()["error"] in ("bad_request", "not_found"), ref
    assert http.get("/api/models/probe/٣/file").status_code == 400


def test_malformed_requests_never_500(server: ServerProcess, http: httpx.Client) -> None:
    requests = [
        ("GET", "/api/models/probe/%00/file", {}),
        ("GET", "/api/models/%C3%BF/latest/file", {}),
        ("GET", "/api/models/probe/" + "a" * 3000 + "/file", {}),
        ("GET", "/api/models?page=99999999999999999999999", {}),
        ("GET", "/api/models?per_page=abc", {}),
        ("PUT", "/api/models/probe/aliases/prod", {"content": b"[1]"}),
        ("PUT", "/api/models/probe/aliases/prod", {"content": b'{"version": 1e999}'}),
        ("PUT", "/api/models/probe/aliases/prod", {"content": b'{"version": "\xd9\xa3"}'}),
        ("PUT", "/api/models/probe/aliases/123", {"json": {"version": 1}}),
        ("PUT", "/api/models/probe/aliases/prod", {"json": {"version": "3"}}),
        ("PUT", "/api/models/probe/aliases/prod", {"json": {"version": True}}),
        ("PUT", "/api/models/probe/aliases/prod", {"json": {"version": 10**30}}),
        ("POST", "/api/models", {"content": b"\x89HDF\r\n\x1a\n" + b"\0" * 100}),
        ("POST", "/api/models", {"content": b"x", "headers": {"Content-Type": "text/plain"}}),
    ]
    for method, url, kwargs in requests:
        headers = {**AUTH, "Content-Type": "application/json", **kwargs.pop("headers", {})}
        r = http.request(method, url, headers=headers, **kwargs)
        assert r.status_code < 500, (method, url, r.status_code, r.text)
        assert r.status_code < 400 or "error" in r.json(), url
        if method == "PUT":  # only a JSON integer of an existing version moves an alias
            assert r.status_code != 200, (url, kwargs)


def test_stalled_upload_gets_408_and_its_temp_file_is_removed(server: ServerProcess) -> None:
    head = (
        f"POST /api/models HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
        "Content-Type: application/x-hdf5\r\nContent-Length: 100000\r\n\r\n"
    ).encode()
    uploads = LocalZoo(server.root).uploads_dir
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
        sock.sendall(head + b"\0" * 1000)  # then stall
        t0 = time.monotonic()
        deadline = t0 + 10
        while not list(uploads.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert list(uploads.iterdir()), "the upload never started"
        reply = b""
        while b"\r\n\r\n" not in reply:
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
        waited = time.monotonic() - t0
    assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
    assert READ_TIMEOUT_S * 0.5 <= waited < READ_TIMEOUT_S + 8
    deadline = time.monotonic() + 5
    while list(uploads.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert list(uploads.iterdir()) == []


def _serve(args: list[str], env: dict[str, str] | None = None) -> tuple[int, list[str]]:
    result = CliRunner().invoke(zoo_group, ["serve", "--port", "1", *args], env=env)
    return result.exit_code, [ln for ln in result.output.splitlines() if ln.strip()]


@pytest.mark.parametrize("value", ["0", "-1", "-100"])
def test_max_upload_bytes_must_be_positive(tmp_path: Path, value: str) -> None:
    code, lines = _serve(["--root", str(tmp_path), "--max-upload-bytes", value])
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("Error:") and "--max-upload-bytes" in lines[0]
    with pytest.raises(ZooError, match="max-upload-bytes"):
        create_app(tmp_path, [TOKEN], max_upload_bytes=int(value))


@pytest.mark.parametrize("value", ["0", "-1", "nan"])
def test_read_timeout_must_be_positive(tmp_path: Path, value: str) -> None:
    code, lines = _serve(["--root", str(tmp_path), "--read-timeout", value])
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("Error:") and "--read-timeout" in lines[0]


@pytest.mark.parametrize(
    ("text", "entry"),
    [
        ("tokens = [123]", "tokens[0]"),
        ('tokens = ["ok", ["a", "b"]]', "tokens[1]"),
        ('tokens = [" padded"]', "tokens[0]"),
        ('tokens = ["tab\\t"]', "tokens[0]"),
        ('tokens = [""]', "tokens[0]"),
        ("[tokens]\nalice = 5", "tokens.alice"),
        ('[tokens]\nbob = "fine"\ncarol = " x "', "tokens.carol"),
        ('tokens = "just-one"', "tokens"),
        ("tokens = 7", "tokens"),
    ],
)
def test_tokens_file_entries_must_be_clean_strings(tmp_path: Path, text: str, entry: str) -> None:
    path = tmp_path / "tokens.toml"
    path.write_text(text)
    with pytest.raises(ZooError) as info:
        load_tokens(path)
    assert str(path) in str(info.value) and entry in str(info.value)
    code, lines = _serve(["--root", str(tmp_path / "z"), "--tokens-file", str(path)])
    assert code == 2 and len(lines) == 1 and lines[0].startswith("Error:"), lines
    assert entry in lines[0]


def test_clean_tokens_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PHYSKAN_ZOO_TOKENS", raising=False)
    path = tmp_path / "tokens.toml"
    path.write_text('[tokens]\nalice = "a-1"\nbob = "b 2"\n')
    assert load_tokens(path) == ["a-1", "b 2"]
    with pytest.raises(ZooError, match="token"):
        create_app(tmp_path, [" padded "])


def test_app_keeps_the_configured_limits(tmp_path: Path) -> None:
    app = create_app(tmp_path, [TOKEN], max_upload_bytes=1234, read_timeout=2.5)
    assert app.state.settings.max_upload_bytes == 1234
    assert app.state.settings.read_timeout == 2.5


def test_header_reads_refuse_links_out_too(tmp_path: Path) -> None:
    """read_header (index, cache lookups) checks the card and root attributes it reads."""
    _, secret = _secret_files(tmp_path)

    def card_elsewhere(f: h5py.File) -> None:
        del f["card"]
        f["card"] = h5py.ExternalLink(str(secret), "/w")

    path = _zoo_file(tmp_path / "card.h5", card_elsewhere)
    with pytest.raises(UnsafeHDF5Error, match="/card: an external link"):
        read_header(path)
    ok = tmp_path / "ok.h5"
    sha, _ = make_model_file(ok)
    assert read_header(ok)[1] == sha


@pytest.mark.parametrize("name", ["abc\n", "abc\r\n", "abc\n../etc"])
def test_names_with_a_trailing_newline_are_refused(name: str) -> None:
    """``re.match`` with ``$`` accepts ``"abc\\n"``: a name must match in full."""
    from physkan.zoo.card import validate_name

    with pytest.raises(ZooError, match="invalid model name"):
        validate_name(name)
