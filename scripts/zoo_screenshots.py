"""Screenshots of the zoo's web pages for the docs: ``docs/zoo_index.png``, ``docs/zoo_model.png``.

Usage: ``python scripts/zoo_screenshots.py [--zoo zoo] [--model pendulum-lagrangian] [--out docs]``.
Serves a temp copy of the zoo (a real server process, as in ``tests/test_zoo_web.py``) and
photographs the index and one model page in headless chromium (``scripts/setup.sh --dev``
installs chromium and chromedriver). Each page is captured whole (the viewport is resized to
its height, at most 3000 px, through the DevTools protocol).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from physkan.zoo.testing import ServerProcess, headless_chrome

ROOT = Path(__file__).resolve().parents[1]
WIDTH = 1280


def _shoot(driver: object, url: str, path: Path, ready: str) -> None:
    """Open ``url``, wait until ``ready`` (a JS expression) holds, save the whole page."""
    driver.get(url)  # type: ignore[attr-defined]
    deadline = time.monotonic() + 20
    while not driver.execute_script(f"return Boolean({ready})"):  # type: ignore[attr-defined]
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url}: page not ready ({ready})")
        time.sleep(0.1)
    height = driver.execute_script("return document.documentElement.scrollHeight")  # type: ignore[attr-defined]
    metrics = {"width": WIDTH, "height": min(int(height), 3000), "deviceScaleFactor": 1,
               "mobile": False}  # fmt: skip
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)  # type: ignore[attr-defined]
    time.sleep(0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(path))  # type: ignore[attr-defined]
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zoo", type=Path, default=ROOT / "zoo")
    parser.add_argument("--model", default="pendulum-lagrangian")
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "zoo"
        shutil.copytree(args.zoo, root, ignore=shutil.ignore_patterns(".lock", "*.reserved"))
        with ServerProcess(root, light=True) as server:
            driver = headless_chrome(WIDTH, 900)
            try:
                _shoot(driver, server.url + "/", args.out / "zoo_index.png",
                       "document.querySelector('td.formula math')")  # fmt: skip
                _shoot(driver, f"{server.url}/models/{args.model}", args.out / "zoo_model.png",
                       "document.getElementById('network-png').complete")  # fmt: skip
            finally:
                driver.quit()


if __name__ == "__main__":
    main()
