"""``physkan zoo ...``: list, show, pull, push, verify, serve, alias, rebuild-index, render.

Attach with ``cli.add_command(zoo_group)``. Every user mistake (bad spec,
missing model, unreachable server, bad token) ends with one ``Error: ...``
line on stderr and exit code 2 (damaged or hostile files included: their
h5py/JSON errors are caught too); ``verify`` exits 1 when a file is corrupt.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from physkan.errors import UserError
from physkan.zoo.card import ZooError, parse_spec

__all__ = ["DATA_ERRORS", "ZooCliError", "describe_error", "zoo_group"]

F = TypeVar("F", bound=Callable[..., Any])


class ZooCliError(click.ClickException, UserError):
    """A user-facing zoo error: one line on stderr, exit code 2."""

    exit_code = 2


#: What reading a damaged or hostile file can raise (h5py, json, numpy and
#: pydantic errors are subclasses of these); reported as one line, never a traceback.
DATA_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    KeyError,
    TypeError,
    IndexError,
    RuntimeError,
    OverflowError,
    MemoryError,
)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def describe_error(exc: BaseException) -> str:
    """A one-line message for an error met while handling a zoo file."""
    if isinstance(exc, ZooError):
        return _one_line(str(exc))
    if isinstance(exc, OSError):
        return _one_line(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))
    return _one_line(f"unreadable or corrupt data ({type(exc).__name__}: {exc})")


class _Collect(logging.Handler):
    """Keeps the ``physkan.zoo`` warnings of one command (e.g. damaged files skipped)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(_one_line(record.getMessage()))


def _friendly(fn: F, *, collect_warnings: bool = True) -> F:
    """Turn :class:`ZooError`, OS errors and data errors into one-line :class:`ZooCliError`.

    With ``collect_warnings`` the zoo's warnings (damaged files skipped) are
    printed as ``warning: ...`` lines on stderr when the command succeeds; a
    failing command prints only its ``Error:`` line, which says what went wrong.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        logger = logging.getLogger("physkan.zoo")
        handler, propagate = _Collect(), logger.propagate
        if collect_warnings:
            logger.addHandler(handler)
            logger.propagate = False
        try:
            result = fn(*args, **kwargs)
        except (ZooError, OSError, *DATA_ERRORS) as exc:
            raise ZooCliError(describe_error(exc)) from None
        finally:
            if collect_warnings:
                logger.removeHandler(handler)
                logger.propagate = propagate
        for line in handler.lines:
            click.echo(f"warning: {line}", err=True)
        return result

    return wrapper  # type: ignore[return-value]


def _friendly_long_running(fn: F) -> F:
    """:func:`_friendly` for ``serve``: its warnings go to the log as they happen."""
    return _friendly(fn, collect_warnings=False)


def _zoo(root: Path | None) -> Any:
    from physkan.zoo.local import LocalZoo, default_zoo_dir

    return LocalZoo(root or default_zoo_dir())


root_option = click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="PHYSKAN_ZOO",
    help="Zoo directory (default: $PHYSKAN_ZOO or the user data dir).",
)
url_option = click.option("--url", envvar="PHYSKAN_ZOO_URL", help="Zoo server URL.")
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


@click.group("zoo")
def zoo_group() -> None:
    """Browse, share and serve discovered models (HDF5 model cards)."""


@zoo_group.command("list")
@json_option
@click.option("--search", help="Substring of name, tag, problem or formula.")
@click.option("--tag", help="Only models with this tag.")
@root_option
@url_option
@_friendly
def list_cmd(
    as_json: bool, search: str | None, tag: str | None, root: Path | None, url: str | None
) -> None:
    """List models of a local zoo, or of a server with --url."""
    if url:
        from physkan.zoo.client import ZooClient

        with ZooClient(url) as client:
            items = client.list_models(search=search, tag=tag, per_page=500)["items"]
    else:
        from physkan.zoo.local import summaries

        items = summaries(_zoo(root).index(), search=search, tag=tag)
    if as_json:
        click.echo(json.dumps(items, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"physkan zoo ({len(items)} models)")
    for col in ("name", "latest", "versions", "problem", "formula", "tags"):
        table.add_column(col, overflow="fold")
    for it in items:
        table.add_row(
            it["name"],
            str(it["latest_version"]),
            str(it["versions"]),
            it["problem"],
            it["formula"],
            ", ".join(it["tags"]),
        )
    Console().print(table)


@zoo_group.command("show")
@click.argument("spec")
@json_option
@root_option
@url_option
@_friendly
def show_cmd(spec: str, as_json: bool, root: Path | None, url: str | None) -> None:
    """Show the card of NAME, NAME:VERSION or NAME@ALIAS."""
    parsed = parse_spec(spec)
    if url:
        from physkan.zoo.client import ZooClient

        with ZooClient(url) as client:
            info = client.get_model(parsed.name)
        version = parsed.version or info["aliases"].get(parsed.alias or "latest")
        match = [v for v in info["versions"] if v["version"] == version]
        if not match:
            raise ZooError(f"{spec}: no such version or alias on {url}")
        card, sha = match[0]["card"], match[0]["sha256"]
    else:
        from physkan.zoo.store import read_header

        ref = _zoo(root).resolve(parsed)
        card_obj, sha = read_header(ref.path)
        card = card_obj.model_dump(mode="json")
    if as_json:
        click.echo(json.dumps({**card, "sha256": sha}, indent=2))
        return
    click.echo(f"{card['name']}:{card['version']}  (sha256 {sha[:16]}…)")
    for key in ("problem", "description", "formula", "formula_latex", "physkan_version", "created"):
        if card.get(key):
            click.echo(f"  {key:16s} {card[key]}")
    if card.get("tags"):
        click.echo(f"  {'tags':16s} {', '.join(card['tags'])}")
    for key, value in sorted(card.get("metrics", {}).items()):
        click.echo(f"  metric {key:9s} {value}")


@zoo_group.command("pull")
@click.argument("spec")
@url_option
@click.option("--dest", type=click.Path(path_type=Path), help="Target file or directory.")
@_friendly
def pull_cmd(spec: str, url: str | None, dest: Path | None) -> None:
    """Download SPEC from a server (into the cache unless --dest)."""
    from physkan.zoo.api import pull

    if not url:
        raise ZooError("no zoo server URL: pass --url or set PHYSKAN_ZOO_URL")
    click.echo(str(pull(spec, url, dest)))


@zoo_group.command("push")
@click.argument("file")
@url_option
@click.option("--token", envvar="PHYSKAN_ZOO_TOKEN", help="Upload token (Bearer).")
@root_option
@_friendly
def push_cmd(file: str, url: str | None, token: str | None, root: Path | None) -> None:
    """Upload FILE (a zoo .h5 file, or a spec in the local zoo) to a server."""
    from physkan.zoo.api import push

    path = Path(file)
    if not path.is_file():
        if file.endswith(".h5") or "/" in file:
            raise ZooError(f"{file}: no such file")
        path = _zoo(root).resolve(file).path
    if not url:
        raise ZooError("no zoo server URL: pass --url or set PHYSKAN_ZOO_URL")
    res = push(path, url, token)
    click.echo(f"pushed {res['name']}:{res['version']} (sha256 {res['sha256'][:16]}…)")


@zoo_group.command("verify")
@click.argument("target", required=False, type=click.Path(path_type=Path))
@click.option(
    "--repair",
    is_flag=True,
    help="Also remove temp files and reservations left by killed writers, and rebuild the index.",
)
@_friendly
def verify_cmd(target: Path | None, repair: bool) -> None:
    """Check the sha256 of one zoo file, or of every file in a zoo directory.

    Prints one line per file (FAIL lines say why) and exits 1 if any is damaged.
    Damaged files are never deleted; a zoo serves its healthy versions around them.
    """
    from physkan.zoo.local import LocalZoo, default_zoo_dir
    from physkan.zoo.store import verify_file

    target = target or default_zoo_dir()
    if not target.exists():
        raise ZooError(f"{target}: no such file or directory")
    if target.is_file():
        if repair:
            raise ZooError("--repair works on a zoo directory, not on a single file")
        try:
            verify_file(target)
            results: list[tuple[Path, str | None]] = [(target, None)]
        except (ZooError, OSError, *DATA_ERRORS) as exc:
            results = [(target, describe_error(exc))]
    else:
        zoo = LocalZoo(target)
        results = zoo.verify()
        if repair:
            for path in zoo.cleanup():
                click.echo(f"removed {path}")
            zoo.rebuild_index()
        else:
            for path in zoo.stale_files():
                click.echo(f"stale {path} (left by a killed writer; --repair removes it)")
    bad = [(p, e) for p, e in results if e]
    for path, err in results:
        why = f": {_one_line(err.removeprefix(f'{path}: '))}" if err else ""
        click.echo(f"{'FAIL' if err else 'ok  '} {path}{why}")
    click.echo(f"{len(results) - len(bad)} ok, {len(bad)} failed")
    if bad:
        sys.exit(1)


@zoo_group.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8765, show_default=True, type=int)
@root_option
@click.option("--tokens-file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--max-upload-bytes", type=int, default=None, help="Default 256 MiB.")
@click.option(
    "--read-timeout",
    type=float,
    default=None,
    envvar="PHYSKAN_ZOO_READ_TIMEOUT",
    help="Seconds an upload body may stall before a 408 (default 30).",
)
@click.option("--log-level", default="info", show_default=True)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes (default: the number of CPU cores).",
)
@click.option(
    "--draw-uploads",
    is_flag=True,
    help="Draw each uploaded model's network and formula for its web page (child process).",
)
@_friendly_long_running
def serve_cmd(
    host: str,
    port: int,
    root: Path | None,
    tokens_file: Path | None,
    max_upload_bytes: int | None,
    read_timeout: float | None,
    log_level: str,
    workers: int | None,
    draw_uploads: bool,
) -> None:
    """Serve a zoo directory over HTTP (FastAPI + uvicorn, one or more worker processes)."""
    from physkan.zoo.runner import default_workers, run_server
    from physkan.zoo.settings import load_tokens

    tokens = load_tokens(tokens_file)
    run_server(
        _zoo(root).root,
        host=host,
        port=port,
        tokens=tokens,
        max_upload_bytes=max_upload_bytes,
        read_timeout=read_timeout,
        log_level=log_level,
        workers=workers or default_workers(),
        draw_uploads=draw_uploads,
    )


@zoo_group.command("alias")
@click.argument("name")
@click.argument("version", type=int)
@click.argument("alias")
@root_option
@url_option
@click.option("--token", envvar="PHYSKAN_ZOO_TOKEN", help="Token, when using --url.")
@_friendly
def alias_cmd(
    name: str, version: int, alias: str, root: Path | None, url: str | None, token: str | None
) -> None:
    """Point ALIAS of NAME at VERSION (locally, or on a server with --url)."""
    if url:
        from physkan.zoo.client import ZooClient

        with ZooClient(url, token) as client:
            client.set_alias(name, alias, version)
    else:
        _zoo(root).set_alias(name, alias, version)
    click.echo(f"{name}@{alias} -> {version}")


@zoo_group.command("rebuild-index")
@root_option
@_friendly
def rebuild_index_cmd(root: Path | None) -> None:
    """Re-derive index.json from the model files of a zoo directory."""
    zoo = _zoo(root)
    if not zoo.root.is_dir():
        raise ZooError(f"{zoo.root}: no such zoo directory")
    index = zoo.rebuild_index()
    n = sum(len(m["versions"]) for m in index["models"].values())
    click.echo(f"indexed {len(index['models'])} models, {n} versions in {zoo.root}")


@zoo_group.command("render")
@click.argument("specs", nargs=-1)
@root_option
@_friendly
def render_cmd(specs: tuple[str, ...], root: Path | None) -> None:
    """Draw the web page's network PNG and formula MathML of SPECS (default: every latest)."""
    from physkan.zoo.render import render_version

    zoo = _zoo(root)
    names = [n for n in zoo.names() if zoo.healthy_versions(n)]
    refs = [zoo.resolve(parse_spec(s)) for s in specs] or [zoo.resolve(n) for n in names]
    for ref in refs:
        done = render_version(zoo, ref.name, ref.version)
        made = [p.name for p in (done.png, done.mathml) if p is not None] or ["nothing"]
        click.echo(f"{ref.name}:{ref.version}: {', '.join(made)}")
