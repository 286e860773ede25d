"""The zoo's web pages: a real headless chromium against a real server, plus fast unit tests.

The browser test runs the server (a light process: no torch) over a temp copy of the shipped
zoo (``zoo/``) and checks what a visitor sees: every shipped model has a row, the search
box filters rows, formulas are MathML elements laid out by the browser, the model page shows
card, formula, metrics, provenance and a PNG that loads, and the console has no errors. It
skips (with the reason) only where chromium/chromedriver are not installed; CI installs them
(``scripts/setup.sh --dev``). The TestClient tests check HTML escaping of hostile cards, the
MathML whitelist, Accept negotiation and the PNG route.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from physkan.zoo.card import ModelCard
from physkan.zoo.local import LocalZoo, summaries
from physkan.zoo.sidecars import MATHML_NS, sanitize_mathml
from physkan.zoo.store import write_model_file
from physkan.zoo.testing import ServerProcess, headless_chrome
from physkan.zoo.web import prefers_json

SHIPPED = Path(__file__).resolve().parents[1] / "zoo"
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


# -- the real browser ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("zoo-web") / "zoo"
    shutil.copytree(SHIPPED, root, ignore=shutil.ignore_patterns(".lock", "*.reserved"))
    with ServerProcess(root, light=True) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    try:
        driver = headless_chrome()
    except FileNotFoundError as exc:
        if os.environ.get("CI"):  # CI installs chromium (scripts/setup.sh --dev): never skip there
            pytest.fail(f"chromium/chromedriver missing on CI: {exc}")
        pytest.skip(str(exc))
    try:
        yield driver
    finally:
        driver.quit()


def _visible_rows(driver: object) -> list[str]:
    rows = driver.find_elements("css selector", "tr.model-row")  # type: ignore[attr-defined]
    return sorted(r.get_attribute("data-name") for r in rows if r.is_displayed())


def _wait(predicate: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the page")
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_pages_in_a_headless_browser(site: ServerProcess, browser: object) -> None:
    driver = browser
    shipped = summaries(LocalZoo(SHIPPED).index())
    assert len(shipped) >= 5
    driver.get(site.url + "/")  # type: ignore[attr-defined]
    assert _visible_rows(driver) == sorted(s["name"] for s in shipped)

    # every formula cell holds a MathML <math> element that the browser laid out
    cells = driver.find_elements("css selector", "td.formula > *")  # type: ignore[attr-defined]
    assert len(cells) >= len(shipped)
    for cell in cells:
        info = driver.execute_script(  # type: ignore[attr-defined]
            "const r = arguments[0].getBoundingClientRect();"
            "return [arguments[0].localName, arguments[0].namespaceURI, r.width, r.height];",
            cell,
        )
        assert info[:2] == ["math", MATHML_NS], info
        assert info[2] > 5 and info[3] > 5, info

    # the search box filters the rows as one types; clearing it shows them all again
    box = driver.find_element("id", "search")  # type: ignore[attr-defined]
    for needle in ("lagrangian", "oscillator", "cos(q)", "zzz-no-such-model"):
        box.clear()
        box.send_keys(needle)
        expected = sorted(s["name"] for s in summaries(LocalZoo(SHIPPED).index(), search=needle))
        _wait(lambda n=expected: _visible_rows(driver) == n)
        shown = driver.find_element("id", "shown").text  # type: ignore[attr-defined]
        assert shown == str(len(expected))
    box.clear()
    box.send_keys(" ")
    _wait(lambda: len(_visible_rows(driver)) == len(shipped))

    # the model page: card, formula, metrics, provenance and the network PNG
    driver.find_element("link text", "pendulum-lagrangian").click()  # type: ignore[attr-defined]
    _wait(lambda: driver.current_url.endswith("/models/pendulum-lagrangian"))  # type: ignore[attr-defined]
    text = {
        s: driver.find_element("id", s).text for s in ("card", "formula", "metrics", "provenance")
    }  # type: ignore[attr-defined]
    assert "pendulum" in text["card"] and "recovered" in text["card"]
    assert "q_dot**2/2 + cos(q)" in text["formula"]
    assert "test_rmse" in text["metrics"]
    assert "builtin:pendulum" in text["provenance"]
    math = driver.find_element("css selector", "#formula math")  # type: ignore[attr-defined]
    assert driver.execute_script("return arguments[0].namespaceURI", math) == MATHML_NS  # type: ignore[attr-defined]
    img = driver.find_element("id", "network-png")  # type: ignore[attr-defined]
    _wait(lambda: driver.execute_script("return arguments[0].complete", img))  # type: ignore[attr-defined]
    assert driver.execute_script("return arguments[0].naturalWidth", img) > 100  # type: ignore[attr-defined]

    severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]  # type: ignore[attr-defined]
    assert severe == []
    assert httpx.get(site.url + "/healthz").json()["torch_loaded"] is False


# -- fast: TestClient ----------------------------------------------------------------------
HOSTILE = "<script>alert(1)</script>"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[object]:
    from fastapi.testclient import TestClient

    from physkan.zoo.server import create_app

    root = tmp_path / "zoo"
    card = ModelCard(
        name="evil",
        version=1,
        problem=f'p"{HOSTILE}',
        description=HOSTILE,
        formula=f"x + 1</code>{HOSTILE}",
        tags=["<img src=x onerror=alert(1)>"],
        metrics={HOSTILE: 1.0},
        provenance={"source": HOSTILE, HOSTILE: 2},
        training_config={"note": HOSTILE},
    )
    write_model_file(root / "evil" / "1.h5", card, {"kind": "stand-in"}, {"w": [1.0]})
    plain = ModelCard(name="plain", version=1, formula="x**2")
    write_model_file(root / "plain" / "1.h5", plain, {"kind": "stand-in"}, {"w": [1.0]})
    (root / "plain" / "1.mathml").write_text(
        f'<math xmlns="{MATHML_NS}"><msup><mi onclick="alert(1)" style="color:red">x</mi>'
        "<mn>2</mn></msup></math>"
    )
    with TestClient(create_app(root)) as c:
        yield c


def test_hostile_cards_are_escaped(client: object) -> None:
    for url in ("/", "/models/evil"):
        page = client.get(url, headers={"accept": BROWSER_ACCEPT})  # type: ignore[attr-defined]
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in page.headers["content-security-policy"]
        body = page.text
        assert "<script>alert" not in body and "<img src=x" not in body
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "p&#34;&lt;script" in client.get("/").text  # type: ignore[attr-defined]


def test_mathml_sidecar_is_whitelisted(client: object) -> None:
    body = client.get("/models/plain").text  # type: ignore[attr-defined]
    assert f'<math xmlns="{MATHML_NS}"><msup><mi>x</mi><mn>2</mn></msup></math>' in body
    assert "onclick" not in body and "color:red" not in body
    assert sanitize_mathml("<math><mi>x</mi><script>alert(1)</script></math>") is None
    assert sanitize_mathml('<!DOCTYPE m [<!ENTITY a "b">]><math><mi>&a;</mi></math>') is None
    assert sanitize_mathml('<math><mi xmlns="http://www.w3.org/1999/xhtml">x</mi></math>') is None
    assert sanitize_mathml("<math><mi>x</mi></math> trailing") is None
    assert sanitize_mathml("<math><mi>a&lt;b</mi></math>") == (
        f'<math xmlns="{MATHML_NS}"><mi>a&lt;b</mi></math>'
    )


@pytest.mark.parametrize(
    ("accept", "json"),
    [
        (None, False),
        ("*/*", False),
        (BROWSER_ACCEPT, False),
        ("application/json", True),
        ("application/json, text/html;q=0.5", True),
        ("text/html, application/json", False),
        ("application/*", True),
        ("text/html;q=0, */*", True),
        ("application/json;q=bogus, text/plain", False),
    ],
)
def test_accept_negotiation(accept: str | None, json: bool) -> None:
    assert prefers_json(accept) is json


def test_json_clients_get_the_api_answer(client: object) -> None:
    for page, api in (("/models/plain", "/api/models/plain"), ("/", "/api/models")):
        got = client.get(page, headers={"accept": "application/json"})  # type: ignore[attr-defined]
        assert got.headers["content-type"] == "application/json"
        assert got.json() == client.get(api).json()  # type: ignore[attr-defined]
    assert client.get("/models/nope").status_code == 404  # type: ignore[attr-defined]
    assert client.get("/models/Bad%20Name").status_code == 400  # type: ignore[attr-defined]


def test_png_route(client: object, tmp_path: Path) -> None:
    assert client.get("/models/plain/1/network.png").status_code == 404  # type: ignore[attr-defined]
    (tmp_path / "zoo" / "plain" / "1.png").write_bytes(b"not a png")
    assert client.get("/models/plain/1/network.png").status_code == 404  # type: ignore[attr-defined]
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 32
    (tmp_path / "zoo" / "plain" / "1.png").write_bytes(png)
    got = client.get("/models/plain/1/network.png")  # type: ignore[attr-defined]
    assert (
        got.status_code == 200 and got.content == png and got.headers["content-type"] == "image/png"
    )
    assert (
        '<img id="network-png" src="/models/plain/1/network.png"'
        in client.get("/models/plain").text
    )  # type: ignore[attr-defined]
    assert client.get("/models/plain/2/network.png").status_code == 404  # type: ignore[attr-defined]
    assert client.get("/models/plain/%C2%B3/network.png").status_code == 400  # type: ignore[attr-defined]


def test_register_model_draws_the_network_and_the_formula(tmp_path: Path) -> None:
    """The registering process (which has torch) writes the PNG and the MathML sidecars."""
    from physkan.kan import MultKAN
    from physkan.zoo import register_model

    model = MultKAN([2, 1], grid=3, k=3, seed=0, variables=["x", "y"])
    ref = register_model(model, name="drawn", formula="x*sin(y) + 1/2", zoo=tmp_path)
    png = ref.path.with_suffix(".png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000
    mathml = sanitize_mathml(ref.path.with_suffix(".mathml").read_text())
    assert mathml is not None and "<mi>sin</mi>" in mathml and "<mfrac>" in mathml
    assert LocalZoo(tmp_path).healthy_versions("drawn") == [1]  # sidecars are not versions

    # `physkan zoo render` redraws a file already in the zoo (from the file alone)
    from click.testing import CliRunner

    from physkan.zoo.cli import zoo_group

    ref.path.with_suffix(".png").unlink()
    ref.path.with_suffix(".mathml").unlink()
    done = CliRunner().invoke(zoo_group, ["render", "--root", str(tmp_path), "drawn:1"])
    assert done.exit_code == 0 and "drawn:1: 1.png, 1.mathml" in done.output, done.output
    assert ref.path.with_suffix(".png").read_bytes().startswith(b"\x89PNG")
    assert sanitize_mathml(ref.path.with_suffix(".mathml").read_text()) == mathml
    bad = CliRunner().invoke(zoo_group, ["render", "--root", str(tmp_path), "nope"])
    assert bad.exit_code == 2 and "Error: no model named 'nope'" in bad.output, bad.output


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_server_draws_uploads_in_a_child_process(tmp_path: Path) -> None:
    """``--draw-uploads``: an uploaded KAN gets its PNG and MathML without torch in the server."""
    from fastapi.testclient import TestClient

    from physkan.kan import MultKAN
    from physkan.zoo import register_model
    from physkan.zoo.server import create_app

    model = MultKAN([1, 1], grid=3, k=3, seed=0, variables=["r"])
    ref = register_model(model, name="sent", formula="r**2", zoo=tmp_path / "src", draw=False)
    assert not ref.path.with_suffix(".png").exists()
    app = create_app(tmp_path / "served", ["tok"], draw_uploads=True)
    with TestClient(app) as c:
        up = c.post(
            "/api/models", content=ref.path.read_bytes(), headers={"authorization": "Bearer tok"}
        )
        assert up.status_code == 201, up.text
        assert app.state.draw_queue.wait_idle(200)
        page = c.get("/models/sent").text
        assert '<img id="network-png" src="/models/sent/1/network.png"' in page
        assert "<msup><mi>r</mi><mn>2</mn></msup>" in page
        assert c.get("/models/sent/1/network.png").content.startswith(b"\x89PNG")
