"""The zoo as web pages: an index with a search box and one page per model (server-rendered).

Routes added to the server's FastAPI app by :func:`add_web_routes`::

    GET /                                   index: one row per model (name, versions, formula
                                            as MathML, key metrics, download link); ?q= filters
    GET /models/{name}                      model page: card, formula, metrics, provenance,
                                            versions, the network PNG
    GET /models/{name}/{version}/network.png   the PNG drawn when the version was registered
    GET /static/zoo.css, /static/zoo.js     the page's style and search script (same origin)

``/`` and ``/models/{name}`` negotiate on ``Accept``: a client that prefers
``application/json`` over ``text/html`` gets the JSON of ``/api/models`` or
``/api/models/{name}`` (the JSON API and its routes are unchanged); browsers, ``*/*`` and a
missing header get HTML. Every string from a card is HTML-escaped (Jinja2 autoescape:
cards come from uploads); MathML comes from the version's sidecar file, rebuilt from a
whitelist by :mod:`physkan.zoo.sidecars`. Pages carry a strict Content-Security-Policy
(no inline script, same-origin resources only). Light: Jinja2 and the standard library.

(No ``from __future__ import annotations``: FastAPI must see the real annotations of the
endpoint functions defined inside :func:`add_web_routes`.)
"""

import re
from pathlib import Path
from typing import Any

from physkan.zoo.card import ZooError, validate_name
from physkan.zoo.index_entries import matches
from physkan.zoo.local import LocalZoo
from physkan.zoo.responses import ApiError
from physkan.zoo.sidecars import Sidecars

__all__ = ["CSP", "add_web_routes", "prefers_json", "render_index", "render_model"]

TEMPLATES = Path(__file__).with_name("templates")
CSP = (
    "default-src 'none'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_HTML_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Vary": "Accept",
}
#: metrics shown in the index, first found wins (the model page shows all)
KEY_METRICS = ("test_rmse", "test_relative_rmse", "model_test_rmse")
_STATIC = {"zoo.css": "text/css; charset=utf-8", "zoo.js": "text/javascript; charset=utf-8"}
_VERSION = re.compile(r"[0-9]{1,18}")


def _quality(accept: str, media: str) -> float:
    """The q-value ``accept`` gives ``media`` (most specific range wins; RFC 9110 §12.5.1)."""
    kind = media.split("/")[0]
    best, found = -1, 0.0
    for part in accept.split(","):
        fields = [f.strip() for f in part.split(";")]
        rng = fields[0].lower()
        rank = {media: 3, f"{kind}/*": 2, "*/*": 1}.get(rng)
        if rank is None or rank < best:
            continue
        q = 1.0
        for param in fields[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    q = 0.0
        best, found = rank, q
    return found


def prefers_json(accept: str | None) -> bool:
    """Whether an ``Accept`` header ranks ``application/json`` above ``text/html``."""
    if not accept:
        return False
    return _quality(accept, "application/json") > _quality(accept, "text/html")


def _environment() -> Any:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"], default_for_string=True, default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = _number
    return env


def _number(value: Any) -> str:
    """A metric for people: 4 significant digits, exponent when small or large."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return str(value)
    return f"{value:.4g}"


def _key_metric(metrics: dict[str, Any]) -> tuple[str, Any] | None:
    for key in KEY_METRICS:
        if key in metrics:
            return key, metrics[key]
    return None


def _verdict(tags: list[str]) -> str:
    if "recovered" in tags:
        return "recovered"
    return "unverified" if "unverified" in tags else ""


def _download(name: str, version: int) -> str:
    return f"/api/models/{name}/{int(version)}/file"


def render_index(env: Any, items: list[dict[str, Any]], sidecars: Sidecars, q: str) -> str:
    """The index page for the summaries ``items`` (:func:`physkan.zoo.local.summaries`)."""
    rows = []
    for item in items:
        if q and not matches(item, q, None, None):
            continue
        version = int(item["latest_version"])
        search = "\n".join([item["name"], item["problem"], item["formula"], *item["tags"]])
        rows.append({
            "item": item,
            "mathml": sidecars.mathml(item["name"], version),
            "metric": _key_metric(item["metrics"]),
            "verdict": _verdict(item["tags"]),
            "search": search.lower(),
            "download": _download(item["name"], version),
        })  # fmt: skip
    return env.get_template("index.html").render(rows=rows, q=q, total=len(items))


def render_model(env: Any, name: str, entry: dict[str, Any], sidecars: Sidecars) -> str:
    """The page of model ``name`` (a validated name) from its live index ``entry``."""
    versions = sorted(int(v) for v in entry["versions"])
    latest = int(entry["aliases"].get("latest", versions[-1]))
    card = entry["versions"][str(latest)]["card"]
    info = entry["versions"][str(latest)]
    png = sidecars.png_path(name, latest)
    aliases_of: dict[int, list[str]] = {}
    for alias, v in sorted(entry["aliases"].items()):
        aliases_of.setdefault(int(v), []).append(alias)
    rows = [
        {"version": v, "created": entry["versions"][str(v)]["card"].get("created", ""),
         "sha256": entry["versions"][str(v)]["sha256"], "size": entry["versions"][str(v)]["size"],
         "aliases": aliases_of.get(v, []), "download": _download(name, v)}
        for v in reversed(versions)
    ]  # fmt: skip
    return env.get_template("model.html").render(
        name=name,
        card=card,
        version=latest,
        sha256=info["sha256"],
        mathml=sidecars.mathml(name, latest),
        verdict=_verdict(card.get("tags", [])),
        png=f"/models/{name}/{latest}/network.png" if png else None,
        versions=rows,
    )


def add_web_routes(app: Any, zoo: LocalZoo, live: Any, api_list: Any, api_model: Any) -> None:
    """Add the HTML routes to ``app`` (the server's FastAPI app over ``zoo``/``live``).

    ``api_list(request)`` and ``api_model(name, request)`` answer the JSON API's list and
    detail requests (used when the client prefers JSON).
    """
    from fastapi import Request
    from fastapi.responses import FileResponse, HTMLResponse, Response

    env = _environment()
    sidecars = Sidecars(zoo.root)
    static = {n: (TEMPLATES / n).read_bytes() for n in _STATIC}

    def checked(name: str) -> str:
        try:
            return validate_name(name)
        except ZooError as exc:
            raise ApiError(400, str(exc)) from None

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index_page(request: Request, q: str = "") -> Response:
        if prefers_json(request.headers.get("accept")):
            return await api_list(
                request, search=q or None, tag=None, problem=None, page=1, per_page=50
            )
        body = render_index(env, live.summaries(), sidecars, q.strip()[:200])
        return HTMLResponse(body, headers=_HTML_HEADERS)

    @app.get("/models/{name}", response_class=HTMLResponse, include_in_schema=False)
    async def model_page(name: str, request: Request) -> Response:
        if prefers_json(request.headers.get("accept")):
            return await api_model(name, request)
        entry = live.entry(checked(name))
        if entry is None or not entry["versions"]:
            raise ApiError(404, f"no model named {name!r}")
        return HTMLResponse(render_model(env, name, entry, sidecars), headers=_HTML_HEADERS)

    @app.get("/models/{name}/{version}/network.png", include_in_schema=False)
    async def network_png(name: str, version: str) -> Response:
        checked(name)
        if not _VERSION.fullmatch(version):
            raise ApiError(400, f"invalid version {version[:20]!r}: ASCII digits only")
        entry = live.entry(name)
        if entry is None or version.lstrip("0") not in entry["versions"]:
            raise ApiError(404, f"model {name!r} has no version {version}")
        path = sidecars.png_path(name, int(version))
        if path is None:
            raise ApiError(404, f"no network drawing for {name}:{int(version)}")
        headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
        return FileResponse(path, media_type="image/png", headers=headers)

    @app.get("/static/{filename}", include_in_schema=False)
    async def static_file(filename: str) -> Response:
        if filename not in static:
            raise ApiError(404, f"no static file {filename[:64]!r}")
        headers = {"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"}
        return Response(static[filename], media_type=_STATIC[filename], headers=headers)
