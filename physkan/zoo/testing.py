"""Helpers for testing and benchmarking the zoo (used by tests and scripts/bench_zoo.py).

* :class:`ServerProcess` runs ``python -m physkan.zoo serve`` on 127.0.0.1 on
  a free port, waits for ``/healthz`` and always kills it on exit.
* :func:`make_model_file` writes a small valid zoo file with numpy only.
* :func:`linear_to_payload` / :func:`linear_from_payload` are a stand-in for
  ``physkan.io`` that handles ``torch.nn.Linear`` (monkeypatch them into
  ``physkan.zoo.store._to_payload`` / ``_from_payload``).
* :func:`headless_chrome` opens Debian's chromium through chromedriver (selenium) for
  the web-page tests and ``scripts/zoo_screenshots.py``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from physkan._version import __version__
from physkan.zoo.card import ModelCard
from physkan.zoo.store import write_model_file

__all__ = [
    "CHROMEDRIVER",
    "ServerProcess",
    "free_port",
    "headless_chrome",
    "linear_from_payload",
    "linear_to_payload",
    "make_model_file",
]

TOKEN = "test-token"
#: where Debian's ``chromium-driver`` puts chromedriver (``scripts/setup.sh --dev`` installs it)
CHROMEDRIVER = "/usr/bin/chromedriver"

# Runs the zoo CLI with a stub ``physkan`` package object, so the server starts
# without executing physkan/__init__.py (which imports torch, ~2.5 s on a busy
# machine). The zoo itself never needs torch.
_LIGHT_LAUNCHER = (
    "import sys, types; pkg = types.ModuleType('physkan'); "
    "pkg.__path__ = [sys.argv.pop(1)]; pkg.__version__ = sys.argv.pop(1); "
    "sys.modules['physkan'] = pkg; "
    "from physkan.zoo.cli import zoo_group; zoo_group(prog_name='physkan zoo')"
)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_model_file(
    path: str | os.PathLike,
    name: str = "demo",
    *,
    n: int = 64,
    seed: int = 0,
    tags: Iterable[str] = (),
    formula: str = "x**2",
    problem: str = "regression",
) -> tuple[str, dict[str, np.ndarray]]:
    """Write a valid zoo file with a few random tensors; return (sha256, tensors)."""
    rng = np.random.default_rng(seed)
    state = {
        "layers.0.coef": rng.standard_normal((n, 8)).astype(np.float32),
        "layers.0.mask": rng.random(n) > 0.5,
        "layers.0.grid": np.linspace(-1, 1, n),
        "step": np.array(seed, dtype=np.int64),
    }
    card = ModelCard(name=name, tags=list(tags), formula=formula, problem=problem)
    sha = write_model_file(path, card, {"kind": "stand-in", "n": n}, state)
    return sha, state


def linear_to_payload(model: Any) -> tuple[dict, dict[str, np.ndarray]]:
    """Stand-in for ``physkan.io.model_to_payload`` handling ``nn.Linear``."""
    config = {
        "kind": "linear",
        "in_features": model.in_features,
        "out_features": model.out_features,
        "bias": model.bias is not None,
    }
    return config, {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}


def linear_from_payload(config: dict, state: Mapping[str, Any]) -> Any:
    """Stand-in for ``physkan.io.model_from_payload`` handling ``nn.Linear``."""
    import torch

    assert config["kind"] == "linear", config
    model = torch.nn.Linear(config["in_features"], config["out_features"], bias=config["bias"])
    model.load_state_dict({k: torch.as_tensor(np.asarray(v)) for k, v in state.items()})
    return model


class ServerProcess:
    """A zoo server subprocess on 127.0.0.1 (context manager; always killed on exit).

    It runs ``python -m physkan.zoo serve --workers N`` (default 1); with ``light=True`` the same CLI is
    started without importing ``physkan/__init__`` (see ``_LIGHT_LAUNCHER``).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        tokens: Iterable[str] = (TOKEN,),
        max_upload_bytes: int | None = None,
        log_path: str | os.PathLike | None = None,
        light: bool = False,
        workers: int = 1,
    ) -> None:
        self.light = light
        self.workers = workers
        self.root = Path(root)
        self.tokens = list(tokens)
        self.max_upload_bytes = max_upload_bytes
        self.log_path = Path(log_path) if log_path else self.root.parent / "server.log"
        self.port = 0
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """Base URL of the running server."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> ServerProcess:
        """Start the server and wait until ``/healthz`` answers."""
        import httpx

        self.port = free_port()
        pkg_dir = str(Path(__file__).resolve().parents[1])  # physkan/
        repo = str(Path(pkg_dir).parent)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [repo, env.get("PYTHONPATH")]))
        env["PHYSKAN_ZOO_TOKENS"] = ",".join(self.tokens)
        env.pop("PHYSKAN_ZOO_TOKENS_FILE", None)
        env.setdefault("OMP_NUM_THREADS", "1")
        if self.light:
            cmd = [sys.executable, "-c", _LIGHT_LAUNCHER, pkg_dir, __version__]
        else:
            cmd = [sys.executable, "-m", "physkan.zoo"]
        cmd += ["serve", "--host", "127.0.0.1"]
        cmd += ["--port", str(self.port), "--root", str(self.root), "--log-level", "warning"]
        cmd += ["--workers", str(self.workers)]
        if self.max_upload_bytes:
            cmd += ["--max-upload-bytes", str(self.max_upload_bytes)]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child process
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"zoo server exited early:\n{self.log_path.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"zoo server did not become healthy:\n{self.log_path.read_text()}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the server and reap it."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
        if self.proc:
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        """Terminate (then kill) the server; safe to call twice."""
        if not self.proc or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def headless_chrome(width: int = 1280, height: int = 900) -> Any:
    """A selenium Chrome driver on headless chromium (browser console log kept).

    Raises :class:`FileNotFoundError` naming what is missing when chromedriver or
    chromium is not installed (``bash scripts/setup.sh --dev`` installs both).
    """
    import shutil

    driver_path = CHROMEDRIVER if os.path.exists(CHROMEDRIVER) else shutil.which("chromedriver")
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if driver_path is None or browser is None:
        missing = " and ".join(
            n for n, p in (("chromedriver", driver_path), ("chromium", browser)) if p is None
        )
        raise FileNotFoundError(
            f"{missing} not installed: run 'bash scripts/setup.sh --dev' (Debian: apt-get "
            "install chromium chromium-driver)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}", "--hide-scrollbars", "--lang=en-US"):  # fmt: skip
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
